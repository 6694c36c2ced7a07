//! The pure pieces of Dhan's consent login: the login page's address, and reading what comes
//! back (the redirect's query, or an address the user pastes with `--no-browser`).
//!
//! Dhan documents no `state` parameter: the redirect brings `tokenId` alone. A `state` that
//! does come back is checked (in constant time) like Upstox's; without one the `tokenId` is
//! taken, and the login guards itself otherwise: the callback listener listens only while
//! this login waits and takes one callback, and a consent for another `dhanClientId` than
//! the account's is refused after it is consumed.

pub use crate::auth::oauth::{Callback, CallbackProblem};
use crate::brokers::answer::shown;
use crate::secret::{Secret, same_bytes as same};
use url::Url;

/// The redirect's parameter that carries the token id.
pub const CODE_PARAM: &str = "tokenId";

/// Longest query read; real redirects are a few hundred bytes.
const MAX_QUERY: usize = 8 * 1024;

/// `{login_base}/login/consentApp-login?consentAppId=…`.
pub fn login_url(login_base: &Url, consent_app_id: &str) -> Url {
    let mut url = login_base.clone();
    url.set_path(&format!(
        "{}/login/consentApp-login",
        login_base.path().trim_end_matches('/')
    ));
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair("consentAppId", consent_app_id);
    url
}

/// Read a redirect's query string: a `state`, when there is one, must be this login's; then
/// `tokenId` is a code to consume once, and `error` a denial. Two different `tokenId`s in one
/// address are refused: which one the browser meant is unknown.
pub fn read_callback(
    query: Option<&str>,
    expected_state: &Secret,
) -> Result<Callback, CallbackProblem> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY {
        return Err(CallbackProblem::NoCode);
    }
    let mut state: Option<String> = None;
    let mut token_ids: Vec<String> = Vec::new();
    let mut error = None;
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "state" => {
                if state.is_some() {
                    return Err(CallbackProblem::WrongState);
                }
                state = Some(v.into_owned());
            }
            CODE_PARAM => {
                let v = v.trim().to_owned();
                if !v.is_empty() && !token_ids.contains(&v) {
                    token_ids.push(v);
                }
            }
            "error" => {
                error.get_or_insert(v.into_owned());
            }
            "error_description" => {
                description.get_or_insert(v.into_owned());
            }
            _ => {}
        }
    }
    if let Some(s) = state
        && !same(s.as_bytes(), expected_state.expose().as_bytes())
    {
        return Err(CallbackProblem::WrongState);
    }
    if let Some(error) = error.filter(|e| !e.trim().is_empty()) {
        return Ok(Callback::Denied {
            error: shown(&error),
            description: description
                .filter(|d| !d.trim().is_empty())
                .map(|d| shown(&d)),
        });
    }
    match token_ids.as_slice() {
        [one] => Ok(Callback::Code(Secret::new(one.clone()))),
        _ => Err(CallbackProblem::NoCode),
    }
}

/// Read the address a user pasted (the whole URL, or just its `?tokenId=…` query), with the
/// same checks as the redirect.
pub fn read_pasted(text: &str, expected_state: &Secret) -> Result<Callback, CallbackProblem> {
    let query = crate::auth::oauth::pasted_query(text)?;
    read_callback(query.as_deref(), expected_state)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "expected-state-0123456789abcdef";

    fn state() -> Secret {
        Secret::new(STATE)
    }

    fn code(r: Result<Callback, CallbackProblem>) -> String {
        match r {
            Ok(Callback::Code(c)) => c.expose().to_owned(),
            other => panic!("expected a code, got {other:?}"),
        }
    }

    #[test]
    fn the_login_page_address() {
        let url = login_url(&Url::parse("https://auth.dhan.co").unwrap(), "c0ffee-42");
        assert_eq!(
            url.as_str(),
            "https://auth.dhan.co/login/consentApp-login?consentAppId=c0ffee-42"
        );
        let sim = login_url(&Url::parse("http://127.0.0.1:9/dhan/?x=1").unwrap(), "a&b");
        assert_eq!(
            sim.as_str(),
            "http://127.0.0.1:9/dhan/login/consentApp-login?consentAppId=a%26b"
        );
    }

    #[test]
    fn a_token_id_without_state_is_taken_and_a_state_that_comes_back_is_checked() {
        let s = state();
        assert_eq!(code(read_callback(Some("tokenId=tid-1"), &s)), "tid-1");
        assert_eq!(
            code(read_callback(
                Some(&format!("tokenId=tid-1&state={STATE}")),
                &s
            )),
            "tid-1"
        );
        // A forged or stale state: refused before the token id is looked at.
        for forged in [
            "tokenId=tid-1&state=forged".to_string(),
            format!("tokenId=tid-1&state={STATE}x"),
            format!("state={STATE}&state=other&tokenId=tid-1"),
        ] {
            assert_eq!(
                read_callback(Some(&forged), &s).unwrap_err(),
                CallbackProblem::WrongState,
                "{forged}"
            );
        }
    }

    #[test]
    fn a_missing_or_ambiguous_token_id_is_no_code() {
        let s = state();
        for q in [
            None,
            Some(""),
            Some("tokenId="),
            Some("tokenId=%20"),
            Some("tokenid=tid-1"),
            Some("tokenId=tid-1&tokenId=tid-2"),
        ] {
            assert_eq!(
                read_callback(q, &s).unwrap_err(),
                CallbackProblem::NoCode,
                "{q:?}"
            );
        }
        // The same id twice is still one id.
        assert_eq!(
            code(read_callback(Some("tokenId=tid-1&tokenId=tid-1"), &s)),
            "tid-1"
        );
        let long = format!("tokenId={}", "a".repeat(MAX_QUERY));
        assert!(read_callback(Some(&long), &s).is_err());
    }

    #[test]
    fn a_refusal_is_a_denial_in_dhans_name() {
        let denied = read_callback(Some("error=access_denied"), &state()).unwrap();
        assert_eq!(
            denied.denial_text_from(crate::brokers::Broker::Dhan.display_name()),
            Some("Dhan said: access_denied".into())
        );
        assert_eq!(
            read_callback(Some("error=access_denied&state=forged"), &state()).unwrap_err(),
            CallbackProblem::WrongState
        );
    }

    #[test]
    fn pasted_addresses() {
        let s = state();
        let full = "http://localhost:5003/callback?tokenId=XYZ";
        assert_eq!(code(read_pasted(full, &s)), "XYZ");
        assert_eq!(code(read_pasted(&format!("  \"{full}\"\n"), &s)), "XYZ");
        assert_eq!(code(read_pasted("?tokenId=XYZ", &s)), "XYZ");
        assert_eq!(
            read_pasted("http://localhost:5003/callback?tokenId=XYZ&state=nope", &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        for garbage in ["", "hello", "ftp://x/?tokenId=1", "tokenId=a b"] {
            assert!(read_pasted(garbage, &s).is_err(), "{garbage:?}");
        }
    }
}
