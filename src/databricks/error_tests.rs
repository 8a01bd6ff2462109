use super::*;
use crate::domain::SecurableType;

fn up(status: u16, body: &str) -> Upstream {
    Upstream::from_body("PATCH /x".into(), status, body.as_bytes())
}

#[test]
fn the_error_code_wins_over_the_status() {
    let e = DatabricksError::from_response(
        up(
            404,
            r#"{"error_code":"PRINCIPAL_DOES_NOT_EXIST","message":"Could not find principal with name users"}"#,
        ),
        None,
    );
    assert!(
        matches!(e, DatabricksError::PrincipalNotFound { .. }),
        "{e:?}"
    );
    assert_eq!(e.error_code(), Some("PRINCIPAL_DOES_NOT_EXIST"));
    let e = DatabricksError::from_response(
        up(
            404,
            r#"{"error_code":"TABLE_DOES_NOT_EXIST","message":"Table 'a.b.c' does not exist."}"#,
        ),
        None,
    );
    assert!(matches!(e, DatabricksError::SecurableNotFound { .. }));
}

#[test]
fn scim_errors_keep_their_detail_and_fall_back_to_the_status() {
    let e = DatabricksError::from_response(
        up(
            403,
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Forbidden","status":"403"}"#,
        ),
        None,
    );
    assert!(
        matches!(&e, DatabricksError::PermissionDenied { upstream, .. } if upstream.message == "Forbidden")
    );
}

#[test]
fn only_throttling_and_outages_are_retryable() {
    let limited = DatabricksError::from_response(
        up(
            429,
            r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}"#,
        ),
        Some(Duration::from_secs(3)),
    );
    assert!(limited.is_retryable());
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
    let denied =
        DatabricksError::from_response(up(403, r#"{"error_code":"PERMISSION_DENIED"}"#), None);
    assert!(!denied.is_retryable());
    assert!(DatabricksError::from_response(up(503, "<html>busy</html>"), None).is_retryable());
    assert!(!DatabricksError::from_response(up(500, ""), None).is_retryable());
}

#[test]
fn a_permission_error_tells_the_operator_which_catalog_needs_manage() {
    let table = Securable::parse(SecurableType::Table, "sales.eu.orders").unwrap();
    let e = DatabricksError::from_response(
        up(403, r#"{"error_code":"PERMISSION_DENIED","message":"User does not have MANAGE on Table 'sales.eu.orders'"}"#),
        None,
    )
    .about_securable(&table);
    assert!(
        e.operator_hint().contains("MANAGE on catalog `sales`"),
        "{}",
        e.operator_hint()
    );
}

#[test]
fn oauth_token_errors_are_authentication_errors() {
    let e = DatabricksError::from_response(
        up(
            401,
            r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        ),
        None,
    );
    assert!(matches!(e, DatabricksError::Unauthenticated { .. }));
    assert!(e.operator_hint().contains("managed identity"));
}

#[test]
fn only_answers_about_the_token_itself_are_token_refusals() {
    let refusal = |status, body| DatabricksError::from_response(up(status, body), None);
    for (status, body) in [
        (
            401,
            r#"{"error_code":"UNAUTHENTICATED","message":"Invalid access token."}"#,
        ),
        (401, ""),
        (
            403,
            r#"{"error_code":"UNAUTHENTICATED","message":"Token is not valid"}"#,
        ),
        (403, r#"{"error_code":"INVALID_TOKEN","message":"expired"}"#),
        (
            403,
            r#"{"error_code":"403","message":"Invalid access token."}"#,
        ),
        (
            403,
            "<html><title>Error 403 Invalid access token.</title></html>",
        ),
    ] {
        let e = refusal(status, body);
        assert!(e.is_token_refusal(), "{status} {body}: {e:?}");
        assert!(
            matches!(e, DatabricksError::Unauthenticated { .. }),
            "{e:?}"
        );
    }
    for (status, body) in [
        (
            403,
            r#"{"error_code":"PERMISSION_DENIED","message":"User does not have MANAGE on Table 'a.b.c'"}"#,
        ),
        // A permission denial stays one even when its message mentions a token.
        (
            403,
            r#"{"error_code":"PERMISSION_DENIED","message":"Invalid access token for this securable"}"#,
        ),
        (403, r#"{"error_code":"403","message":"Forbidden"}"#),
        (400, r#"{"error":"invalid_client"}"#),
        (
            404,
            r#"{"error_code":"TABLE_DOES_NOT_EXIST","message":"no"}"#,
        ),
    ] {
        let e = refusal(status, body);
        assert!(!e.is_token_refusal(), "{status} {body}: {e:?}");
    }
    let no_answer = DatabricksError::Unauthenticated {
        detail: "cannot set up the Entra ID credential".into(),
        upstream: None,
    };
    assert!(!no_answer.is_token_refusal());
}

#[test]
fn a_504_temporarily_unavailable_leaves_the_outcome_unknown_while_a_503_is_a_refusal() {
    let answer = |status| {
        DatabricksError::from_response(
            up(
                status,
                r#"{"error_code":"TEMPORARILY_UNAVAILABLE","message":"The service at /x is taking too long to process your request."}"#,
            ),
            None,
        )
    };
    let gateway = answer(504);
    assert!(gateway.is_transient());
    assert!(gateway.outcome_unknown());
    assert!(!gateway.proves_not_processed());
    let refused = answer(503);
    assert!(refused.is_transient());
    assert!(!refused.outcome_unknown());
    assert!(refused.proves_not_processed());
    let throttled =
        DatabricksError::from_response(up(429, r#"{"error_code":"REQUEST_LIMIT_EXCEEDED"}"#), None);
    assert!(throttled.proves_not_processed());
    let never_sent = DatabricksError::Unreachable {
        request: "POST /x".into(),
        detail: "connection refused".into(),
    };
    assert!(never_sent.proves_not_processed() && !never_sent.outcome_unknown());
    let lost = DatabricksError::ConnectionLost {
        request: "POST /x".into(),
        detail: "connection closed before message completed".into(),
    };
    assert!(lost.outcome_unknown() && !lost.proves_not_processed());
}

#[test]
fn long_bodies_are_truncated() {
    let e = up(500, &"x".repeat(5000));
    assert!(e.message.len() <= MAX_MESSAGE + 3);
}

#[test]
fn a_privilege_that_does_not_apply_is_told_apart_from_other_invalid_parameters() {
    let not_applicable = DatabricksError::from_response(
        up(
            400,
            r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Privilege MODIFY is not applicable to this entity [sales.reporting.orders_summary:TABLE/TABLE_VIEW]. If this seems unexpected, please check the privilege version of the metastore in use [1.0]."}"#,
        ),
        None,
    );
    assert!(
        not_applicable.is_privilege_not_applicable(),
        "{not_applicable:?}"
    );
    let other = DatabricksError::from_response(
        up(
            400,
            r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Privilege USAGE is not a valid privilege."}"#,
        ),
        None,
    );
    assert!(!other.is_privilege_not_applicable());
}
