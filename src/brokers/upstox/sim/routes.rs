//! The simulator's HTTP side: the router, the fault gate every endpoint passes, and the
//! handlers of the v2 endpoints (authorization dialog and decision, code exchange, profile,
//! logout) and of the simulator-only `POST /sim/token`.

use super::login_page::login_page;
use super::responses::{
    Success, bad_client_or_redirect, error_response, errors_response, fault_response, found,
    invalid_credentials, invalid_token, json_response,
};
use super::token_request::token_request;
use super::{CodeGrant, Endpoint, Fault, IssuedToken, SimConfig, SimState, Simulator, lock};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::Duration as ChronoDuration;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use url::Url;

/// How long an authorization code may wait before it is exchanged.
const CODE_LIFETIME_MINUTES: i64 = 10;
/// How long a `Fault::Timeout` keeps a request waiting before answering normally.
const TIMEOUT_FAULT_SLEEP: Duration = Duration::from_secs(3600);

const EXCHANGES: [&str; 6] = ["NSE", "NFO", "BSE", "CDS", "BFO", "BCD"];
const PRODUCTS: [&str; 3] = ["D", "CO", "I"];
const ORDER_TYPES: [&str; 4] = ["MARKET", "LIMIT", "SL", "SL-M"];

#[derive(Serialize)]
struct TokenResponse<'a> {
    email: &'a str,
    exchanges: [&'static str; 6],
    products: [&'static str; 3],
    broker: &'static str,
    user_id: &'a str,
    user_name: &'a str,
    order_types: [&'static str; 4],
    user_type: &'static str,
    poa: bool,
    is_active: bool,
    access_token: &'a str,
    extended_token: Option<&'a str>,
}

#[derive(Serialize)]
struct Profile<'a> {
    email: &'a str,
    exchanges: [&'static str; 6],
    products: [&'static str; 3],
    broker: &'static str,
    user_id: &'a str,
    user_name: &'a str,
    order_types: [&'static str; 4],
    user_type: &'static str,
    poa: bool,
    ddpi: bool,
    is_active: bool,
}

fn random_string(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(len)
        .collect()
}

impl Simulator {
    pub(super) fn router(&self, stopped: watch::Receiver<bool>) -> Router {
        let app = AppState {
            sim: self.clone(),
            stopped,
        };
        Router::new()
            .route("/v2/login/authorization/dialog", get(dialog))
            .route("/v2/login/authorization/decision", post(decision))
            .route("/v2/login/authorization/token", post(token))
            .route("/v2/user/profile", get(profile))
            .route("/v2/logout", delete(logout))
            .route("/sim/token", post(sim_token))
            .route(
                "/v3/login/auth/token/request/{client_id}",
                post(token_request),
            )
            .fallback(not_found)
            .layer(middleware::from_fn(log_request))
            .with_state(app)
    }
}

#[derive(Clone)]
pub(super) struct AppState {
    pub(super) sim: Simulator,
    stopped: watch::Receiver<bool>,
}

impl AppState {
    /// Count the call and apply a queued fault. `Some` is the response to send instead of
    /// the normal one; a `Timeout` fault waits (until server shutdown at most) and then
    /// lets the request through.
    pub(super) async fn gate(&self, endpoint: Endpoint) -> Option<Response> {
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

/// Logs method, path and status; never the query (code, state) or any header.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "upstox simulator");
    response
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "UDAPI100060", "Resource not Found")
}

/// The configured redirect URI when `client_id` and `redirect_uri` match the app exactly.
fn check_client(st: &SimState, params: &HashMap<String, String>) -> Option<Url> {
    let client_ok = params.get("client_id") == Some(&st.config.client_id);
    let redirect_ok = params.get("redirect_uri") == Some(&st.config.redirect_uri);
    if client_ok && redirect_ok {
        Url::parse(&st.config.redirect_uri).ok()
    } else {
        None
    }
}

/// Issue a code and build the redirect carrying it (and `state` when given).
fn approve_redirect(app: &AppState, mut redirect: Url, state: Option<&String>) -> Response {
    let code = {
        let mut st = app.sim.state();
        let mut code = random_string(6);
        while st.codes.contains_key(&code) {
            code = random_string(6);
        }
        let grant = CodeGrant {
            client_id: st.config.client_id.clone(),
            redirect_uri: st.config.redirect_uri.clone(),
            issued_at: app.sim.inner.clock.now(),
        };
        st.codes.insert(code.clone(), grant);
        code
    };
    {
        let mut query = redirect.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    found(&redirect)
}

async fn dialog(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Dialog).await {
        return response;
    }
    let (redirect, auto, config) = {
        let st = app.sim.state();
        (
            check_client(&st, &params),
            st.config.auto_approve,
            st.config.clone(),
        )
    };
    let Some(redirect) = redirect else {
        return bad_client_or_redirect();
    };
    if auto {
        return approve_redirect(&app, redirect, params.get("state"));
    }
    Html(login_page(&config, &params)).into_response()
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
    let redirect = check_client(&app.sim.state(), &params);
    let Some(mut redirect) = redirect else {
        return bad_client_or_redirect();
    };
    if params.get("decision").map(String::as_str) == Some("approve") {
        return approve_redirect(&app, redirect, params.get("state"));
    }
    {
        let mut query = redirect.query_pairs_mut();
        query.append_pair("error", "access_denied");
        query.append_pair(
            "error_description",
            "The user denied the authorization request",
        );
        if let Some(state) = params.get("state") {
            query.append_pair("state", state);
        }
    }
    found(&redirect)
}

async fn token(State(app): State<AppState>, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Token).await {
        return response;
    }
    let form = parse_form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let sim = &app.sim;
    let mut st = sim.state();
    // A code is used up the moment it is presented, whatever happens next.
    let grant = field("code").and_then(|code| st.codes.remove(code));

    let missing: Vec<(&str, &str)> = [
        ("client_id", "UDAPI1017", "API key is required"),
        ("redirect_uri", "UDAPI1018", "Redirect URI is required"),
        ("code", "UDAPI1022", "Code is required"),
        ("grant_type", "UDAPI1023", "Grant type is required"),
        ("client_secret", "UDAPI1024", "App secret is required"),
    ]
    .into_iter()
    .filter(|(name, _, _)| field(name).is_none())
    .map(|(_, code, message)| (code, message))
    .collect();
    if !missing.is_empty() {
        return errors_response(StatusCode::BAD_REQUEST, &missing);
    }

    let now = sim.inner.clock.now();
    let config = &st.config;
    let credentials_ok = field("grant_type") == Some("authorization_code")
        && field("client_id") == Some(config.client_id.as_str())
        && field("client_secret") == Some(config.client_secret.as_str())
        && field("redirect_uri") == Some(config.redirect_uri.as_str());
    let code_ok = grant.is_some_and(|g| {
        Some(g.client_id.as_str()) == field("client_id")
            && Some(g.redirect_uri.as_str()) == field("redirect_uri")
            && now < g.issued_at + ChronoDuration::minutes(CODE_LIFETIME_MINUTES)
    });
    if !(credentials_ok && code_ok) {
        return invalid_credentials();
    }

    let issued = sim.mint(&mut st);
    let config = &st.config;
    token_body(config, &issued)
}

/// The flat token object of a successful exchange (UPSTOX.md, Code → token).
fn token_body(config: &SimConfig, issued: &IssuedToken) -> Response {
    json_response(
        StatusCode::OK,
        &TokenResponse {
            email: &config.email,
            exchanges: EXCHANGES,
            products: PRODUCTS,
            broker: "UPSTOX",
            user_id: &config.user_id,
            user_name: &config.user_name,
            order_types: ORDER_TYPES,
            user_type: "individual",
            poa: false,
            is_active: true,
            access_token: issued.access_token.expose(),
            extended_token: None,
        },
    )
}

/// `POST /sim/token`: a simulator-only convenience, not an Upstox endpoint. It answers a
/// freshly minted token in the flat shape of the code exchange, so a `renew.command` such as
/// `curl -sf -X POST http://127.0.0.1:5055/sim/token` can stand in for a real renewal.
async fn sim_token(State(app): State<AppState>) -> Response {
    let sim = &app.sim;
    let mut st = lock(&sim.inner.state);
    let issued = sim.mint(&mut st);
    let config = &st.config;
    token_body(config, &issued)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn profile(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Profile).await {
        return response;
    }
    let st = app.sim.state();
    if bearer(&headers)
        .and_then(|t| app.sim.valid_jti(&st, t))
        .is_none()
    {
        return invalid_token();
    }
    let config = &st.config;
    json_response(
        StatusCode::OK,
        &Success {
            status: "success",
            data: Profile {
                email: &config.email,
                exchanges: EXCHANGES,
                products: PRODUCTS,
                broker: "UPSTOX",
                user_id: &config.user_id,
                user_name: &config.user_name,
                order_types: ORDER_TYPES,
                user_type: "individual",
                poa: false,
                ddpi: false,
                is_active: true,
            },
        },
    )
}

async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Logout).await {
        return response;
    }
    let mut st = app.sim.state();
    match bearer(&headers).and_then(|t| app.sim.valid_jti(&st, t)) {
        Some(jti) => {
            st.live.remove(&jti);
            json_response(
                StatusCode::OK,
                &Success {
                    status: "success",
                    data: true,
                },
            )
        }
        None => invalid_token(),
    }
}
