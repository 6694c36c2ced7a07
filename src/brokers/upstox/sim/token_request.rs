//! The v3 "approve on the phone" access-token request: the request endpoint, its approval
//! (automatic or [`Simulator::approve_pending`]) and the webhook POSTed to
//! [`SimConfig::notifier_url`](super::SimConfig::notifier_url).

use super::responses::{Success, error_response, invalid_credentials, json_response};
use super::routes::AppState;
use super::{Endpoint, PendingRequest, Simulator, lock};
use crate::token::expiry::upstox_expiry;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// Timeout for one webhook delivery (its answer included).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a notifier's refusal read and logged.
const NOTIFIER_ANSWER_SHOWN: usize = 300;

#[derive(Serialize)]
struct TokenRequestData<'a> {
    authorization_expiry: String,
    notifier_url: &'a str,
}

#[derive(Serialize)]
struct WebhookPayload<'a> {
    client_id: &'a str,
    user_id: &'a str,
    access_token: &'a str,
    token_type: &'static str,
    expires_at: String,
    issued_at: String,
    message_type: &'static str,
}

fn epoch_ms_string(t: DateTime<Utc>) -> String {
    t.timestamp_millis().to_string()
}

impl Simulator {
    /// Approve the pending v3 access-token request now: mint a token and POST the webhook
    /// payload to [`SimConfig::notifier_url`](super::SimConfig::notifier_url). Delivery runs
    /// in a spawned task; the return value is how many deliveries were started (0 when
    /// nothing is pending, the request has expired, or no notifier URL is configured, in
    /// which case it stays pending).
    pub fn approve_pending(&self) -> usize {
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| lock(&self.inner.runtime).clone());
        let Some(runtime) = runtime else {
            tracing::warn!("upstox simulator: no tokio runtime to deliver the webhook on");
            return 0;
        };
        let now = self.inner.clock.now();
        let mut st = self.state();
        if st.pending.as_ref().is_some_and(|p| p.expires_at <= now) {
            st.pending = None;
        }
        let Some(notifier) = st.config.notifier_url.clone() else {
            return 0;
        };
        let Some(pending) = st.pending.take() else {
            return 0;
        };
        let token = self.mint(&mut st);
        let user_id = st.config.user_id.clone();
        drop(st);
        let payload = WebhookPayload {
            client_id: &pending.client_id,
            user_id: &user_id,
            access_token: token.access_token.expose(),
            token_type: "Bearer",
            expires_at: epoch_ms_string(token.expires_at),
            issued_at: epoch_ms_string(token.issued_at),
            message_type: "access_token",
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(body) => body,
            Err(_) => return 0,
        };
        let Some(client) = self.http_client() else {
            return 0;
        };
        runtime.spawn(async move {
            let result = client
                .post(notifier.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(status = response.status().as_u16(), "webhook delivered");
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let answer = crate::http::read_start(response, NOTIFIER_ANSWER_SHOWN).await;
                    tracing::warn!(
                        status,
                        notifier = %notifier,
                        answer = %crate::printable::printable(&String::from_utf8_lossy(&answer)),
                        "upstox simulator: the notifier refused the webhook"
                    );
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e.without_url(),
                        notifier = %notifier,
                        "upstox simulator: webhook delivery failed"
                    );
                }
            }
        });
        1
    }

    fn http_client(&self) -> Option<reqwest::Client> {
        self.inner
            .http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(WEBHOOK_TIMEOUT)
                    .no_proxy()
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "upstox simulator: no HTTP client"))
                    .ok()
            })
            .clone()
    }
}

pub(super) async fn token_request(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(response) = app.gate(Endpoint::TokenRequest).await {
        return response;
    }
    let secret = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("client_secret")?.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "UDAPI1024",
            "App secret is required",
        );
    };
    let now = app.sim.inner.clock.now();
    let (expiry, notifier, auto) = {
        let mut st = app.sim.state();
        if client_id != st.config.client_id || secret != st.config.client_secret {
            return invalid_credentials();
        }
        let expiry = upstox_expiry(now);
        // A new request replaces one still pending: the user approves one notification.
        st.pending = Some(PendingRequest {
            client_id,
            expires_at: expiry,
        });
        (
            expiry,
            st.config
                .notifier_url
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            st.config.auto_approve,
        )
    };
    if auto {
        app.sim.approve_pending();
    }
    json_response(
        StatusCode::OK,
        &Success {
            status: "success",
            data: TokenRequestData {
                authorization_expiry: epoch_ms_string(expiry),
                notifier_url: &notifier,
            },
        },
    )
}
