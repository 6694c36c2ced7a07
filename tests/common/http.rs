//! HTTP as the tests speak it: a `reqwest` client that never follows redirects, and a raw
//! socket client that sends bytes as they are (forged requests) and reads the answer whole.

use reqwest::header::HeaderMap;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// Longest wait for a raw answer.
const RAW_LIMIT: Duration = Duration::from_secs(30);

/// A client that never follows redirects and ignores proxy variables; `timeout` bounds each
/// request (none: only the server's answer ends it).
pub fn client(timeout: Option<Duration>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().unwrap()
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where a redirect points.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Status line, every header and the body.
    pub fn everything(&self) -> String {
        let mut out = format!("{}\n", self.status);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        out.push_str(&self.body);
        out
    }
}

/// Send a request; its answer.
pub async fn fetch(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.expect("HTTP request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// `GET url` with a fresh client (30 s limit).
pub async fn get(url: impl AsRef<str>) -> Resp {
    fetch(client(Some(RAW_LIMIT)).get(url.as_ref())).await
}

// ---------------------------------------------------------------------------------------
// Raw HTTP: what goes over the wire, both ways
// ---------------------------------------------------------------------------------------

/// One HTTP answer, raw.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, self.body))
    }

    pub fn all(&self) -> String {
        format!("{}\r\n\r\n{}", self.head, self.body)
    }
}

/// Send `request` as is to 127.0.0.1:`port` and read the answer until the server closes.
/// Status 0: no answer at all (the connection was closed without one).
pub fn raw_http(port: u16, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(RAW_LIMIT)).unwrap();
    // A server may answer and close before reading a huge request whole. (No half-close:
    // hyper drops a connection whose client stopped sending before the answer is ready.)
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = body.to_owned();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A request with `Connection: close`; `extra` are more header lines.
pub fn request(method: &str, port: u16, target: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for h in extra {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub fn http_get(port: u16, target: &str) -> Answer {
    raw_http(port, &request("GET", port, target, &[], b""))
}

/// `host:port/path?query` of an `http://` URL: (port, target).
pub fn split_url(url: &str) -> (u16, String) {
    let u = url::Url::parse(url).unwrap();
    let target = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    (u.port_or_known_default().unwrap(), target)
}

/// The value of query parameter `key` in `url`.
pub fn query_param(url: impl AsRef<str>, key: &str) -> Option<String> {
    url::Url::parse(url.as_ref())
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
