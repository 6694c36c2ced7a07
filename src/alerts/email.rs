//! Delivery to `notifications.email`: one short message per alert over SMTP (lettre, TLS by
//! rustls), with the same bounded retries as the webhook. Logs name the server as
//! `host:port` only; the password never leaves the configuration's masked type.

use super::{Alert, WEBHOOK_ATTEMPTS, one_line};
use crate::config::EmailConfig;
use crate::timefmt::ist_rfc3339;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// How long one SMTP conversation may take.
pub const EMAIL_TIMEOUT: Duration = Duration::from_secs(15);

/// The configured mail channel.
#[derive(Clone)]
pub(super) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `smtp.example.com:465`, for logs.
    pub(super) shown: String,
}

/// Why `notifications.email` cannot be used: the key and what to do. Never names the
/// password.
pub fn check(c: &EmailConfig) -> Result<(), (&'static str, String)> {
    parts(c).map(|_| ())
}

struct Parts {
    url: url::Url,
    from: Mailbox,
    to: Vec<Mailbox>,
}

fn parts(c: &EmailConfig) -> Result<Parts, (&'static str, String)> {
    if c.url.trim().is_empty() {
        return Err((
            "url",
            "is needed for e-mail alerts, e.g. smtps://user@smtp.example.com:465".into(),
        ));
    }
    let url = url::Url::parse(c.url.trim()).map_err(|e| {
        (
            "url",
            format!(
                "is not a URL ({e}); write it like smtps://user@smtp.example.com:465 or \
                 smtp://user@smtp.example.com:587?tls=required"
            ),
        )
    })?;
    if url.password().is_some() {
        return Err((
            "url",
            "holds a password; put it in notifications.email.password or \
             TOKENWATCH__NOTIFICATIONS__EMAIL__PASSWORD instead"
                .into(),
        ));
    }
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    // smtp:// is not a scheme the URL standard knows, so its host is kept as text.
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match (url.scheme(), tls.as_deref()) {
        ("smtps", None) | ("smtp", Some("required")) => {}
        ("smtp", None | Some("opportunistic")) if loopback => {}
        ("smtp", _) => {
            return Err((
                "url",
                format!(
                    "sends mail unencrypted to {}; use smtps://…:465 or add ?tls=required \
                     (plain smtp:// is only for a server on this machine)",
                    url.host_str().unwrap_or("?")
                ),
            ));
        }
        (scheme, _) => {
            return Err((
                "url",
                format!("has the scheme {scheme:?}; use smtps:// or smtp://…?tls=required"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(("url", "names no server".into()));
    }
    let from = c.from.trim().parse::<Mailbox>().map_err(|e| {
        (
            "from",
            format!("is not an e-mail address ({e}), e.g. \"tokenwatch <alerts@example.com>\""),
        )
    })?;
    if c.to.is_empty() {
        return Err(("to", "names no recipient; list at least one address".into()));
    }
    let to =
        c.to.iter()
            .map(|t| {
                t.trim()
                    .parse::<Mailbox>()
                    .map_err(|e| ("to", format!("{t:?} is not an e-mail address ({e})")))
            })
            .collect::<Result<Vec<_>, _>>()?;
    Ok(Parts { url, from, to })
}

/// The channel of `notifications.email`, or why it cannot be set up.
pub(super) fn channel(c: &EmailConfig) -> Result<Email, String> {
    let Parts { url, from, to } =
        parts(c).map_err(|(key, why)| format!("notifications.email.{key} {why}"))?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
        .map_err(|e| format!("notifications.email.url cannot be used: {e}"))?
        .timeout(Some(EMAIL_TIMEOUT));
    if let Some(password) = &c.password {
        let user = percent_decode(url.username());
        builder = builder.credentials(Credentials::new(user, password.expose().to_string()));
    }
    let shown = format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default()
            .unwrap_or(if url.scheme() == "smtps" { 465 } else { 25 })
    );
    Ok(Email {
        transport: builder.build(),
        from,
        to,
        shown,
    })
}

/// The URL's user name as the server knows it (`alerts%2Btw` → `alerts+tw`).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The message: the alert's one line as the subject, and a few lines of what it is about.
fn message(email: &Email, alert: &Alert) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(email.from.clone())
        .subject(one_line(&alert.text(), 150));
    for to in &email.to {
        builder = builder.to(to.clone());
    }
    let mut body = format!(
        "{}\n\nAccount: {}\nState: {}\n",
        alert.message,
        alert.account,
        alert.state.as_str()
    );
    if let Some(exp) = alert.expires_at {
        body.push_str(&format!("Expires: {}\n", ist_rfc3339(exp)));
    }
    body.push_str(&format!("At: {}\n\n-- tokenwatch\n", ist_rfc3339(alert.at)));
    builder
        .body(body)
        .map_err(|e| format!("the message could not be made: {e}"))
}

/// Send one alert, with bounded retries; the result in words.
pub(super) async fn send_email(
    email: Email,
    alert: Arc<Alert>,
    retry_delay: Duration,
) -> Result<(), String> {
    let shown = email.shown.clone();
    let msg = message(&email, &alert)?;
    let policy = crate::retry::RetryPolicy {
        attempts: WEBHOOK_ATTEMPTS,
        initial: retry_delay,
        max: retry_delay.saturating_mul(1 << WEBHOOK_ATTEMPTS),
        jitter: true,
    };
    let what = format!("Alert e-mail via {shown}:");
    let (result, attempts) = crate::retry::retry_counted(policy, &alert.account, &what, || {
        let (transport, msg) = (email.transport.clone(), msg.clone());
        async move { transport.send(msg).await.map(|_| ()).map_err(MailFailure) }
    })
    .await;
    match result {
        Ok(()) => {
            debug!(account = %alert.account, "Alert '{}' e-mailed via {shown}", alert.event.as_str());
            Ok(())
        }
        Err(e) => {
            let why = e.to_string();
            if e.0.is_permanent() {
                warn!(account = %alert.account, "Alert e-mail via {shown} refused the '{}' alert: {why}; not retried", alert.event.as_str());
            } else {
                warn!(account = %alert.account, "Alert e-mail via {shown}: attempt {attempts}/{WEBHOOK_ATTEMPTS} failed: {why}; the '{}' alert was not delivered", alert.event.as_str());
            }
            Err(why)
        }
    }
}

/// An SMTP failure: permanent answers (5xx: bad address, authentication refused) end the
/// delivery; the rest is tried again.
#[derive(Debug)]
struct MailFailure(lettre::transport::smtp::Error);

impl std::fmt::Display for MailFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = super::with_causes(&self.0);
        f.write_str(&one_line(&crate::printable::printable(&text), 300))
    }
}

impl crate::retry::Transient for MailFailure {
    fn is_transient(&self) -> bool {
        !self.0.is_permanent()
    }
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn config(url: &str) -> EmailConfig {
        EmailConfig {
            url: url.into(),
            from: "tokenwatch <alerts@example.com>".into(),
            to: vec!["trader@example.com".into()],
            password: Some(Secret::new("smtp-pass-9q")),
        }
    }

    #[test]
    fn a_user_name_is_percent_decoded_and_a_plus_stays_a_plus() {
        assert_eq!(
            percent_decode("alerts%2Btw%40example.com"),
            "alerts+tw@example.com"
        );
        assert_eq!(percent_decode("alerts+tw"), "alerts+tw");
    }

    #[test]
    fn only_encrypted_servers_or_this_machine() {
        for ok in [
            "smtps://user@smtp.example.com:465",
            "smtp://user@smtp.example.com:587?tls=required",
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://[::1]:2525?tls=opportunistic",
        ] {
            assert_eq!(check(&config(ok)), Ok(()), "{ok}");
        }
        let plain = check(&config("smtp://smtp.example.com:25")).unwrap_err();
        assert_eq!(plain.0, "url");
        assert!(
            plain.1.contains("unencrypted to smtp.example.com"),
            "{plain:?}"
        );
        let opportunistic =
            check(&config("smtp://smtp.example.com:587?tls=opportunistic")).unwrap_err();
        assert!(opportunistic.1.contains("unencrypted"), "{opportunistic:?}");
        let pass = check(&config("smtps://user:hunter2@smtp.example.com")).unwrap_err();
        assert!(pass.1.contains("holds a password") && !pass.1.contains("hunter2"));
        assert!(check(&config("https://smtp.example.com")).is_err());
        assert!(check(&config("not a url")).is_err());
        let mut c = config("smtps://smtp.example.com");
        c.to = vec![];
        assert_eq!(check(&c).unwrap_err().0, "to");
        c.to = vec!["nobody".into()];
        assert_eq!(check(&c).unwrap_err().0, "to");
        c.to = vec!["a@example.com".into()];
        c.from = "not an address".into();
        assert_eq!(check(&c).unwrap_err().0, "from");
    }
}
