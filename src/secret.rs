//! Secrets (access tokens, client secrets, API keys) held in a masked type from the
//! moment they are read. `Debug` and `Display` never show the value; code that must
//! send or store the value calls [`Secret::expose`] explicitly, which makes every such
//! place easy to find.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret string: a token, a client secret or an API key.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wrap a value that must never be printed.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The value itself. Only for sending it to Upstox or writing the token file.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length in characters, safe to show.
    pub fn len(&self) -> usize {
        self.expose().chars().count()
    }

    /// True for an empty secret.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// The token form shown in the details view and `config check`: enough to tell two
    /// tokens apart, never enough to matter. A long token (a JWT: Upstox, Fyers, Angel One,
    /// Dhan) shows its first four and last four characters around an ellipsis (`eyJ0…a1B2`);
    /// a shorter one (Kite's 32 characters) only its last four (`…a1B2`), so that no more
    /// than an eighth of it shows; under 32 characters, nothing.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.expose().chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        match chars.len() {
            0..32 => "********".to_string(),
            32..64 => format!("…{tail}"),
            _ => {
                let head: String = chars[..4].iter().collect();
                format!("{head}…{tail}")
            }
        }
    }

    /// Compare with another secret without exposing either.
    pub fn same_as(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

/// Read a secret kept in a file of its own (a TOTP secret, say): the file must be private
/// to its owner (no access for group or others), and its text, trimmed, is the secret. The
/// error names the file and what to do, never its content.
pub fn read_secret_file(path: &std::path::Path) -> Result<Secret, String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown} can be read by other users (mode {mode:o}); run chmod 600 {shown}"
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {}", e.kind()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok(Secret::new(text))
}

/// Whether `a` and `b` are equal, compared without stopping at the first difference (for
/// secrets: how long it takes says nothing of where they differ).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// Deserializes any scalar (string, number, bool) as a secret, so that a secret given with
/// the wrong type never ends up quoted in a type error. An empty string is "not set".
pub fn deserialize_opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Secret>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string (the value is secret and not shown)")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            Ok((!v.is_empty()).then(|| Secret::new(v)))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Secret::new(v.to_string())))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Secret::new(v.to_string())))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom("expected a string; quote the value"))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom("expected a string; quote the value"))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_opt_secret(d)?.ok_or_else(|| serde::de::Error::custom("empty secret"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_must_be_private_and_is_never_quoted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totp");
        std::fs::write(&path, "  JBSWY3DPEHPK3PXP\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret_file(&path).unwrap_err();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("JBSWY3DP"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_secret_file(&path).unwrap().expose(),
            "JBSWY3DPEHPK3PXP"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret_file(&path).unwrap_err().ends_with("is empty"));
        let e = read_secret_file(&dir.path().join("none")).unwrap_err();
        assert!(e.starts_with("cannot read"), "{e}");
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("super-secret-value-123456789");
        assert!(!format!("{s:?}").contains("super"));
        assert!(!format!("{s}").contains("super"));
        // 28 characters: nothing shows.
        assert_eq!(s.masked(), "********");
    }

    #[test]
    fn no_more_than_an_eighth_of_a_secret_shows() {
        assert_eq!(Secret::new("abc123").masked(), "********");
        // A Kite access token: 32 characters.
        let kite = Secret::new("6xq3w9sd8fk2lq0zv7yb1nm4rt5pe2ha");
        assert_eq!(kite.masked(), "…e2ha");
        let jwt = Secret::new(format!("eyJ0{}a1B2", "x".repeat(200)));
        assert_eq!(jwt.masked(), "eyJ0…a1B2");
        for len in 0..300 {
            let v = Secret::new("k".repeat(len));
            let shown = v.masked().chars().filter(|c| *c == 'k').count();
            assert!(shown * 8 <= len, "{len}: {shown} shown");
        }
    }
}
