//! The one outbound HTTP client of the process, shared by every account and every call
//! (checks, token exchanges and requests, alert webhooks). Building a client reads the
//! system's root certificates (about 160 kB and 2 ms), so a daemon with a thousand accounts
//! builds it once, not a thousand times, and every call reuses its connection pool.
//!
//! It connects within [`CONNECT_TIMEOUT`], follows no redirect (an API that redirects is
//! something else answering), and names itself `tokenwatch/<version>`. Each request sets
//! its own total time limit.

use std::sync::OnceLock;
use std::time::Duration;

/// How long to wait for a TCP/TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client with these settings, for a caller that needs other ones (tests).
pub fn build(connect: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .user_agent(concat!("tokenwatch/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("cannot set up HTTP: {e}{cause}")
        })
}

/// The shared client (built on first use).
pub fn shared() -> Result<reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT.get_or_init(|| build(CONNECT_TIMEOUT)).clone()
}

/// Why an answer's body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// The answer is larger than the limit: its `Content-Length` said so (nothing was read)
    /// or the body went past the limit while streaming (reading stopped there).
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
        /// The bytes that came in before reading stopped (0 when `Content-Length` refused it).
        read: usize,
        /// The `Content-Length` the answer declared, if any.
        declared: Option<u64>,
    },
    /// The connection failed, or the request's time limit passed, while reading.
    Network(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge { limit, .. } => {
                write!(f, "an answer larger than {}", size_text(*limit))
            }
            BodyError::Network(e) => {
                let cause = std::error::Error::source(e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                let kind = if e.is_timeout() {
                    "timed out"
                } else {
                    "broke off"
                };
                write!(f, "the answer {kind} while being read{cause}")
            }
        }
    }
}

/// A size for people: `64 KiB`, `1 MiB`, `300 bytes`.
pub fn size_text(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The whole body of `resp` when it is at most `max` bytes; otherwise
/// [`BodyError::TooLarge`], without buffering more than `max` bytes and one network chunk.
/// A `Content-Length` above `max` is refused before a byte of the body is read; a body
/// without one (chunked) is read as it streams and abandoned the moment it passes `max`.
/// Dropping the response closes its connection, so an endless answer costs nothing more. The
/// request's own time limit (reqwest's `timeout`) still bounds a body that trickles in.
pub async fn read_limited(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge {
            limit: max,
            read: 0,
            declared,
        });
    }
    read_upto(resp, max)
        .await?
        .map_err(|read| BodyError::TooLarge {
            limit: max,
            read,
            declared,
        })
}

/// The first `max` bytes of `resp`'s body, whatever follows them (for showing the start of an
/// answer). Reading stops at `max` bytes, at the end of the body, or at an error; what came
/// in by then is returned.
pub async fn read_start(resp: reqwest::Response, max: usize) -> Vec<u8> {
    let mut resp = resp;
    let mut bytes = Vec::new();
    while bytes.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    bytes
}

/// Read until the end of the body (`Ok(body)`) or until it passes `max` bytes
/// (`Err(received)`: how many bytes came in, the last chunk included; none of them is kept).
async fn read_upto(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Result<Vec<u8>, usize>, BodyError> {
    let mut bytes = Vec::new();
    loop {
        match resp.chunk().await.map_err(BodyError::Network)? {
            None => return Ok(Ok(bytes)),
            Some(chunk) if bytes.len() + chunk.len() > max => {
                return Ok(Err(bytes.len() + chunk.len()));
            }
            Some(chunk) => bytes.extend_from_slice(&chunk),
        }
    }
}
