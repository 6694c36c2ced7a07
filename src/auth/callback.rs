//! The one-shot callback listener: Upstox sends the browser back to the registered
//! redirect URI (`http://localhost:5001/callback`), and tokenwatch listens there — on
//! loopback only, and only while a login waits.
//!
//! A request with a wrong or missing `state` gets 400 and the login keeps waiting; other
//! paths get 404. The first request with the right state is handed to the login, which
//! answers it with the success or failure page once the code has been exchanged.

use super::oauth::{Callback, CallbackProblem};
use crate::brokers::{Broker, BrokerClient};
use crate::secret::Secret;
use crate::serving::{self, Running};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};
use url::Url;

const SUCCESS_PAGE: &str = include_str!("../../assets/callback_success.html");
const FAILURE_PAGE: &str = include_str!("../../assets/callback_failure.html");

/// How long the browser's request waits for the exchange before it gets an answer anyway.
const PAGE_WAIT: Duration = Duration::from_secs(60);

/// Why the listener could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenError {
    /// The redirect URI does not point at this machine.
    #[error(
        "{broker}.redirect_uri {uri} is not a loopback address (localhost, 127.0.0.1 or [::1]): that app's \
         callback goes to another machine, so tokenwatch cannot receive it here; register \
         http://localhost:{port}/callback with the {name} app and set {broker}.redirect_uri to it",
        name = broker.display_name(), port = default_port(*broker)
    )]
    NotLoopback {
        /// Whose app.
        broker: Broker,
        /// The redirect URI.
        uri: String,
    },
    /// The port is taken by another program.
    #[error(
        "port {port} of {broker}.redirect_uri is in use by another program; stop it (see `ss -ltnp | grep :{port}`), \
         or register another redirect URI with the {name} app and set {broker}.redirect_uri to it",
        name = broker.display_name()
    )]
    PortInUse {
        /// Whose app.
        broker: Broker,
        /// The port.
        port: u16,
    },
    /// Anything else that stopped the listener.
    #[error("cannot listen for the login callback on {addr}: {reason}")]
    Other {
        /// The address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

/// A callback with the right state, waiting for the page to show.
pub struct Hit {
    /// What the browser brought back.
    pub callback: Callback,
    /// Send the page outcome here: `Ok(expiry text)` or `Err(reason)`.
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// The running listener. Stops when dropped.
pub struct Listener {
    /// Where it listens.
    pub addrs: Vec<SocketAddr>,
    /// Right-state callbacks arrive here.
    pub hits: mpsc::Receiver<Hit>,
    running: Running,
}

impl Listener {
    /// Stop listening, and wait (a few seconds at most) until the pages already being
    /// answered have gone out, so a command that exits next does not cut the browser off.
    pub async fn close(self) {
        self.running.close(Duration::from_secs(3)).await;
    }
}

/// The port of `broker`'s default redirect URI.
fn default_port(broker: Broker) -> u16 {
    match broker {
        Broker::Dhan => 5003,
        _ => 5001,
    }
}

/// The loopback addresses a redirect URI's host names.
pub fn loopback_addrs(
    redirect_uri: &Url,
    broker: Broker,
) -> Result<(Vec<IpAddr>, u16), ListenError> {
    let port = redirect_uri.port_or_known_default().unwrap_or(80);
    let ips = match redirect_uri.host() {
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        }
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => vec![IpAddr::V6(ip)],
        _ => {
            return Err(ListenError::NotLoopback {
                broker,
                uri: redirect_uri.to_string(),
            });
        }
    };
    Ok((ips, port))
}

#[derive(Clone)]
struct App {
    path: String,
    state: Secret,
    account: String,
    /// The broker, which reads what its login sends back.
    broker: BrokerClient,
    hits: mpsc::Sender<Hit>,
    /// Once a callback was accepted, later ones are turned away.
    taken: Arc<Mutex<bool>>,
}

/// Start listening on the redirect URI's loopback address(es) and port.
pub async fn listen(
    redirect_uri: &Url,
    state: Secret,
    account: &str,
    broker: BrokerClient,
) -> Result<Listener, ListenError> {
    let (ips, port) = loopback_addrs(redirect_uri, broker.broker())?;
    let mut listeners = Vec::new();
    let mut first_error = None;
    for ip in &ips {
        let addr = SocketAddr::new(*ip, port);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => listeners.push(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(ListenError::PortInUse {
                    broker: broker.broker(),
                    port,
                });
            }
            // `localhost` also tries ::1, which a machine without IPv6 lacks: fine if v4 works.
            Err(e) => {
                first_error.get_or_insert(ListenError::Other {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if listeners.is_empty() {
        return Err(first_error.unwrap_or(ListenError::Other {
            addr: format!("port {port}"),
            reason: "no address to listen on".into(),
        }));
    }
    let (hits_tx, hits) = mpsc::channel(1);
    let app = App {
        path: redirect_uri.path().to_owned(),
        state,
        account: account.to_owned(),
        broker,
        hits: hits_tx,
        taken: Arc::new(Mutex::new(false)),
    };
    let router = axum::Router::new().fallback(handle).with_state(app);
    let addrs = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let running = serving::serve(
        listeners,
        router,
        serving::Switch::new(),
        "login callback listener",
    );
    Ok(Listener {
        addrs,
        hits,
        running,
    })
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    if req.uri().path() != app.path {
        return page(
            StatusCode::NOT_FOUND,
            FAILURE_PAGE,
            &app.account,
            "reason",
            "This is not tokenwatch's login address.",
        );
    }
    if req.method() != Method::GET {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            FAILURE_PAGE,
            &app.account,
            "reason",
            "The login callback only accepts GET.",
        );
    }
    let callback = match app.broker.read_callback(req.uri().query(), &app.state) {
        Ok(c) => c,
        Err(problem) => {
            let status = match problem {
                CallbackProblem::MissingState | CallbackProblem::WrongState => {
                    tracing::warn!(account = %app.account, "Refused a login callback: {problem}");
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::BAD_REQUEST,
            };
            return page(
                status,
                FAILURE_PAGE,
                &app.account,
                "reason",
                &problem.to_string(),
            );
        }
    };
    {
        let mut taken = app.taken.lock().await;
        if *taken {
            return page(
                StatusCode::CONFLICT,
                FAILURE_PAGE,
                &app.account,
                "reason",
                "This login was already completed; look at tokenwatch for the result.",
            );
        }
        *taken = true;
    }
    let (reply, answer) = oneshot::channel();
    if app.hits.send(Hit { callback, reply }).await.is_err() {
        return page(
            StatusCode::GONE,
            FAILURE_PAGE,
            &app.account,
            "reason",
            "The login is no longer waiting.",
        );
    }
    match tokio::time::timeout(PAGE_WAIT, answer).await {
        Ok(Ok(Ok(expiry))) => page(
            StatusCode::OK,
            SUCCESS_PAGE,
            &app.account,
            "expires",
            &expiry,
        ),
        Ok(Ok(Err(reason))) => page(
            StatusCode::OK,
            FAILURE_PAGE,
            &app.account,
            "reason",
            &reason,
        ),
        _ => page(
            StatusCode::OK,
            FAILURE_PAGE,
            &app.account,
            "reason",
            "tokenwatch did not answer in time; look at tokenwatch for the result.",
        ),
    }
}

/// Fill a page's placeholders with HTML-escaped text.
fn page(status: StatusCode, template: &str, account: &str, slot: &str, text: &str) -> Response {
    let body = template
        .replace("{{account}}", &escape(account))
        .replace(&format!("{{{{{slot}}}}}"), &escape(text));
    let mut resp = (status, Html(body)).into_response();
    let headers = resp.headers_mut();
    headers.insert("cache-control", "no-store".parse().expect("static header"));
    headers.insert(
        "referrer-policy",
        "no-referrer".parse().expect("static header"),
    );
    headers.insert(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
            .parse()
            .expect("static header"),
    );
    resp
}

/// HTML-escape text for a page.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_redirects_are_served() {
        let ok = |u: &str| loopback_addrs(&Url::parse(u).unwrap(), Broker::Upstox);
        assert_eq!(ok("http://localhost:5001/callback").unwrap().1, 5001);
        assert_eq!(ok("http://localhost:5001/callback").unwrap().0.len(), 2);
        assert_eq!(
            ok("http://127.0.0.1:7/cb").unwrap().0,
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        assert_eq!(
            ok("http://[::1]:7/cb").unwrap().0,
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        assert!(matches!(
            ok("https://example.com/cb"),
            Err(ListenError::NotLoopback { .. })
        ));
        assert!(matches!(
            ok("http://192.168.1.4:5001/cb"),
            Err(ListenError::NotLoopback { .. })
        ));
        // The message names the account's broker's key and app, never another's.
        let kite = loopback_addrs(&Url::parse("https://example.com/cb").unwrap(), Broker::Kite)
            .unwrap_err()
            .to_string();
        assert!(
            kite.starts_with("kite.redirect_uri https://example.com/cb is not a loopback address")
                && kite.contains("with the Zerodha Kite app and set kite.redirect_uri"),
            "{kite}"
        );
        assert!(!kite.contains("upstox"), "{kite}");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<script>alert('x')</script> & \""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;"
        );
    }
}
