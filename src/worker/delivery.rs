//! Strategy token-request in the worker: the request to Upstox, the window in which the
//! user approves it on the phone, and the notifier webhook that receives the approved token.

use super::notices::{self, Hint};
use super::{RequestError, Worker};
use crate::brokers::upstox::client::TokenRequestAck;
use crate::messages::{Level, Topic};
use crate::token::Token;
use crate::token::expiry::to_ist;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// The next token delivered by the notifier; never resolves without a notifier.
pub(super) async fn next_delivery(deliveries: &mut Option<mpsc::Receiver<Token>>) -> Option<Token> {
    match deliveries {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Worker {
    /// The token request was answered: the user now has until its expiry (Upstox's, else
    /// `login.timeout`) to approve it; no second request goes out meanwhile.
    pub(super) async fn requested(&mut self, result: Result<TokenRequestAck, RequestError>) {
        let name = self.core.account.name.clone();
        let now = self.core.clock.now();
        match result {
            Ok(ack) => {
                let fallback =
                    now + chrono::Duration::from_std(self.core.login_timeout()).unwrap_or_default();
                let until = ack
                    .authorization_expiry
                    .filter(|t| *t > now)
                    .unwrap_or(fallback);
                self.approval_until = Some(until);
                let before = format!(" before {} IST", to_ist(until).format("%H:%M"));
                info!(account = %name, "Token requested; approve it in the Upstox app or on WhatsApp{before}");
                self.tell(
                    Level::Warning,
                    Topic::Renewal,
                    "Approve the token request",
                    format!("open the Upstox app or WhatsApp and approve the request{before}"),
                    None,
                )
                .await;
            }
            Err(e) => {
                warn!(account = %name, "Token request failed: {e}");
                let (what, hint) = if e.transient {
                    (
                        format!("{e}; tokenwatch asks again in 30 minutes"),
                        Hint::RetryNow,
                    )
                } else {
                    (e.to_string(), Hint::LogInInstead)
                };
                let n = self.notice(
                    Level::Warning,
                    Topic::Renewal,
                    "Token request failed",
                    what,
                    Some(hint),
                );
                self.round_failed(n).await;
            }
        }
    }

    /// The approval window ended with no token: that round failed.
    pub(super) async fn approval_lapsed(&mut self) {
        self.approval_until = None;
        warn!(account = %self.core.account.name, "No approved token arrived in time");
        let n = self.notice(
            Level::Warning,
            Topic::Renewal,
            "Token request not approved",
            "no approved token arrived in time; tokenwatch asks again in 30 minutes".into(),
            Some(Hint::AskNow),
        );
        self.round_failed(n).await;
    }

    pub(super) async fn start_notifier(&mut self) {
        let (tx, rx) = mpsc::channel(4);
        match self.core.serve_notifier(tx).await {
            Ok(Some(server)) => {
                info!(account = %self.core.account.name, "Token-request notifier listening on {}", server.addr);
                self.notifier = Some(server);
                self.deliveries = Some(rx);
            }
            Ok(None) => {}
            Err(e) => {
                error!(account = %self.core.account.name, "{e}");
                self.tell(
                    Level::Critical,
                    Topic::Renewal,
                    "Token requests cannot arrive",
                    e,
                    None,
                )
                .await;
            }
        }
    }

    /// A token approved on the phone arrived (already checked and verified by the notifier).
    pub(super) async fn accept_delivery(&mut self, token: Option<Token>) {
        let Some(token) = token else {
            self.deliveries = None;
            return;
        };
        if self
            .core
            .token
            .as_ref()
            .is_some_and(|t| t.access_token.same_as(&token.access_token))
        {
            return;
        }
        let exp = token.expires_at;
        self.approval_until = None;
        match self.core.accept_token(token, true).await {
            Ok(()) => {
                info!(account = %self.core.account.name, "Token refresh successful (approved on the phone)");
                let n = self.notice(
                    Level::Info,
                    Topic::Renewal,
                    "Token renewed",
                    format!(
                        "approved on the phone; valid until {} IST",
                        notices::day_time(exp)
                    ),
                    None,
                );
                self.renewal_ended(true, n).await;
            }
            Err(e) => {
                error!(account = %self.core.account.name, "Cannot store the approved token: {e}");
                let n = notices::renewal_failed(
                    &self.core.account.name,
                    &format!("the approved token was not stored: {e}"),
                    self.core.clock.now(),
                );
                self.round_failed(n).await;
            }
        }
    }
}
