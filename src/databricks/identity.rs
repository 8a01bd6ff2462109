//! Automatic Identity Management: resolve an Entra object id to the account's user, group or service
//! principal. The call *creates* the identity in the account when it is missing, so it is not
//! idempotent for the retry policy and is used only when `UC_ACCESS_RESOLVE_BY_EXTERNAL_ID` is on.
//!
//! Field names follow the generated `iamv2` models of `databricks-sdk-go` (`internal_id`, `username`,
//! `account_user_status`, `group_name`, `application_id`, `display_name`, `account_sp_status`).

use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Deserializer};
use url::Url;

use super::auth::DatabricksAuth;
use super::error::DatabricksError;
use super::http::{Call, Transport, encode_segment, json_body};
use super::retry::{Deadline, Idempotency};
use crate::domain::{EntraObjectId, PrincipalKind};

/// `internal_id` is an int64: JSON encoders of protobuf send it as a string, Go's as a number.
fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// What resolve answers, for any kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResolvedIdentity {
    #[serde(default, deserialize_with = "id_text")]
    pub internal_id: Option<String>,
    pub external_id: Option<String>,
    /// Users.
    pub username: Option<String>,
    /// Groups.
    pub group_name: Option<String>,
    /// Service principals.
    pub application_id: Option<String>,
    pub display_name: Option<String>,
    /// `ACTIVE` / `INACTIVE` (users: `account_user_status`, service principals: `account_sp_status`).
    #[serde(alias = "account_user_status", alias = "account_sp_status")]
    pub status: Option<String>,
}

#[derive(Deserialize)]
struct ResolveResponse {
    #[serde(alias = "group", alias = "service_principal")]
    user: Option<ResolvedIdentity>,
}

#[derive(Debug, Clone)]
pub struct IdentityClient {
    transport: Transport,
    auth: Arc<DatabricksAuth>,
    account_host: Url,
    account_id: String,
}

impl IdentityClient {
    pub fn new(
        transport: Transport,
        auth: Arc<DatabricksAuth>,
        account_host: Url,
        account_id: String,
    ) -> Self {
        Self {
            transport,
            auth,
            account_host,
            account_id,
        }
    }

    /// `POST /api/2.0/identity/accounts/{account_id}/{users|groups|service-principals}/resolve-by-external-id`.
    #[tracing::instrument(skip_all, fields(kind = kind.as_str()))]
    pub async fn resolve(
        &self,
        kind: PrincipalKind,
        external_id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<ResolvedIdentity, DatabricksError> {
        let collection = match kind {
            PrincipalKind::User => "users",
            PrincipalKind::Group => "groups",
            PrincipalKind::ServicePrincipal => "service-principals",
            PrincipalKind::Recipient => {
                return Err(DatabricksError::Unexpected {
                    request: "resolve-by-external-id".into(),
                    detail: "a Delta Sharing recipient is not an account identity".into(),
                    upstream: None,
                });
            }
        };
        let mut url = self.account_host.clone();
        url.set_path(&format!(
            "/api/2.0/identity/accounts/{}/{collection}/resolve-by-external-id",
            encode_segment(&self.account_id)
        ));
        let call = Call {
            method: Method::POST,
            url,
            query: Vec::new(),
            body: Some(json_body(
                &serde_json::json!({ "external_id": external_id.to_string() }),
            )),
            idempotency: Idempotency::NotIdempotent,
        };
        let request = format!("POST {}", call.url.path());
        let answer: ResolveResponse = self
            .transport
            .json(&*self.auth.account(), &call, deadline)
            .await?;
        answer.user.ok_or_else(|| DatabricksError::Unexpected {
            request,
            detail: format!("the answer has no {}", kind.as_str()),
            upstream: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_answer_reads_into_one_shape() {
        let user: ResolveResponse = serde_json::from_str(
            r#"{"user":{"internal_id":"42","username":"a@x.com","external_id":"e","account_user_status":"ACTIVE"}}"#,
        )
        .unwrap();
        let user = user.user.unwrap();
        assert_eq!(user.internal_id.as_deref(), Some("42"));
        assert_eq!(user.status.as_deref(), Some("ACTIVE"));
        let sp: ResolveResponse = serde_json::from_str(
            r#"{"service_principal":{"internal_id":7,"application_id":"app","account_sp_status":"INACTIVE"}}"#,
        )
        .unwrap();
        let sp = sp.user.unwrap();
        assert_eq!(sp.internal_id.as_deref(), Some("7"));
        assert_eq!(sp.status.as_deref(), Some("INACTIVE"));
        let group: ResolveResponse =
            serde_json::from_str(r#"{"group":{"internal_id":1,"group_name":"eng"}}"#).unwrap();
        assert_eq!(group.user.unwrap().group_name.as_deref(), Some("eng"));
    }
}
