//! Fault injection: scripted 429/503/dropped/slow answers, answers lost after the request was applied,
//! a requests-per-second limit, lagging reads.

use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::listener::ConnHandle;
use super::state::StandInState;

/// What a scripted fault does to a request it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 `REQUEST_LIMIT_EXCEEDED` with `Retry-After`.
    TooManyRequests { retry_after_secs: u64 },
    /// 503 `TEMPORARILY_UNAVAILABLE` (with `Retry-After` when given).
    Unavailable {
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// The connection closes without any response.
    Drop,
    /// The request is applied, then the connection closes before the response: the caller cannot know
    /// whether its change happened (a lost answer).
    DropAfterApply,
    /// The request is applied, then answered `504 TEMPORARILY_UNAVAILABLE` ("is taking too long to
    /// process your request"), as Databricks' front end answers a request that outlives its time limit
    /// while the service behind it carries on (seen on permission changes, databricks/cli#5349).
    GatewayTimeoutAfterApply,
    /// The request is served normally after a delay.
    Delay { millis: u64 },
}

/// A fault applied to the next `count` requests that match `method` and `path_prefix` (both optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
}

fn one() -> u32 {
    1
}

impl Fault {
    pub fn new(kind: FaultKind, count: u32) -> Self {
        Self {
            kind,
            count,
            method: None,
            path_prefix: None,
        }
    }

    /// Restricts the fault to one HTTP method, e.g. `PATCH`.
    pub fn on_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Restricts the fault to paths starting with a prefix, e.g. `/api/2.1/unity-catalog/permissions`.
    pub fn on_path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

#[derive(Debug)]
struct RateLimiter {
    per_second: u32,
    window_start: Instant,
    served: u32,
}

/// The fault configuration of a running stand-in.
#[derive(Debug, Default)]
pub struct Faults {
    pending: Vec<Fault>,
    delay: Option<Duration>,
    read_lag: Option<Duration>,
    rate_limit: Option<RateLimiter>,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Serve(Option<Duration>),
    Reject(ApiError),
    Drop,
    DropAfterApply,
    GatewayTimeoutAfterApply,
}

impl Faults {
    pub fn push(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.pending.push(fault);
        }
    }

    pub fn pending(&self) -> Vec<Fault> {
        self.pending.clone()
    }

    pub fn set_delay(&mut self, delay: Option<Duration>) {
        self.delay = delay;
    }

    pub fn set_read_lag(&mut self, lag: Option<Duration>) {
        self.read_lag = lag;
    }

    pub fn read_lag(&self) -> Option<Duration> {
        self.read_lag
    }

    pub fn set_rate_limit(&mut self, per_second: Option<u32>) {
        self.rate_limit = per_second.map(|per_second| RateLimiter {
            per_second,
            window_start: Instant::now(),
            served: 0,
        });
    }

    pub fn decide(&mut self, method: &str, path: &str) -> Decision {
        if let Some(index) = self.pending.iter().position(|f| f.matches(method, path)) {
            let fault = &mut self.pending[index];
            fault.count -= 1;
            let kind = fault.kind.clone();
            if fault.count == 0 {
                self.pending.remove(index);
            }
            return match kind {
                FaultKind::TooManyRequests { retry_after_secs } => {
                    Decision::Reject(ApiError::too_many_requests(retry_after_secs))
                }
                FaultKind::Unavailable { retry_after_secs } => {
                    Decision::Reject(ApiError::unavailable(retry_after_secs))
                }
                FaultKind::Drop => Decision::Drop,
                FaultKind::DropAfterApply => Decision::DropAfterApply,
                FaultKind::GatewayTimeoutAfterApply => Decision::GatewayTimeoutAfterApply,
                FaultKind::Delay { millis } => Decision::Serve(Some(Duration::from_millis(millis))),
            };
        }
        if let Some(limiter) = &mut self.rate_limit {
            let now = Instant::now();
            if now.duration_since(limiter.window_start) >= Duration::from_secs(1) {
                limiter.window_start = now;
                limiter.served = 0;
            }
            if limiter.served >= limiter.per_second {
                return Decision::Reject(ApiError::too_many_requests(1));
            }
            limiter.served += 1;
        }
        Decision::Serve(self.delay)
    }
}

/// Marks a response whose connection was dropped, so the recorder can tell.
#[derive(Debug, Clone, Copy)]
pub struct Dropped;

pub async fn fault_layer(
    State(state): State<StandInState>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/__standin") {
        return next.run(request).await;
    }
    let decision = state.decide(request.method().as_str(), request.uri().path());
    match decision {
        Decision::Serve(delay) => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            next.run(request).await
        }
        // Graph's paths answer in Graph's error shape (the stand-in serves both APIs).
        Decision::Reject(error) if request.uri().path().starts_with("/v1.0/") => {
            let response = error.into_response();
            super::graph::graph_fault(
                response.status(),
                response.headers().get(axum::http::header::RETRY_AFTER),
            )
        }
        Decision::Reject(error) => error.into_response(),
        Decision::Drop => {
            if let Some(ConnectInfo(conn)) = request.extensions().get::<ConnectInfo<ConnHandle>>() {
                conn.kill();
            }
            let mut response = ApiError::unavailable(None).into_response();
            response.extensions_mut().insert(Dropped);
            response
        }
        Decision::DropAfterApply => {
            let conn = request
                .extensions()
                .get::<ConnectInfo<ConnHandle>>()
                .map(|ConnectInfo(c)| c.clone());
            let mut response = next.run(request).await;
            if let Some(conn) = conn {
                conn.kill();
            }
            response.extensions_mut().insert(Dropped);
            response
        }
        Decision::GatewayTimeoutAfterApply => {
            let path = request.uri().path().to_owned();
            // The service's own answer is discarded: the caller only ever sees the gateway's.
            let _applied = next.run(request).await;
            ApiError::gateway_timeout(&path).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scripted_fault_applies_to_matching_requests_only_and_runs_out() {
        let mut faults = Faults::default();
        faults.push(
            Fault::new(
                FaultKind::TooManyRequests {
                    retry_after_secs: 2,
                },
                1,
            )
            .on_method("PATCH")
            .on_path_prefix("/api/2.1/unity-catalog/permissions"),
        );
        assert_eq!(
            faults.decide("GET", "/api/2.1/unity-catalog/permissions/table/a.b.c"),
            Decision::Serve(None)
        );
        assert_eq!(
            faults.decide("PATCH", "/api/2.1/unity-catalog/permissions/table/a.b.c"),
            Decision::Reject(ApiError::too_many_requests(2))
        );
        assert_eq!(
            faults.decide("PATCH", "/api/2.1/unity-catalog/permissions/table/a.b.c"),
            Decision::Serve(None)
        );
    }

    #[test]
    fn the_rate_limit_rejects_requests_beyond_the_allowance_of_the_current_second() {
        let mut faults = Faults::default();
        faults.set_rate_limit(Some(3));
        let outcomes: Vec<Decision> = (0..5).map(|_| faults.decide("GET", "/x")).collect();
        assert_eq!(outcomes[..3], vec![Decision::Serve(None); 3][..]);
        assert_eq!(
            outcomes[3],
            Decision::Reject(ApiError::too_many_requests(1))
        );
        assert_eq!(
            outcomes[4],
            Decision::Reject(ApiError::too_many_requests(1))
        );
    }
}
