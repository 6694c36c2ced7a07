//! The pure pieces of Kite's browser login: the login address, and reading what comes back
//! (the redirect's query, or an address the user pastes with `--no-browser`).
//!
//! Kite has no `state` parameter. The state travels in `redirect_params`, a URL-encoded query
//! string that Kite appends to the redirect as ordinary query parameters, and is checked (in
//! constant time) before anything else is read, exactly like Upstox's `state`.

pub use crate::auth::oauth::{Callback, CallbackProblem, new_state};
use crate::secret::Secret;
use url::Url;

/// Longest query read; real redirects are a few hundred bytes.
const MAX_QUERY: usize = 8 * 1024;
/// The longest piece of Kite's text kept for a denial.
const SHOWN_CHARS: usize = 300;

/// `{login_base}/connect/login?v=3&api_key=…&redirect_params=state%3D<state>`.
pub fn login_url(login_base: &Url, api_key: &str, state: &Secret) -> Url {
    let mut url = login_base.clone();
    url.set_path(&format!(
        "{}/connect/login",
        login_base.path().trim_end_matches('/')
    ));
    url.set_query(None);
    let redirect_params = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("state", state.expose())
        .finish();
    url.query_pairs_mut()
        .append_pair("v", "3")
        .append_pair("api_key", api_key)
        .append_pair("redirect_params", &redirect_params);
    url
}

/// Read a redirect's query string, checking `state` first: `request_token` with
/// `status=success` is a code to exchange once; another `status` is a denial with Kite's
/// words; `action` is ignored.
pub fn read_callback(
    query: Option<&str>,
    expected_state: &Secret,
) -> Result<Callback, CallbackProblem> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY {
        return Err(CallbackProblem::NoCode);
    }
    let mut state = None;
    let mut request_token = None;
    let mut status = None;
    let mut message = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "state" => &mut state,
            "request_token" => &mut request_token,
            "status" => &mut status,
            "message" => &mut message,
            _ => continue,
        };
        // A repeated parameter is ambiguous: keep the first, like most servers.
        if slot.is_none() {
            *slot = Some(v.into_owned());
        }
    }
    match state {
        None => return Err(CallbackProblem::MissingState),
        Some(s) if !same(s.as_bytes(), expected_state.expose().as_bytes()) => {
            return Err(CallbackProblem::WrongState);
        }
        Some(_) => {}
    }
    let status = status.map(|s| s.trim().to_owned()).unwrap_or_default();
    if !status.is_empty() && status != "success" {
        return Ok(Callback::Denied {
            error: clip(&status),
            description: message.filter(|m| !m.trim().is_empty()).map(|m| clip(&m)),
        });
    }
    match request_token {
        Some(t) if !t.trim().is_empty() => Ok(Callback::Code(Secret::new(t.trim()))),
        _ => Err(CallbackProblem::NoCode),
    }
}

/// Read the address a user pasted (the whole URL, or just its `?request_token=…` query),
/// with the same state check as the redirect.
pub fn read_pasted(text: &str, expected_state: &Secret) -> Result<Callback, CallbackProblem> {
    let text = unwrap_pasted(text.trim());
    if text.is_empty() || text.len() > MAX_QUERY || text.chars().any(char::is_whitespace) {
        return Err(CallbackProblem::NotAnAddress);
    }
    if let Ok(url) = Url::parse(text)
        && matches!(url.scheme(), "http" | "https")
    {
        return read_callback(url.query(), expected_state);
    }
    let query = text.trim_start_matches('?');
    if query.contains('=') {
        read_callback(Some(query), expected_state)
    } else {
        Err(CallbackProblem::NotAnAddress)
    }
}

/// One pair of quotes, backticks or angle brackets around a pasted address, or a lone `"`,
/// `` ` ``, `<` or `>` at either end (what copying from a chat or a terminal adds).
fn unwrap_pasted(text: &str) -> &str {
    for (open, close) in [('"', '"'), ('\'', '\''), ('`', '`'), ('<', '>')] {
        if let Some(inner) = text.strip_prefix(open).and_then(|t| t.strip_suffix(close)) {
            return inner.trim();
        }
    }
    let text = text.strip_prefix(['"', '`', '<']).unwrap_or(text);
    text.strip_suffix(['"', '`', '>']).unwrap_or(text).trim()
}

/// Compare without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Kite's text, without control characters and shortened, to show safely.
fn clip(s: &str) -> String {
    let clean: String = crate::printable::printable(s)
        .chars()
        .take(SHOWN_CHARS)
        .collect();
    clean.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "expected-state-0123456789abcdef";

    fn state() -> Secret {
        Secret::new(STATE)
    }

    #[test]
    fn the_login_address_carries_the_state_in_redirect_params() {
        let url = login_url(
            &Url::parse("https://kite.zerodha.com").unwrap(),
            "my_api_key",
            &state(),
        );
        assert_eq!(
            url.as_str(),
            "https://kite.zerodha.com/connect/login?v=3&api_key=my_api_key\
             &redirect_params=state%3Dexpected-state-0123456789abcdef"
        );
        // redirect_params decodes to a query string that holds the state.
        let params: String = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_params")
            .unwrap()
            .1
            .into_owned();
        assert_eq!(params, format!("state={STATE}"));
        // A base with a path and a query (a simulator): the path is kept, the query replaced.
        let sim = login_url(
            &Url::parse("http://127.0.0.1:9/kite/?x=1").unwrap(),
            "k",
            &Secret::new("a+b/c=="),
        );
        assert!(
            sim.as_str()
                .starts_with("http://127.0.0.1:9/kite/connect/login?v=3&api_key=k&"),
            "{sim}"
        );
        // A state with characters of its own survives both encodings.
        let back: String = sim
            .query_pairs()
            .find(|(k, _)| k == "redirect_params")
            .unwrap()
            .1
            .into_owned();
        let state_back = url::form_urlencoded::parse(back.as_bytes())
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        assert_eq!(state_back, "a+b/c==");
    }

    #[test]
    fn redirects_are_checked_state_first() {
        let s = state();
        let ok = read_callback(
            Some(&format!(
                "request_token=abc123&action=login&status=success&state={STATE}"
            )),
            &s,
        )
        .unwrap();
        assert!(matches!(ok, Callback::Code(c) if c.expose() == "abc123"));
        // Missing and forged states are refused, whatever else the address says.
        assert_eq!(
            read_callback(Some("request_token=abc&status=success"), &s).unwrap_err(),
            CallbackProblem::MissingState
        );
        assert_eq!(
            read_callback(None, &s).unwrap_err(),
            CallbackProblem::MissingState
        );
        assert_eq!(
            read_callback(Some("request_token=abc&status=success&state=other"), &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        assert_eq!(
            read_callback(
                Some(&format!("request_token=abc&status=success&state={STATE}x")),
                &s
            )
            .unwrap_err(),
            CallbackProblem::WrongState
        );
        // A denial with a wrong state is a forgery too, not a denial.
        assert_eq!(
            read_callback(Some("status=cancelled&state=x"), &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        // The first of a repeated state counts.
        assert_eq!(
            read_callback(
                Some(&format!("request_token=a&state=forged&state={STATE}")),
                &s
            )
            .unwrap_err(),
            CallbackProblem::WrongState
        );
    }

    #[test]
    fn a_status_other_than_success_is_a_denial() {
        let s = state();
        let denied = read_callback(
            Some(&format!(
                "status=error&message=User%20cancelled%1b%5B2J&state={STATE}"
            )),
            &s,
        )
        .unwrap();
        match &denied {
            Callback::Denied { error, description } => {
                assert_eq!(error, "error");
                assert_eq!(description.as_deref(), Some("User cancelled[2J"));
            }
            other => panic!("{other:?}"),
        }
        // Even with a request token: Kite did not say success.
        assert!(matches!(
            read_callback(
                Some(&format!("request_token=abc&status=cancelled&state={STATE}")),
                &s
            ),
            Ok(Callback::Denied { .. })
        ));
    }

    #[test]
    fn a_redirect_without_a_request_token_has_no_code() {
        let s = state();
        for q in [
            format!("state={STATE}"),
            format!("status=success&action=login&state={STATE}"),
            format!("request_token=%20&status=success&state={STATE}"),
        ] {
            assert_eq!(
                read_callback(Some(&q), &s).unwrap_err(),
                CallbackProblem::NoCode,
                "{q}"
            );
        }
        // No status at all but a request token: the state proved where it came from.
        assert!(matches!(
            read_callback(Some(&format!("request_token=abc&state={STATE}")), &s),
            Ok(Callback::Code(_))
        ));
        // A huge query is not read.
        let huge = format!(
            "request_token=abc&status=success&state={STATE}&x={}",
            "a".repeat(10_000)
        );
        assert_eq!(
            read_callback(Some(&huge), &s).unwrap_err(),
            CallbackProblem::NoCode
        );
    }

    #[test]
    fn pasted_addresses() {
        let s = state();
        let full = format!(
            "http://127.0.0.1:5001/callback?request_token=XYZ&action=login&status=success&state={STATE}"
        );
        assert!(matches!(read_pasted(&full, &s), Ok(Callback::Code(c)) if c.expose() == "XYZ"));
        assert!(matches!(
            read_pasted(&format!("  \"{full}\"\n"), &s),
            Ok(Callback::Code(_))
        ));
        assert!(matches!(
            read_pasted(
                &format!("?request_token=XYZ&status=success&state={STATE}"),
                &s
            ),
            Ok(Callback::Code(_))
        ));
        assert_eq!(
            read_pasted(
                "http://127.0.0.1:5001/callback?request_token=XYZ&status=success&state=nope",
                &s
            )
            .unwrap_err(),
            CallbackProblem::WrongState
        );
        for garbage in [
            "",
            "hello",
            "not a url",
            "ftp://x/?request_token=1",
            "\u{0}\u{1}",
        ] {
            assert!(read_pasted(garbage, &s).is_err(), "{garbage:?}");
        }
    }
}
