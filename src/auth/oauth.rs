//! The pieces of Upstox's OAuth login that are pure: the `state`, the authorization URL, and
//! reading what comes back (the callback's query, or an address the user pastes).

use crate::secret::Secret;
use base64::Engine;
use url::Url;

/// Bytes of randomness in a `state`: 256 bits, well above the 128 the login needs.
const STATE_BYTES: usize = 32;

/// A fresh, unguessable `state` from the operating system's random source.
pub fn new_state() -> Result<Secret, String> {
    let mut bytes = [0u8; STATE_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no secure random numbers available: {e}"))?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

/// `{api_base}/v2/login/authorization/dialog?response_type=code&client_id=..&redirect_uri=..&state=..`
pub fn authorization_url(
    api_base: &Url,
    client_id: &str,
    redirect_uri: &Url,
    state: &Secret,
) -> Url {
    let mut url = api_base.clone();
    url.set_path(&format!(
        "{}/v2/login/authorization/dialog",
        api_base.path().trim_end_matches('/')
    ));
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri.as_str())
        .append_pair("state", state.expose());
    url
}

/// What the browser brought back.
#[derive(Debug, Clone)]
pub enum Callback {
    /// The authorization code, to exchange once.
    Code(Secret),
    /// The user (or Upstox) refused: `error` and its description.
    Denied {
        /// The OAuth `error` (e.g. `access_denied`).
        error: String,
        /// `error_description`, when given.
        description: Option<String>,
    },
}

impl Callback {
    /// For a denial: what to tell the user.
    pub fn denial_text(&self) -> Option<String> {
        self.denial_text_from("Upstox")
    }

    /// For a denial: what to tell the user, naming the broker that refused.
    pub fn denial_text_from(&self, broker: &str) -> Option<String> {
        match self {
            Callback::Code(_) => None,
            Callback::Denied { error, description } => Some(match description {
                Some(d) => format!("{broker} said: {d} ({error})"),
                None => format!("{broker} said: {error}"),
            }),
        }
    }
}

/// Why a callback (or a pasted address) was not accepted. The login keeps waiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackProblem {
    /// No `state` at all.
    #[error("the address has no state; it did not come from the login tokenwatch started")]
    MissingState,
    /// A `state` that is not the one this login sent.
    #[error(
        "the address's state does not match this login (an old or forged link); use the newest login link"
    )]
    WrongState,
    /// The right state, but neither a code nor an error.
    #[error("the address has no authorization code")]
    NoCode,
    /// Pasted text that is not an address at all.
    #[error(
        "that is not the address your browser was sent to; copy the whole address from the browser's address bar"
    )]
    NotAnAddress,
}

/// Longest query tokenwatch reads; real callbacks are a few hundred bytes.
const MAX_QUERY: usize = 8 * 1024;

/// Read a callback's query string, checking `state` first.
pub fn read_callback(
    query: Option<&str>,
    expected_state: &Secret,
) -> Result<Callback, CallbackProblem> {
    read_callback_named(query, expected_state, "code")
}

/// [`read_callback`] for a broker whose redirect names its code `code_name` (Fyers:
/// `auth_code`); every other parameter but `state`, `error` and `error_description` is
/// ignored.
pub fn read_callback_named(
    query: Option<&str>,
    expected_state: &Secret,
    code_name: &str,
) -> Result<Callback, CallbackProblem> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY {
        return Err(CallbackProblem::NoCode);
    }
    let mut state = None;
    let mut code = None;
    let mut error = None;
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "state" => &mut state,
            name if name == code_name => &mut code,
            "error" => &mut error,
            "error_description" => &mut description,
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
    if let Some(error) = error.filter(|e| !e.trim().is_empty()) {
        return Ok(Callback::Denied {
            error: clip(&error),
            description: description
                .filter(|d| !d.trim().is_empty())
                .map(|d| clip(&d)),
        });
    }
    match code {
        Some(c) if !c.trim().is_empty() => Ok(Callback::Code(Secret::new(c.trim()))),
        _ => Err(CallbackProblem::NoCode),
    }
}

/// Read the address a user pasted (the whole URL, or just `?code=..&state=..`), with the same
/// state check as the callback.
pub fn read_pasted(text: &str, expected_state: &Secret) -> Result<Callback, CallbackProblem> {
    read_pasted_named(text, expected_state, "code")
}

/// [`read_pasted`] for a broker whose redirect names its code `code_name`.
pub fn read_pasted_named(
    text: &str,
    expected_state: &Secret,
    code_name: &str,
) -> Result<Callback, CallbackProblem> {
    let query = pasted_query(text)?;
    read_callback_named(query.as_deref(), expected_state, code_name)
}

/// The query of an address a user pasted (the whole URL, or just `?code=..&state=..`), with
/// what copying wraps around it taken off; `None` for an address without one.
pub fn pasted_query(text: &str) -> Result<Option<String>, CallbackProblem> {
    let text = unwrap_pasted(text.trim());
    if text.is_empty() || text.len() > MAX_QUERY || text.chars().any(char::is_whitespace) {
        return Err(CallbackProblem::NotAnAddress);
    }
    if let Ok(url) = Url::parse(text)
        && matches!(url.scheme(), "http" | "https")
    {
        return Ok(url.query().map(str::to_owned));
    }
    let query = text.trim_start_matches('?');
    if query.contains('=') {
        Ok(Some(query.to_owned()))
    } else {
        Err(CallbackProblem::NotAnAddress)
    }
}

/// What copying from a chat, a terminal or a mail program wraps around an address: one pair
/// of quotes, backticks or angle brackets, or a lone `"`, `` ` ``, `<` or `>` at either end
/// (a selection that took the quote after the address). A lone `'` is left alone: it is a
/// legal character of a query, while the others never appear unencoded in a real callback.
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

/// Upstox's text, stripped of control characters ([`printable`](crate::printable::printable))
/// and shortened, to show safely.
fn clip(s: &str) -> String {
    let clean: String = crate::printable::printable(s).chars().take(300).collect();
    clean.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Secret {
        Secret::new("expected-state-0123456789abcdef")
    }

    #[test]
    fn states_are_long_and_different() {
        let a = new_state().unwrap();
        let b = new_state().unwrap();
        assert!(!a.same_as(&b));
        // 32 bytes → 43 base64url characters: 256 bits.
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn the_authorization_url_carries_every_parameter() {
        let url = authorization_url(
            &Url::parse("https://api.upstox.com").unwrap(),
            "my-key",
            &Url::parse("http://localhost:5001/callback").unwrap(),
            &state(),
        );
        assert_eq!(
            url.as_str(),
            "https://api.upstox.com/v2/login/authorization/dialog?response_type=code&client_id=my-key\
             &redirect_uri=http%3A%2F%2Flocalhost%3A5001%2Fcallback&state=expected-state-0123456789abcdef"
        );
        let sim = authorization_url(
            &Url::parse("http://127.0.0.1:9/base/").unwrap(),
            "k",
            &Url::parse("http://localhost:5001/callback").unwrap(),
            &state(),
        );
        assert!(
            sim.as_str()
                .starts_with("http://127.0.0.1:9/base/v2/login/authorization/dialog?")
        );
    }

    #[test]
    fn callbacks_are_checked_state_first() {
        let s = state();
        let ok = read_callback(
            Some("code=abc123&state=expected-state-0123456789abcdef"),
            &s,
        )
        .unwrap();
        assert!(matches!(ok, Callback::Code(c) if c.expose() == "abc123"));
        assert_eq!(
            read_callback(Some("code=abc"), &s).unwrap_err(),
            CallbackProblem::MissingState
        );
        assert_eq!(
            read_callback(None, &s).unwrap_err(),
            CallbackProblem::MissingState
        );
        assert_eq!(
            read_callback(Some("code=abc&state=other"), &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        // An error with a wrong state is a forgery too, not a denial.
        assert_eq!(
            read_callback(Some("error=access_denied&state=x"), &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        let denied = read_callback(
            Some("error=access_denied&error_description=User%20said%20no&state=expected-state-0123456789abcdef"),
            &s,
        )
        .unwrap();
        assert_eq!(
            denied.denial_text().unwrap(),
            "Upstox said: User said no (access_denied)"
        );
        assert_eq!(
            read_callback(Some("state=expected-state-0123456789abcdef"), &s).unwrap_err(),
            CallbackProblem::NoCode
        );
        assert_eq!(
            read_callback(Some(&"a".repeat(10_000)), &s).unwrap_err(),
            CallbackProblem::NoCode
        );
    }

    #[test]
    fn pasted_addresses() {
        let s = state();
        let full = "http://localhost:5001/callback?code=XYZ&state=expected-state-0123456789abcdef";
        assert!(matches!(read_pasted(full, &s), Ok(Callback::Code(c)) if c.expose() == "XYZ"));
        assert!(matches!(
            read_pasted(&format!("  {full}\n"), &s),
            Ok(Callback::Code(_))
        ));
        assert!(matches!(
            read_pasted("?code=XYZ&state=expected-state-0123456789abcdef", &s),
            Ok(Callback::Code(_))
        ));
        assert_eq!(
            read_pasted("http://localhost:5001/callback?code=XYZ&state=nope", &s).unwrap_err(),
            CallbackProblem::WrongState
        );
        for garbage in [
            "",
            "hello",
            "not a url at all",
            "ftp://x/?code=1",
            "\u{0}\u{1}",
        ] {
            assert!(read_pasted(garbage, &s).is_err(), "{garbage:?}");
        }
    }
}
