//! Ports on loopback, and waiting for something to happen.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port nobody listens on right now, on 127.0.0.1 and (where IPv6 exists) ::1, below the
/// kernel's ephemeral range (32768+): a port from `bind(":0")` comes from that range, and an
/// outgoing connection of another test could take it between this check and the bind of the
/// code under test.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 12_000) as u16;
    loop {
        let port = 20_000 + (offset + NEXT.fetch_add(7, Ordering::Relaxed) % 12_000) % 12_000;
        if port_free(port) {
            return port;
        }
    }
}

/// True when `port` can be bound on 127.0.0.1 and (where IPv6 exists) on ::1.
pub fn port_free(port: u16) -> bool {
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
    let v6 = match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        Ok(_) => true,
        Err(e) => e.kind() != ErrorKind::AddrInUse,
    };
    v4 && v6
}

/// Something accepts TCP connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

/// Poll `ready` until it holds; panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
