//! The one way tokenwatch runs its small HTTP servers (the HTTP API, the OAuth callback
//! listener, the token-request notifier, the simulator): [`serve`] starts a router on one
//! or more bound listeners and returns a [`Running`], stopped gracefully on
//! [`Running::shutdown`], or in the background when dropped. Handlers can see the peer's
//! address (`ConnectInfo<SocketAddr>`).
//!
//! Every server keeps the same limits ([`Limits`]), so that a local program opening
//! connections and never finishing them cannot take the process's file descriptors away from
//! the token worker:
//!
//! - a request's head must arrive within 10 s of the connection opening (or of the previous
//!   answer), else the connection is closed (a "slowloris" sending one byte at a time);
//! - a connection that moves no byte either way for 60 s while no handler works for it is
//!   closed (a client that stops sending its body, or stops reading the answer);
//! - a server holds at most 256 connections, fewer when the open-file limit is low (it
//!   always leaves [`FD_RESERVE`] descriptors to the rest of the process). At the cap, a new
//!   connection takes the place of the one that has waited longest without a request being
//!   handled; when every connection has a request in hand, the new one is answered
//!   `503 Service Unavailable` at once and closed.

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Longest [`Running::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest a request's head may take to arrive.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may stay silent while no handler works for it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most connections one server holds at once.
pub const MAX_CONNECTIONS: usize = 256;
/// File descriptors a server never takes: the token worker's files, locks, its calls to
/// Upstox, `renew.command` and hooks need them (a renewal must never fail with "too many
/// open files" because someone floods the API).
pub const FD_RESERVE: u64 = 256;
/// After a failed accept (out of file descriptors, say), wait this long before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line a minute about refused connections or failed accepts.
const COMPLAINT_EVERY: Duration = Duration::from_secs(60);
/// What a connection over the cap is told before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
content-type: text/plain\r\ncontent-length: 58\r\n\r\n\
too many open connections to tokenwatch; try again later\r\n";

/// How a server treats its connections (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest a request's head may take to arrive.
    pub header_read: Duration,
    /// Longest a connection may move no byte while no handler works for it.
    pub idle: Duration,
    /// Most connections held at once.
    pub max_connections: usize,
}

impl Limits {
    /// The limits every server runs with: [`HEADER_READ_TIMEOUT`], [`IDLE_TIMEOUT`], and
    /// [`MAX_CONNECTIONS`] or fewer, so that [`FD_RESERVE`] descriptors stay free under the
    /// process's open-file limit.
    pub fn standard() -> Limits {
        Limits {
            header_read: HEADER_READ_TIMEOUT,
            idle: IDLE_TIMEOUT,
            max_connections: connection_cap(open_file_limit()),
        }
    }
}

/// The most connections a server holds under a soft open-file limit of `soft`.
pub fn connection_cap(soft: u64) -> usize {
    let spare = if soft > FD_RESERVE * 2 {
        soft - FD_RESERVE
    } else {
        // A very low limit: a quarter of it, so the rest of the process keeps most.
        soft / 4
    };
    (spare.min(MAX_CONNECTIONS as u64) as usize).max(1)
}

/// The soft limit on open files (1024 when it cannot be read).
pub fn open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed to it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    }
}

/// Raise the soft limit on open files to the hard limit: a thousand accounts, their token
/// files, locks and connections need more than the usual 1024. Called at the start of every
/// command, before any listener. False when the limit could not be raised.
pub fn raise_open_file_limit() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return false;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            return libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0;
        }
    }
    true
}

/// The switch that stops a server; made before the router for a router that must know
/// (the simulator's held requests end when it stops).
#[derive(Debug)]
pub(crate) struct Switch {
    stop: watch::Sender<bool>,
}

impl Switch {
    /// A switch, not yet thrown.
    pub(crate) fn new() -> Switch {
        Switch {
            stop: watch::channel(false).0,
        }
    }

    /// Turns true when the server is told to stop.
    pub(crate) fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// A running server: its tasks and the switch that stops them.
#[derive(Debug)]
pub(crate) struct Running {
    switch: Switch,
    tasks: Vec<JoinHandle<()>>,
}

/// Serve `router` on every listener until `switch` is thrown, with the [`Limits::standard`]
/// limits; `what` names the server in the log.
pub(crate) fn serve(
    listeners: Vec<TcpListener>,
    router: axum::Router,
    switch: Switch,
    what: &'static str,
) -> Running {
    serve_with(listeners, router, switch, what, Limits::standard())
}

/// [`serve`] with other limits.
pub(crate) fn serve_with(
    listeners: Vec<TcpListener>,
    router: axum::Router,
    switch: Switch,
    what: &'static str,
    limits: Limits,
) -> Running {
    let shared = Arc::new(Shared {
        what,
        limits,
        base: Instant::now(),
        conns: Mutex::new(Conns::default()),
    });
    let tasks = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(accept_loop(
                listener,
                router.clone(),
                shared.clone(),
                switch.stopped(),
            ))
        })
        .collect();
    Running { switch, tasks }
}

/// What the listeners of one server share.
struct Shared {
    what: &'static str,
    limits: Limits,
    /// Times are kept as milliseconds since this.
    base: Instant,
    conns: Mutex<Conns>,
}

/// The open connections of one server.
#[derive(Default)]
struct Conns {
    next_id: u64,
    open: HashMap<u64, Arc<Conn>>,
    /// When the log last told of refused connections or failed accepts.
    complained: Option<Instant>,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn millis(&self) -> u64 {
        Instant::now().duration_since(self.base).as_millis() as u64
    }

    /// Log `message` unless something was logged less than a minute ago.
    fn complain(&self, message: impl FnOnce() -> String) {
        let mut conns = self.conns();
        let now = Instant::now();
        if conns
            .complained
            .is_none_or(|t| now.duration_since(t) >= COMPLAINT_EVERY)
        {
            conns.complained = Some(now);
            drop(conns);
            tracing::warn!("{}", message());
        }
    }
}

/// One connection, as its server sees it.
struct Conn {
    /// When it last moved a byte or a handler finished (milliseconds since `Shared::base`).
    last: AtomicU64,
    /// A handler is running for it.
    handling: AtomicBool,
    /// The running handler has the whole request body (or stopped reading it).
    body_done: AtomicBool,
    /// Close it now: a newer connection took its place.
    evict: Notify,
}

impl Conn {
    /// A handler works for it: it is neither idle nor to be displaced.
    fn busy(&self) -> bool {
        self.handling.load(Ordering::Acquire) && self.body_done.load(Ordering::Acquire)
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Some((id, conn)) = admit(&shared, &stream) {
                    tasks.spawn(serve_connection(
                        stream,
                        peer,
                        router.clone(),
                        shared.clone(),
                        id,
                        conn,
                        stopped.clone(),
                    ));
                    // Let a displaced connection close before the next accept.
                    tokio::task::yield_now().await;
                }
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                shared.complain(|| {
                    format!(
                        "the {} cannot accept connections ({e}); it tries again",
                        shared.what
                    )
                });
                tokio::select! {
                    _ = stopped.wait_for(|stop| *stop) => break,
                    _ = tokio::time::sleep(ACCEPT_PAUSE) => {}
                }
            }
        }
    }
    drop(listener);
    // Open connections finish their request (each was told to stop) or are cut when
    // Running::close aborts this task, which drops the set and its tasks.
    while tasks.join_next().await.is_some() {}
}

/// Errors of one connection that do not concern the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Count a new connection in, displacing the one idle longest at the cap; `None` (after a
/// 503) when every connection has a request in hand.
fn admit(shared: &Shared, stream: &TcpStream) -> Option<(u64, Arc<Conn>)> {
    let now = shared.millis();
    let mut conns = shared.conns();
    if conns.open.len() >= shared.limits.max_connections {
        let victim = conns
            .open
            .iter()
            .filter(|(_, c)| !c.busy())
            .min_by_key(|(id, c)| (c.last.load(Ordering::Acquire), **id))
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.open.remove(&id)) {
            Some(old) => old.evict.notify_one(),
            None => {
                drop(conns);
                // Best effort and never waiting: the socket's send buffer is empty.
                let _ = stream.try_write(REFUSED);
                let cap = shared.limits.max_connections;
                shared.complain(|| {
                    format!(
                        "the {} refused connections: {cap} were open at once, each with a \
                         request in hand (the most it keeps); a local program may be flooding it",
                        shared.what
                    )
                });
                return None;
            }
        }
    }
    let id = conns.next_id;
    conns.next_id += 1;
    let conn = Arc::new(Conn {
        last: AtomicU64::new(now),
        handling: AtomicBool::new(false),
        body_done: AtomicBool::new(false),
        evict: Notify::new(),
    });
    conns.open.insert(id, conn.clone());
    Some((id, conn))
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    shared: Arc<Shared>,
    id: u64,
    conn: Arc<Conn>,
    mut stopped: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
        shared: shared.clone(),
    });
    let service = {
        let (conn, shared) = (conn.clone(), shared.clone());
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            use http_body::Body as _;
            use tower_service::Service as _;
            req.extensions_mut().insert(ConnectInfo(peer));
            conn.body_done
                .store(req.body().is_end_stream(), Ordering::Release);
            conn.handling.store(true, Ordering::Release);
            let handling = Handling {
                conn: conn.clone(),
                shared: shared.clone(),
            };
            let (parts, inner) = req.into_parts();
            let body = WatchedBody {
                inner,
                conn: conn.clone(),
            };
            let req = hyper::Request::from_parts(parts, axum::body::Body::new(body));
            let mut router = router.clone();
            async move {
                let answer = router.call(req).await;
                drop(handling);
                answer
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read)
        .keep_alive(true);
    let http = builder.serve_connection(io, service);
    tokio::pin!(http);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = http.as_mut() => break,
            _ = stopped.wait_for(|stop| *stop), if !stopping => {
                http.as_mut().graceful_shutdown();
                stopping = true;
            }
            _ = conn.evict.notified() => break,
            _ = idle(&conn, &shared) => break,
        }
    }
    shared.conns().open.remove(&id);
}

/// Resolves once `conn` has moved no byte for the idle limit while no handler worked for it.
async fn idle(conn: &Conn, shared: &Shared) {
    let limit = shared.limits.idle;
    loop {
        if conn.busy() {
            tokio::time::sleep(limit).await;
            continue;
        }
        let last = shared.base + Duration::from_millis(conn.last.load(Ordering::Acquire));
        let deadline = last + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// Ends a connection's "handler running" state when the handler's future ends or is dropped.
struct Handling {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.conn
            .last
            .store(self.shared.millis(), Ordering::Release);
        self.conn.handling.store(false, Ordering::Release);
    }
}

/// A request body that says when it has been read to the end (or dropped).
struct WatchedBody {
    inner: Incoming,
    conn: Arc<Conn>,
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.conn.body_done.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.conn.body_done.store(true, Ordering::Release);
    }
}

/// A connection's socket that notes when a byte last moved.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Watched {
    fn moved(&self) {
        self.conn
            .last
            .store(self.shared.millis(), Ordering::Release);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Running {
    /// Stop accepting connections, let open ones finish, and wait for the server to end
    /// (at most a few seconds, then the remaining connections are cut).
    pub(crate) async fn shutdown(self) {
        self.close(SHUTDOWN_GRACE).await;
    }

    /// [`Running::shutdown`] with another grace period.
    pub(crate) async fn close(mut self, grace: Duration) {
        self.switch.stop.send_replace(true);
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            for a in aborts {
                a.abort();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.switch.stop.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use std::io::{Read, Write};
    use std::time::Instant as StdInstant;

    /// Short limits, so a test takes a second or two instead of a minute.
    const SHORT: Limits = Limits {
        header_read: Duration::from_millis(400),
        idle: Duration::from_millis(800),
        max_connections: 4,
    };

    /// A server on loopback with `SHORT` limits: `/` answers "ok", `/held` waits until
    /// released, `/echo` reads its whole body, `/big` answers 8 MiB.
    async fn server(release: Arc<Notify>, limits: Limits) -> (Running, SocketAddr) {
        let router = axum::Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/held",
                get(move || {
                    let release = release.clone();
                    async move {
                        release.notified().await;
                        "released"
                    }
                }),
            )
            .route(
                "/echo",
                post(|body: Bytes| async move { format!("{} bytes", body.len()) }),
            )
            .route("/big", get(|| async { vec![b'x'; 8 << 20] }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let running = serve_with(vec![listener], router, Switch::new(), "test server", limits);
        (running, addr)
    }

    /// A blocking client socket with a generous read timeout.
    fn connect(addr: SocketAddr) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Seconds until the server closes `s` (reading and dropping what it sends).
    fn seconds_until_closed(mut s: std::net::TcpStream) -> f64 {
        let start = StdInstant::now();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return start.elapsed().as_secs_f64(),
                Ok(_) => {}
            }
        }
    }

    fn get_ok(addr: SocketAddr) -> String {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_head_that_never_ends_is_closed_by_the_header_timeout() {
        // The idle limit far away: only the header timeout can close it in time.
        let limits = Limits {
            idle: Duration::from_secs(60),
            ..SHORT
        };
        let (running, addr) = server(Arc::new(Notify::new()), limits).await;
        let took = tokio::task::spawn_blocking(move || {
            let mut s = connect(addr);
            s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").unwrap();
            seconds_until_closed(s)
        })
        .await
        .unwrap();
        // Closed by the 0.4 s header timeout, long before the idle limit.
        assert!(took < 10.0, "still open after {took} s");
        assert!(took >= 0.3, "closed after {took} s, before the limit");
        running.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_that_never_ends_and_an_answer_never_read_are_closed_when_idle() {
        let (running, addr) = server(Arc::new(Notify::new()), SHORT).await;
        let (body, unread) = tokio::task::spawn_blocking(move || {
            // Headers promise 1000 bytes; 10 come, then nothing.
            let mut s = connect(addr);
            s.write_all(
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789",
            )
            .unwrap();
            let body = seconds_until_closed(s);
            // 8 MiB asked for, not one byte read: the server's writes stall.
            let mut s = connect(addr);
            s.set_nonblocking(false).unwrap();
            s.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let start = StdInstant::now();
            // Wait without reading until the server gives up, then see the socket closed.
            std::thread::sleep(Duration::from_secs(3));
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
            let unread = (start.elapsed().as_secs_f64(), sink.len());
            (body, unread)
        })
        .await
        .unwrap();
        assert!(
            (0.7..10.0).contains(&body),
            "a stalled body: closed after {body} s"
        );
        // The stream ended short of the 8 MiB answer: the server cut it.
        assert!(unread.0 < 15.0, "an unread answer: open for {} s", unread.0);
        assert!(
            unread.1 < 8 << 20,
            "the whole answer was sent: {} bytes",
            unread.1
        );
        assert!(get_ok(addr).contains("200 OK"), "the server still answers");
        running.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_the_cap_an_idle_connection_makes_room_and_busy_ones_get_a_503() {
        let release = Arc::new(Notify::new());
        let (running, addr) = server(release.clone(), SHORT).await;
        let answers = tokio::task::spawn_blocking(move || {
            // Four idle connections fill the cap; a fifth with a request is still answered.
            let idle: Vec<_> = (0..4).map(|_| connect(addr)).collect();
            std::thread::sleep(Duration::from_millis(100));
            let served = get_ok(addr);
            // Four requests in hand fill it with busy connections: the next is refused.
            let held: Vec<_> = (0..4)
                .map(|_| {
                    let mut s = connect(addr);
                    s.write_all(b"GET /held HTTP/1.1\r\nhost: x\r\n\r\n")
                        .unwrap();
                    s
                })
                .collect();
            std::thread::sleep(Duration::from_millis(300));
            let refused = get_ok(addr);
            drop((idle, held));
            (served, refused)
        })
        .await
        .unwrap();
        assert!(answers.0.contains("200 OK"), "{}", answers.0);
        assert!(answers.1.starts_with("HTTP/1.1 503"), "{}", answers.1);
        assert!(
            answers.1.contains("too many open connections"),
            "{}",
            answers.1
        );
        release.notify_waiters();
        running.shutdown().await;
    }

    #[test]
    fn the_cap_leaves_descriptors_to_the_worker() {
        assert_eq!(connection_cap(1024), 256);
        assert_eq!(connection_cap(524_288), 256);
        assert_eq!(connection_cap(600), 256);
        assert_eq!(connection_cap(400), 100);
        assert_eq!(connection_cap(2), 1);
    }
}
