//! Delivery to `notifications.command`: one run per alert, with the alert in
//! `TOKENWATCH_ALERT_*` variables and a time limit (see the module docs of [`crate::alerts`]).

use super::Alert;
use crate::process::{self, Run};
use crate::timefmt::human;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// Run `notifications.command` for one alert; failures are logged, and said.
pub(super) async fn run_command(
    argv: Vec<String>,
    alert: Arc<Alert>,
    limit: Duration,
) -> Result<(), String> {
    let Some((program, args)) = argv
        .split_first()
        .filter(|(p, _)| !p.trim().is_empty())
        .map(|(p, a)| (p.clone(), a.to_vec()))
    else {
        let why = "notifications.command has an empty program name; it was not run";
        warn!(account = %alert.account, "{why}");
        return Err(why.into());
    };
    let envs = alert.env_vars();
    let hidden = crate::process::hidden_from_hooks();
    let prog = program.clone();
    let run = tokio::task::spawn_blocking(move || {
        let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
        process::run(&prog, &args, &envs, &hidden, limit)
    })
    .await
    .unwrap_or_else(|e| Run::NotStarted(format!("it stopped unexpectedly: {e}")));
    let event = alert.event.as_str();
    let failed = |why: String| {
        warn!(account = %alert.account, "{why}");
        Err(why)
    };
    match run {
        Run::Exited(out) => {
            use std::os::unix::process::ExitStatusExt;
            let stderr = process::stderr_excerpt(&out.stderr);
            match (out.status.code(), out.status.signal()) {
                (Some(0), _) => {
                    debug!(
                        account = %alert.account,
                        "notifications.command ({program}) ran for the '{event}' alert"
                    );
                    Ok(())
                }
                (Some(code), _) => failed(format!(
                    "notifications.command ({program}) exited with code {code} for the '{event}' alert{stderr}"
                )),
                (None, Some(signal)) => failed(format!(
                    "notifications.command ({program}) was ended by signal {signal} for the '{event}' alert{stderr}"
                )),
                (None, None) => failed(format!(
                    "notifications.command ({program}) ended without an exit code for the '{event}' alert{stderr}"
                )),
            }
        }
        Run::TimedOut => failed(format!(
            "notifications.command ({program}) did not finish within {} for the '{event}' alert and was stopped",
            human(limit)
        )),
        Run::NotStarted(why) => failed(format!(
            "Cannot run notifications.command ({program}) for the '{event}' alert: {why}"
        )),
    }
}
