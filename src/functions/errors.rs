//! Business errors to answers, in one place. The status tells the caller whether a retry can help; the
//! message tells a person what happened and, for our own misconfiguration, what the operators must fix.

use axum::http::StatusCode;

use crate::contract::BodyError;
use crate::databricks::DatabricksError;
use crate::error::ApiError;
use crate::ledger::{LedgerError, ROLE_NEEDED};
use crate::usecases::provision::ProvisionError;
use crate::usecases::resolve::ResolveError;

/// Seconds to suggest when Databricks did not say how long to wait.
const DEFAULT_RETRY_AFTER: u64 = 5;

pub fn databricks_error(e: &DatabricksError) -> ApiError {
    let hint = e.operator_hint();
    let retry_after = e
        .retry_after()
        .map(|d| d.as_secs().max(1))
        .unwrap_or(DEFAULT_RETRY_AFTER);
    let err = match e {
        DatabricksError::SecurableNotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "securable_not_found",
            format!("the catalog, schema or table does not exist in Unity Catalog: {hint}"),
        ),
        DatabricksError::PrincipalNotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "principal_not_found",
            format!("Unity Catalog does not know the principal: {hint}"),
        ),
        DatabricksError::RateLimited { .. } => ApiError::unavailable(
            "databricks_rate_limited",
            "Databricks is throttling requests; nothing was changed that will not be finished or undone. Retry later.",
        )
        .with_retry_after(retry_after),
        DatabricksError::Unavailable { .. }
        | DatabricksError::Timeout { .. }
        | DatabricksError::Unreachable { .. }
        | DatabricksError::ConnectionLost { .. }
        | DatabricksError::OutcomeUnknown { .. }
        | DatabricksError::FoundAfterLostAnswer { .. } => ApiError::unavailable(
            "databricks_unavailable",
            format!("Databricks could not be reached in time; retry later ({hint})"),
        )
        .with_retry_after(retry_after),
        // Our own configuration or rights are wrong: the caller cannot fix it, the operators can, and a
        // retry after that succeeds.
        DatabricksError::Unauthenticated { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "databricks_authentication_failed",
            format!("uc-access could not authenticate to Databricks. Operators: {hint}"),
        ),
        DatabricksError::PermissionDenied { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "databricks_permission_denied",
            format!("uc-access lacks the right to change this grant. Operators: {hint}"),
        ),
        DatabricksError::Disabled { .. } => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "feature_disabled",
            format!("this lookup is disabled in this deployment. Operators: {hint}"),
        ),
        DatabricksError::InvalidParameter { .. } | DatabricksError::Unexpected { .. } => {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "databricks_rejected_request",
                format!("Databricks refused the request. Operators: {hint}"),
            )
        }
    };
    err.with_detail(e.to_string())
}

pub fn resolve_error(e: &ResolveError) -> ApiError {
    match e {
        ResolveError::NotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "principal_not_found",
            format!("{e}; it must be provisioned to the Databricks account first"),
        ),
        ResolveError::WorkspaceLocalGroup { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "workspace_local_group",
            e.to_string(),
        ),
        ResolveError::Databricks(inner) => databricks_error(inner),
    }
}

/// 400: `malformed_body` when it is not a JSON object, `invalid_request` naming the field otherwise.
pub fn body_error(e: &BodyError) -> ApiError {
    match e {
        BodyError::NotJson(problem) => {
            ApiError::malformed_body(format!("the body is not valid JSON: {problem}"))
        }
        BodyError::Field(f) => ApiError::invalid_field(&f.field, &f.problem),
    }
}

pub fn ledger_error(e: &LedgerError) -> ApiError {
    let err = match e {
        LedgerError::Forbidden { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "ledger_forbidden",
            format!(
                "uc-access may not write its grant ledger; nothing was changed. Operators: give the app's identity {ROLE_NEEDED} on the ledger container"
            ),
        ),
        e if e.is_retryable() => ApiError::unavailable(
            "ledger_unavailable",
            "the grant ledger is unavailable; nothing was changed. Retry later.",
        )
        .with_retry_after(DEFAULT_RETRY_AFTER),
        _ => ApiError::internal(e.to_string()),
    };
    err.with_detail(e.to_string())
}

pub fn provision_error(e: &ProvisionError) -> ApiError {
    match e {
        ProvisionError::Denied(d) => ApiError::denied(d.rule, d.message.clone()),
        ProvisionError::Resolve(r) => resolve_error(r),
        ProvisionError::PrincipalInactive(_) => {
            ApiError::new(StatusCode::CONFLICT, "principal_inactive", e.to_string())
        }
        ProvisionError::Databricks(d) => databricks_error(d),
        ProvisionError::Ledger(l) => ledger_error(l),
        ProvisionError::KeyReused(_) => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            e.to_string(),
        ),
        ProvisionError::NameTaken(taken) => {
            ApiError::new(StatusCode::CONFLICT, taken.code(), e.to_string())
        }
        ProvisionError::Busy(message) => {
            ApiError::unavailable("grant_in_progress", message.clone())
                .with_retry_after(DEFAULT_RETRY_AFTER)
        }
    }
}
