//! The pure pieces of Fyers' browser login: the login address, and reading what comes back
//! (the redirect's query, or an address the user pastes with `--no-browser`).
//!
//! Fyers has a real `state` parameter, so the redirect is read exactly like Upstox's (the
//! same constant-time `state` check first, the same problems), except that the code is
//! called `auth_code`. Other parameters (`s`, `code`, `user_id`) are ignored.

pub use crate::auth::oauth::{Callback, CallbackProblem};
use crate::secret::Secret;
use url::Url;

/// The redirect's parameter that carries the code.
pub const CODE_PARAM: &str = "auth_code";

/// `{login_base}/api/v3/generate-authcode?client_id=…&redirect_uri=…&response_type=code&state=…`.
pub fn login_url(login_base: &Url, client_id: &str, redirect_uri: &Url, state: &Secret) -> Url {
    let mut url = login_base.clone();
    url.set_path(&format!(
        "{}/api/v3/generate-authcode",
        login_base.path().trim_end_matches('/')
    ));
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri.as_str())
        .append_pair("response_type", "code")
        .append_pair("state", state.expose());
    url
}

/// Read a redirect's query string, checking `state` first.
pub fn read_callback(
    query: Option<&str>,
    expected_state: &Secret,
) -> Result<Callback, CallbackProblem> {
    crate::auth::oauth::read_callback_named(query, expected_state, CODE_PARAM)
}

/// Read the address a user pasted, with the same state check as the redirect.
pub fn read_pasted(text: &str, expected_state: &Secret) -> Result<Callback, CallbackProblem> {
    crate::auth::oauth::read_pasted_named(text, expected_state, CODE_PARAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "expected-state-0123456789abcdef";

    fn state() -> Secret {
        Secret::new(STATE)
    }

    #[test]
    fn the_login_address_carries_every_parameter() {
        let url = login_url(
            &Url::parse("https://api-t1.fyers.in").unwrap(),
            "AB12CD34EF-100",
            &Url::parse("http://localhost:5001/callback").unwrap(),
            &state(),
        );
        assert_eq!(
            url.as_str(),
            "https://api-t1.fyers.in/api/v3/generate-authcode?client_id=AB12CD34EF-100\
             &redirect_uri=http%3A%2F%2Flocalhost%3A5001%2Fcallback&response_type=code\
             &state=expected-state-0123456789abcdef"
        );
        let sim = login_url(
            &Url::parse("http://127.0.0.1:9/fyers/?x=1").unwrap(),
            "k-100",
            &Url::parse("http://localhost:5001/callback").unwrap(),
            &state(),
        );
        assert!(
            sim.as_str()
                .starts_with("http://127.0.0.1:9/fyers/api/v3/generate-authcode?client_id=k-100&"),
            "{sim}"
        );
    }

    #[test]
    fn redirects_are_checked_state_first_and_extras_ignored() {
        let s = state();
        let ok = read_callback(
            Some(&format!(
                "s=ok&code=200&auth_code=eyJ.abc.def&state={STATE}&user_id=XY1"
            )),
            &s,
        )
        .unwrap();
        assert!(matches!(ok, Callback::Code(c) if c.expose() == "eyJ.abc.def"));
        // Fyers' `code` is a status number, never the code to exchange.
        assert_eq!(
            read_callback(Some(&format!("s=ok&code=200&state={STATE}")), &s).unwrap_err(),
            CallbackProblem::NoCode
        );
        assert_eq!(
            read_callback(Some("auth_code=abc"), &s).unwrap_err(),
            CallbackProblem::MissingState
        );
        assert_eq!(
            read_callback(None, &s).unwrap_err(),
            CallbackProblem::MissingState
        );
        assert_eq!(
            read_callback(Some("auth_code=abc&state=forged"), &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        assert_eq!(
            read_callback(Some(&format!("auth_code=abc&state={STATE}x")), &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        assert_eq!(
            read_callback(Some(&format!("auth_code=%20&state={STATE}")), &s).unwrap_err(),
            CallbackProblem::NoCode
        );
    }

    #[test]
    fn a_refusal_is_a_denial_in_fyers_name() {
        let denied = read_callback(
            Some(&format!("error=access_denied&state={STATE}")),
            &state(),
        )
        .unwrap();
        assert_eq!(
            denied.denial_text_from(crate::brokers::Broker::Fyers.display_name()),
            Some("Fyers said: access_denied".into())
        );
    }

    #[test]
    fn pasted_addresses() {
        let s = state();
        let full = format!("http://127.0.0.1:5001/callback?s=ok&auth_code=XYZ&state={STATE}");
        assert!(matches!(read_pasted(&full, &s), Ok(Callback::Code(c)) if c.expose() == "XYZ"));
        assert!(matches!(
            read_pasted(&format!("  \"{full}\"\n"), &s),
            Ok(Callback::Code(_))
        ));
        assert_eq!(
            read_pasted(
                "http://127.0.0.1:5001/callback?auth_code=XYZ&state=nope",
                &s
            )
            .unwrap_err(),
            CallbackProblem::WrongState
        );
        for garbage in ["", "hello", "ftp://x/?auth_code=1"] {
            assert!(read_pasted(garbage, &s).is_err(), "{garbage:?}");
        }
    }
}
