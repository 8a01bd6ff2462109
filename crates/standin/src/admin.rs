//! The admin API under `/__standin`: recorded requests, a state dump, faults, lag, rate limit, whether
//! workspaces accept account-level tokens, reset.
//!
//! Unauthenticated, unrecorded and never faulted, so black-box tests of a built binary can drive it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::Fault;
use super::state::StandInState;

#[derive(Debug, Deserialize)]
struct Millis {
    millis: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct PerSecond {
    per_second: Option<u32>,
}

async fn requests(State(state): State<StandInState>) -> Json<Value> {
    Json(json!(state.requests()))
}

async fn clear_requests(State(state): State<StandInState>) -> StatusCode {
    state.clear_requests();
    StatusCode::NO_CONTENT
}

async fn dump(State(state): State<StandInState>) -> Json<Value> {
    Json(state.dump())
}

async fn add_fault(State(state): State<StandInState>, Json(fault): Json<Fault>) -> StatusCode {
    state.inject(fault);
    StatusCode::NO_CONTENT
}

async fn list_faults(State(state): State<StandInState>) -> Json<Value> {
    Json(json!(state.pending_faults()))
}

async fn clear_faults(State(state): State<StandInState>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

async fn set_delay(State(state): State<StandInState>, Json(body): Json<Millis>) -> StatusCode {
    state.set_delay(body.millis.map(Duration::from_millis));
    StatusCode::NO_CONTENT
}

async fn set_lag(State(state): State<StandInState>, Json(body): Json<Millis>) -> StatusCode {
    state.set_read_lag(body.millis.map(Duration::from_millis));
    StatusCode::NO_CONTENT
}

async fn set_rate_limit(
    State(state): State<StandInState>,
    Json(body): Json<PerSecond>,
) -> StatusCode {
    state.set_rate_limit(body.per_second);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct Accepted {
    accepted: bool,
}

async fn set_account_tokens_on_workspaces(
    State(state): State<StandInState>,
    Json(body): Json<Accepted>,
) -> StatusCode {
    state.set_account_tokens_on_workspaces(body.accepted);
    StatusCode::NO_CONTENT
}

async fn reset(State(state): State<StandInState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}

pub fn routes() -> Router<StandInState> {
    Router::new()
        .route("/__standin/requests", get(requests).delete(clear_requests))
        .route("/__standin/state", get(dump))
        .route(
            "/__standin/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/__standin/delay", post(set_delay))
        .route("/__standin/lag", post(set_lag))
        .route("/__standin/rate-limit", post(set_rate_limit))
        .route(
            "/__standin/account-tokens-on-workspaces",
            post(set_account_tokens_on_workspaces),
        )
        .route("/__standin/reset", post(reset))
}
