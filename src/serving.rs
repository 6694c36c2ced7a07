//! The one way tokenwatch runs its small HTTP servers (the HTTP API, the OAuth callback
//! listener, the token-request notifier, the simulator): [`serve`] starts a router on one
//! or more bound listeners and returns a [`Running`], stopped gracefully on
//! [`Running::shutdown`], or in the background when dropped. Handlers can see the peer's
//! address (`ConnectInfo<SocketAddr>`).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest [`Running::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

/// Serve `router` on every listener until `switch` is thrown; `what` names the server in
/// the log if it fails.
pub(crate) fn serve(
    listeners: Vec<TcpListener>,
    router: axum::Router,
    switch: Switch,
    what: &'static str,
) -> Running {
    let tasks = listeners
        .into_iter()
        .map(|listener| {
            let router = router.clone();
            let mut stopped = switch.stopped();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                let app = router.into_make_service_with_connect_info::<SocketAddr>();
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::warn!("the {what} stopped: {e}");
                }
            })
        })
        .collect();
    Running { switch, tasks }
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
