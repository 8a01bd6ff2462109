//! Business errors to answers, in one place. The status tells the caller whether a retry can help; the
//! message tells a person what happened and, for our own misconfiguration, what the operators must fix.

use axum::http::StatusCode;

use crate::contract::BodyError;
use crate::contract::fields::FieldError;
use crate::databricks::DatabricksError;
use crate::error::ApiError;
use crate::graph::GraphError;
use crate::ledger::{LedgerError, ROLE_NEEDED};
use crate::usecases::expire::RevokeError;
use crate::usecases::provision::ProvisionError;
use crate::usecases::resolve::ResolveError;

/// A wrong field: `400` naming it.
impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::from(&BodyError::from(e))
    }
}

/// An early revoke refused or not finished. Databricks' own text and the operator detail go to the log,
/// not to the caller's run history.
impl From<RevokeError> for ApiError {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "grant_not_found", e.to_string())
            }
            RevokeError::NotRevocable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "grant_not_revocable", e.to_string())
            }
            RevokeError::Failed(_) => ApiError::unavailable(
                "revoke_failed",
                "the revoke could not be completed now; the grant is marked failed and the timer retries it. Quote the requestId to the platform team",
            )
            .with_retry_after(60)
            .with_detail(e.to_string()),
            RevokeError::Ledger(l) => ApiError::from(&l),
        }
    }
}

/// Seconds to suggest when Databricks did not say how long to wait.
const DEFAULT_RETRY_AFTER: u64 = 5;

/// A Databricks failure as an answer. The answer carries the stable code and a message a requester or
/// approver may read in a workflow's run history: never Databricks' own message (it names principals,
/// securables and privileges), nor the operator hint (settings, hosts, the rights uc-access lacks). Both go
/// to the log line of the answer (`detail`), with the upstream `error_code`, for the operators and the
/// doctor.
impl From<&DatabricksError> for ApiError {
    fn from(e: &DatabricksError) -> Self {
        let retry_after = e
            .retry_after()
            .map(|d| d.as_secs().max(1))
            .unwrap_or(DEFAULT_RETRY_AFTER);
        let err = match e {
        DatabricksError::SecurableNotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "securable_not_found",
            "the catalog, schema or table does not exist in the workspace's Unity Catalog metastore; check the asset, or ask the platform team, quoting the requestId",
        ),
        DatabricksError::PrincipalNotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "principal_not_found",
            "Unity Catalog does not know the principal; it must be provisioned to the Databricks account first",
        ),
        DatabricksError::RateLimited { .. } => ApiError::unavailable(
            "databricks_rate_limited",
            "Databricks is throttling requests; nothing was changed that will not be finished or undone. Retry later.",
        )
        .with_retry_after(retry_after),
        DatabricksError::Unavailable { .. }
        | DatabricksError::Timeout { .. }
        | DatabricksError::Unreachable { .. }
        | DatabricksError::ConnectionLost { .. } => ApiError::unavailable(
            "databricks_unavailable",
            "Databricks could not be reached in time; nothing was changed that will not be finished or undone. Retry later.",
        )
        .with_retry_after(retry_after),
        DatabricksError::OutcomeUnknown { .. } | DatabricksError::FoundAfterLostAnswer { .. } => {
            ApiError::unavailable(
                "databricks_unavailable",
                "Databricks did not confirm a change in time; a retry finds out what is in place and finishes or undoes it. Retry later.",
            )
            .with_retry_after(retry_after)
        }
        // Our own configuration or rights are wrong: the caller cannot fix it, the operators can, and a
        // retry after that succeeds.
        DatabricksError::Unauthenticated { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "databricks_authentication_failed",
            "uc-access could not authenticate to Databricks; the platform team must fix its credentials. Quote the requestId to them.",
        ),
        DatabricksError::PermissionDenied { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "databricks_permission_denied",
            "uc-access lacks the right to change this grant in Unity Catalog; the platform team must grant it. Quote the requestId to them.",
        ),
        DatabricksError::Disabled { .. } => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "feature_disabled",
            "a lookup this request needs is disabled in this deployment; ask the platform team, quoting the requestId",
        ),
        DatabricksError::InvalidParameter { .. } if e.is_privilege_not_applicable() => ApiError::new(
            StatusCode::BAD_REQUEST,
            PRIVILEGE_NOT_APPLICABLE,
            "Unity Catalog does not allow one of the requested privileges on this securable (MODIFY on a view, REFRESH on a plain table...); ask for privileges the object takes. uc-access takes back anything it had added for this request.",
        ),
        DatabricksError::InvalidParameter { .. } | DatabricksError::Unexpected { .. } => {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "databricks_rejected_request",
                "Databricks refused the request or answered unexpectedly; the platform team finds the cause in the logs by the requestId",
            )
        }
    };
        err.with_detail(format!("{e}; operator hint: {}", e.operator_hint()))
    }
}

impl From<DatabricksError> for ApiError {
    fn from(e: DatabricksError) -> Self {
        Self::from(&e)
    }
}

impl From<&ResolveError> for ApiError {
    fn from(e: &ResolveError) -> Self {
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
            ResolveError::Disabled { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "principal_disabled", e.to_string())
            }
            ResolveError::Databricks(inner) => ApiError::from(inner),
            ResolveError::Graph(inner) => ApiError::from(inner),
        }
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        Self::from(&e)
    }
}

/// A Microsoft Graph failure as an answer: the stable code and a safe message; Graph's own code and
/// message, and what the operators must change, go to the answer's log line.
impl From<&GraphError> for ApiError {
    fn from(e: &GraphError) -> Self {
        let err = match e {
        GraphError::Unavailable { .. } | GraphError::Unreachable { .. } => ApiError::unavailable(
            "graph_unavailable",
            "Microsoft Graph could not be reached in time to look the person up; nothing was changed. Retry later.",
        )
        .with_retry_after(
            e.retry_after()
                .map(|d| d.as_secs().max(1))
                .unwrap_or(DEFAULT_RETRY_AFTER),
        ),
        GraphError::Refused { .. } | GraphError::Token { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "graph_permission_denied",
            "uc-access may not read this person from Entra ID (Microsoft Graph); the platform team must fix its permissions. Quote the requestId to them.",
        ),
        GraphError::Unexpected { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "graph_rejected_request",
            "Microsoft Graph refused the request or answered unexpectedly; the platform team finds the cause in the logs by the requestId",
        ),
    };
        err.with_detail(format!("{e}; operator hint: {}", e.operator_hint()))
    }
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        Self::from(&e)
    }
}

/// 400: `malformed_body` when it is not a JSON object, `invalid_request` naming the field otherwise.
impl From<&BodyError> for ApiError {
    fn from(e: &BodyError) -> Self {
        match e {
            BodyError::NotJson(problem) => {
                ApiError::malformed_body(format!("the body is not valid JSON: {problem}"))
            }
            BodyError::Field(f) => ApiError::invalid_field(&f.field, &f.problem),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        Self::from(&e)
    }
}

impl From<&LedgerError> for ApiError {
    fn from(e: &LedgerError) -> Self {
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
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        Self::from(&e)
    }
}

impl From<&ProvisionError> for ApiError {
    fn from(e: &ProvisionError) -> Self {
        match e {
            ProvisionError::Denied(d) => ApiError::denied(d.rule, d.message.clone()),
            ProvisionError::Resolve(r) => ApiError::from(r),
            ProvisionError::PrincipalInactive(_) => {
                ApiError::new(StatusCode::CONFLICT, "principal_inactive", e.to_string())
            }
            ProvisionError::Databricks(d) => ApiError::from(d),
            ProvisionError::Ledger(l) => ApiError::from(l),
            ProvisionError::KeyReused(_) => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                e.to_string(),
            ),
            ProvisionError::ApprovalEnded { .. } => {
                ApiError::new(StatusCode::CONFLICT, "approval_ended", e.to_string())
            }
            ProvisionError::NameTaken(taken) => {
                ApiError::new(StatusCode::CONFLICT, taken.code(), e.to_string())
            }
            ProvisionError::Busy(message) => {
                ApiError::unavailable("grant_in_progress", message.clone())
                    .with_retry_after(DEFAULT_RETRY_AFTER)
            }
            ProvisionError::PrivilegeNotApplicable { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                PRIVILEGE_NOT_APPLICABLE,
                e.to_string(),
            ),
        }
    }
}

impl From<ProvisionError> for ApiError {
    fn from(e: ProvisionError) -> Self {
        Self::from(&e)
    }
}

/// The code of a privilege the securable cannot take, found by uc-access or told by Unity Catalog.
pub const PRIVILEGE_NOT_APPLICABLE: &str = "privilege_not_applicable";

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::response::IntoResponse;
    use http_body_util::BodyExt;

    use super::*;
    use crate::databricks::Upstream;
    use crate::domain::{Securable, SecurableType};

    /// Log lines written while a closure runs, as JSON.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// The answer's JSON body and the log lines written while it was answered.
    async fn answer_and_log(e: &DatabricksError) -> (serde_json::Value, String) {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(logs.clone())
            .finish();
        let response =
            tracing::subscriber::with_default(subscriber, || ApiError::from(e).into_response());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let log = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        (serde_json::from_slice(&body).unwrap(), log)
    }

    #[tokio::test]
    async fn a_databricks_permission_error_answers_a_safe_message_and_logs_the_upstream_message_and_the_hint()
     {
        let table = Securable::parse(SecurableType::Table, "sales.eu.orders").unwrap();
        let e = DatabricksError::from_response(
            Upstream::from_body(
                "PATCH /api/2.1/unity-catalog/permissions/table/sales.eu.orders".into(),
                403,
                br#"{"error_code":"PERMISSION_DENIED","message":"User 9f1c2d3e-app does not have MANAGE on Table 'sales.eu.orders'."}"#,
            ),
            None,
        )
        .about_securable(&table);
        let hint = e.operator_hint();
        assert!(hint.contains("MANAGE on catalog `sales`"), "{hint}");

        let (answer, log) = answer_and_log(&e).await;
        assert_eq!(answer["error"], "databricks_permission_denied");
        let message = answer["message"].as_str().unwrap();
        for leak in [
            "MANAGE",
            "9f1c2d3e-app",
            "does not have",
            "sales.eu.orders",
            "/api/2.1",
            "uc-access service principal",
        ] {
            assert!(
                !message.contains(leak),
                "{leak:?} reaches the caller: {message}"
            );
        }
        assert!(
            !answer.to_string().contains("PERMISSION_DENIED"),
            "{answer}"
        );
        assert!(message.contains("platform team"), "actionable: {message}");

        assert!(log.contains("\"request failed\""), "{log}");
        assert!(log.contains("PERMISSION_DENIED"), "{log}");
        assert!(
            log.contains("User 9f1c2d3e-app does not have MANAGE on Table 'sales.eu.orders'."),
            "{log}"
        );
        assert!(log.contains(&hint), "{log}");
    }

    #[tokio::test]
    async fn an_unreachable_databricks_host_stays_out_of_the_answer_and_in_the_log() {
        let e = DatabricksError::Unreachable {
            request: "GET /api/2.1/unity-catalog/effective-permissions/table/a.b.c".into(),
            detail: "error sending request for url (https://adb-1234567890123456.7.azuredatabricks.net/api/2.1/unity-catalog/effective-permissions/table/a.b.c): dns error".into(),
        };
        let (answer, log) = answer_and_log(&e).await;
        assert_eq!(answer["error"], "databricks_unavailable");
        let message = answer["message"].as_str().unwrap();
        for leak in [
            "adb-1234567890123456",
            "DATABRICKS_HOST",
            "dns error",
            "/api/2.1",
        ] {
            assert!(
                !message.contains(leak),
                "{leak:?} reaches the caller: {message}"
            );
        }
        assert!(
            log.contains("adb-1234567890123456.7.azuredatabricks.net"),
            "{log}"
        );
        assert!(log.contains("DATABRICKS_HOST"), "{log}");
    }

    #[test]
    fn no_databricks_error_puts_its_operator_hint_in_the_answer() {
        let upstream = |status, code: &str| {
            Upstream::from_body(
                "POST /x".into(),
                status,
                format!(r#"{{"error_code":"{code}","message":"upstream text"}}"#).as_bytes(),
            )
        };
        let errors = [
            DatabricksError::from_response(upstream(401, "UNAUTHENTICATED"), None),
            DatabricksError::from_response(upstream(404, "TABLE_DOES_NOT_EXIST"), None)
                .about_securable(&Securable::parse(SecurableType::Table, "a.b.c").unwrap()),
            DatabricksError::from_response(upstream(404, "PRINCIPAL_DOES_NOT_EXIST"), None),
            DatabricksError::from_response(upstream(400, "INVALID_PARAMETER_VALUE"), None),
            DatabricksError::from_response(upstream(504, "TEMPORARILY_UNAVAILABLE"), None),
            DatabricksError::Disabled {
                feature: "resolve-by-external-id",
                setting: "UC_ACCESS_RESOLVE_BY_EXTERNAL_ID",
            },
            DatabricksError::Timeout {
                request: "POST /x".into(),
                after: std::time::Duration::from_secs(10),
            },
        ];
        for e in errors {
            let answer = ApiError::from(&e);
            assert!(!answer.message.contains("upstream text"), "{e:?}: {answer}");
            assert!(
                !answer.message.contains(&e.operator_hint()),
                "{e:?}: {answer}"
            );
            for setting in ["UC_ACCESS_", "DATABRICKS_", "ARM_"] {
                assert!(!answer.message.contains(setting), "{e:?}: {answer}");
            }
        }
    }

    #[test]
    fn unity_catalogs_not_applicable_refusal_is_a_400_of_its_own_without_its_text() {
        let e = DatabricksError::from_response(
            Upstream::from_body(
                "PATCH /x".into(),
                400,
                br#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Privilege MODIFY is not applicable to this entity [a.b.v:TABLE/TABLE_VIEW]."}"#,
            ),
            None,
        );
        let answer = ApiError::from(&e);
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.code, PRIVILEGE_NOT_APPLICABLE);
        assert!(!answer.message.contains("a.b.v"), "{answer}");
    }
}
