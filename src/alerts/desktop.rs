//! Delivery to the desktop (cargo feature `desktop`): a notification through notify-rust,
//! critical ones until dismissed.

use super::{Alert, one_line};
use crate::messages::Level;
use crate::timefmt::human;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// Show one alert on the desktop; failures are logged.
pub(super) async fn show_desktop(alert: Arc<Alert>, dismiss_after: Duration) {
    /// A notification server that does not answer must not hold a delivery forever.
    const DESKTOP_LIMIT: Duration = Duration::from_secs(10);
    let shown = alert.clone();
    let show = tokio::task::spawn_blocking(move || {
        use notify_rust::{Notification, Timeout};
        let mut n = Notification::new();
        n.appname("tokenwatch")
            .summary(&shown.title)
            .body(&shown.message);
        #[cfg(all(unix, not(target_os = "macos")))]
        n.urgency(match shown.level {
            Level::Critical => notify_rust::Urgency::Critical,
            Level::Warning | Level::Info => notify_rust::Urgency::Normal,
        });
        n.timeout(match shown.level {
            Level::Critical => Timeout::Never,
            Level::Warning | Level::Info => {
                Timeout::Milliseconds(u32::try_from(dismiss_after.as_millis()).unwrap_or(u32::MAX))
            }
        });
        n.show().map(|_| ()).map_err(|e| e.to_string())
    });
    match tokio::time::timeout(DESKTOP_LIMIT, show).await {
        Ok(Ok(Ok(()))) => {
            debug!(account = %alert.account, "Alert '{}' shown on the desktop", alert.event.as_str())
        }
        Ok(Ok(Err(why))) => warn!(
            account = %alert.account,
            "Cannot show the '{}' alert on the desktop: {}",
            alert.event.as_str(),
            one_line(&why, 300)
        ),
        Ok(Err(_)) => {
            warn!(account = %alert.account, "Showing the '{}' alert on the desktop stopped unexpectedly", alert.event.as_str())
        }
        Err(_) => warn!(
            account = %alert.account,
            "The desktop did not show the '{}' alert within {}",
            alert.event.as_str(),
            human(DESKTOP_LIMIT)
        ),
    }
}
