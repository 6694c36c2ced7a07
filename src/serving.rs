//! The running half of tokenwatch's small HTTP servers (the simulator, the token-request
//! notifier): stopped gracefully on `shutdown`, or in the background when dropped.

use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest [`Running::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A spawned server task and the switch that stops it.
#[derive(Debug)]
pub(crate) struct Running {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// `task` serves until `stop` turns true.
    pub(crate) fn new(stop: watch::Sender<bool>, task: JoinHandle<()>) -> Running {
        Running {
            stop,
            task: Some(task),
        }
    }

    /// Stop accepting connections, let open ones finish, and wait for the server to end
    /// (at most a few seconds, then the remaining connections are cut).
    pub(crate) async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
