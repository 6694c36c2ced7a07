//! The simulator's HTTP side: the router, the fault gate every endpoint passes, and the
//! handlers of the login, the exchange, the profile and the logout.

use super::login_page::login_page;
use super::responses::{
    error_response, fault_response, found, input_error, invalid_token, json_response, success,
};
use super::{Endpoint, Fault, REQUEST_TOKEN_LIFETIME, SimConfig, Simulator};
use crate::brokers::kite::client::checksum;
use crate::secret::Secret;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use url::Url;

/// How long a `Fault::Timeout` keeps a request waiting before answering normally.
const TIMEOUT_FAULT_SLEEP: Duration = Duration::from_secs(3600);
/// The longest `redirect_params` the login takes.
const MAX_REDIRECT_PARAMS: usize = 2048;

const EXCHANGES: [&str; 6] = ["NSE", "NFO", "BSE", "BFO", "CDS", "MCX"];
const PRODUCTS: [&str; 5] = ["CNC", "NRML", "MIS", "BO", "CO"];
const ORDER_TYPES: [&str; 4] = ["MARKET", "LIMIT", "SL", "SL-M"];

#[derive(Serialize)]
struct Meta {
    demat_consent: &'static str,
}

/// The `data` of a successful exchange (kiteconnect-mocks `generate_session.json`).
#[derive(Serialize)]
struct SessionData<'a> {
    user_type: &'static str,
    email: &'a str,
    user_name: &'a str,
    user_shortname: &'a str,
    broker: &'static str,
    exchanges: [&'static str; 6],
    products: [&'static str; 5],
    order_types: [&'static str; 4],
    avatar_url: Option<&'static str>,
    user_id: &'a str,
    api_key: &'a str,
    access_token: &'a str,
    public_token: &'a str,
    enctoken: &'static str,
    refresh_token: &'static str,
    silo: &'static str,
    login_time: String,
    meta: Meta,
}

/// The `data` of a profile (kiteconnect-mocks `profile.json`).
#[derive(Serialize)]
struct ProfileData<'a> {
    user_id: &'a str,
    user_type: &'static str,
    email: &'a str,
    user_name: &'a str,
    user_shortname: &'a str,
    broker: &'static str,
    exchanges: [&'static str; 6],
    products: [&'static str; 5],
    order_types: [&'static str; 4],
    avatar_url: Option<&'static str>,
    meta: Meta,
}

impl Simulator {
    pub(super) fn router(&self, stopped: watch::Receiver<bool>) -> Router {
        let app = AppState {
            sim: self.clone(),
            stopped,
        };
        Router::new()
            .route("/connect/login", get(login))
            .route("/connect/decision", post(decision))
            .route("/session/token", post(exchange).delete(logout))
            .route("/user/profile", get(profile))
            .fallback(not_found)
            .layer(middleware::from_fn(log_request))
            .with_state(app)
    }
}

#[derive(Clone)]
struct AppState {
    sim: Simulator,
    stopped: watch::Receiver<bool>,
}

impl AppState {
    /// Count the call and apply a queued fault. `Some` is the response to send instead of the
    /// normal one; a `Timeout` fault waits (until the server stops at most) and then lets the
    /// request through.
    async fn gate(&self, endpoint: Endpoint) -> Option<Response> {
        match self.sim.take_fault(endpoint)? {
            Fault::Timeout => {
                let mut stopped = self.stopped.clone();
                tokio::select! {
                    _ = tokio::time::sleep(TIMEOUT_FAULT_SLEEP) => None,
                    _ = stopped.wait_for(|stop| *stop) => Some(fault_response(Fault::Timeout)),
                }
            }
            fault => Some(fault_response(fault)),
        }
    }
}

/// Logs method, path and status; never the query (request token, state, access token) or
/// any header.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "kite simulator");
    response
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "GeneralException", "Route not found")
}

/// The API calls name version 3.
fn version_ok(headers: &HeaderMap) -> bool {
    headers
        .get("X-Kite-Version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "3")
}

fn wrong_version() -> Response {
    input_error("Missing or invalid X-Kite-Version header; send X-Kite-Version: 3.")
}

/// The redirect of a finished login: Kite's parameters first, then the app's
/// `redirect_params` pairs.
fn redirect_back(
    config: &SimConfig,
    kite: &[(&str, &str)],
    redirect_params: Option<&str>,
) -> Response {
    let Ok(mut redirect) = Url::parse(&config.redirect_url) else {
        return input_error("The app's redirect URL is invalid.");
    };
    {
        let mut query = redirect.query_pairs_mut();
        for (k, v) in kite {
            query.append_pair(k, v);
        }
        for (k, v) in url::form_urlencoded::parse(redirect_params.unwrap_or("").as_bytes()) {
            query.append_pair(&k, &v);
        }
    }
    found(&redirect)
}

/// A redirect with a fresh request token.
fn approve(app: &AppState, redirect_params: Option<&str>) -> Response {
    let (config, token) = {
        let mut st = app.sim.state();
        let token = app.sim.new_request_token(&mut st);
        (st.config.clone(), token)
    };
    redirect_back(
        &config,
        &[
            ("request_token", &token),
            ("action", "login"),
            ("status", "success"),
        ],
        redirect_params,
    )
}

/// `None` when the login's parameters are acceptable, else Kite's refusal.
fn check_login(config: &SimConfig, params: &HashMap<String, String>) -> Option<Response> {
    if params.get("api_key") != Some(&config.api_key) {
        return Some(input_error("Invalid `api_key`."));
    }
    if params
        .get("redirect_params")
        .is_some_and(|p| p.len() > MAX_REDIRECT_PARAMS)
    {
        return Some(input_error("redirect_params is too long."));
    }
    None
}

async fn login(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Login).await {
        return response;
    }
    if params.get("v").map(String::as_str) != Some("3") {
        return input_error("Invalid or missing Kite Connect version; open /connect/login?v=3.");
    }
    let (config, auto) = {
        let st = app.sim.state();
        (st.config.clone(), st.config.auto_approve)
    };
    if let Some(refusal) = check_login(&config, &params) {
        return refusal;
    }
    let redirect_params = params.get("redirect_params").map(String::as_str);
    if auto {
        return approve(&app, redirect_params);
    }
    Html(login_page(&config, redirect_params)).into_response()
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        map.entry(key.into_owned()).or_insert(value.into_owned());
    }
    map
}

async fn decision(State(app): State<AppState>, body: Bytes) -> Response {
    let params = parse_form(&body);
    let config = app.sim.state().config.clone();
    if let Some(refusal) = check_login(&config, &params) {
        return refusal;
    }
    let redirect_params = params.get("redirect_params").map(String::as_str);
    if params.get("decision").map(String::as_str) == Some("approve") {
        return approve(&app, redirect_params);
    }
    redirect_back(
        &config,
        &[("action", "login"), ("status", "cancelled")],
        redirect_params,
    )
}

async fn exchange(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Exchange).await {
        return response;
    }
    if !version_ok(&headers) {
        return wrong_version();
    }
    let form = parse_form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let sim = &app.sim;
    let now = sim.now();
    let mut st = sim.state();
    // A request token is used up the moment it is presented, whatever happens next.
    let issued = field("request_token").and_then(|t| st.request_tokens.remove(t));
    let (Some(api_key), Some(request_token), Some(sum)) =
        (field("api_key"), field("request_token"), field("checksum"))
    else {
        return input_error("Missing api_key, request_token or checksum.");
    };
    if api_key != st.config.api_key {
        return error_response(
            StatusCode::FORBIDDEN,
            "InputException",
            "Invalid `api_key`.",
        );
    }
    let expected = checksum(
        api_key,
        &Secret::new(request_token),
        &Secret::new(st.config.api_secret.clone()),
    );
    if !same(expected.expose().as_bytes(), sum.as_bytes()) {
        return error_response(StatusCode::FORBIDDEN, "InputException", "Invalid checksum");
    }
    let lifetime = chrono::Duration::from_std(REQUEST_TOKEN_LIFETIME).unwrap_or_default();
    if issued.is_none_or(|at| now >= at + lifetime) {
        return error_response(
            StatusCode::FORBIDDEN,
            "TokenException",
            "Token is invalid or has expired.",
        );
    }
    let token = sim.mint(&mut st);
    let public_token: String = super::random_string(32);
    let config = &st.config;
    let login_time = crate::token::expiry::to_ist(token.issued_at)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    json_response(
        StatusCode::OK,
        &super::responses::Success {
            status: "success",
            data: SessionData {
                user_type: "individual",
                email: &config.email,
                user_name: &config.user_name,
                user_shortname: &config.user_shortname,
                broker: "ZERODHA",
                exchanges: EXCHANGES,
                products: PRODUCTS,
                order_types: ORDER_TYPES,
                avatar_url: None,
                user_id: &config.user_id,
                api_key: &config.api_key,
                access_token: token.access_token.expose(),
                public_token: &public_token,
                enctoken: "",
                refresh_token: "",
                silo: "",
                login_time,
                meta: Meta {
                    demat_consent: "physical",
                },
            },
        },
    )
}

/// The access token of `Authorization: token api_key:access_token` when the key is the app's.
fn authorized<'h>(headers: &'h HeaderMap, config: &SimConfig) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let (key, token) = credentials.trim().split_once(':')?;
    (scheme == "token" && key == config.api_key && !token.is_empty()).then_some(token)
}

async fn profile(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Profile).await {
        return response;
    }
    if !version_ok(&headers) {
        return wrong_version();
    }
    let st = app.sim.state();
    let config = &st.config;
    if !authorized(&headers, config).is_some_and(|t| app.sim.is_live(&st, t)) {
        return invalid_token();
    }
    success(ProfileData {
        user_id: &config.user_id,
        user_type: "individual",
        email: &config.email,
        user_name: &config.user_name,
        user_shortname: &config.user_shortname,
        broker: "ZERODHA",
        exchanges: EXCHANGES,
        products: PRODUCTS,
        order_types: ORDER_TYPES,
        avatar_url: None,
        meta: Meta {
            demat_consent: "physical",
        },
    })
}

async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Logout).await {
        return response;
    }
    if !version_ok(&headers) {
        return wrong_version();
    }
    let mut st = app.sim.state();
    let key_ok = params.get("api_key") == Some(&st.config.api_key);
    match params.get("access_token") {
        Some(token) if key_ok && app.sim.is_live(&st, token) => {
            st.live.remove(token);
            success(true)
        }
        _ => invalid_token(),
    }
}

/// Compare without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
