//! Unity Catalog Delta Sharing on a workspace: shares (with their data objects), TOKEN recipients, and
//! share permissions. Shapes follow the official SDK's `sharing` service (databricks-sdk 0.162.0):
//! `POST/GET/PATCH /api/2.1/unity-catalog/shares[/{name}]` with `updates[{action, data_object}]`,
//! `GET/PATCH /api/2.1/unity-catalog/shares/{name}/permissions` with `changes`, and
//! `POST/GET/PATCH /api/2.1/unity-catalog/recipients[/{name}]` with `authentication_type`,
//! `properties_kvpairs.properties`, `expiration_time` (epoch milliseconds) and `tokens[]`.
//!
//! Activation links are credentials (whoever opens one first downloads the recipient's token): they are
//! returned to the caller and never logged.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::auth::DatabricksAuth;
use super::error::DatabricksError;
use super::http::{Call, Transport, encode_segment, json_body};
use super::retry::{Deadline, Idempotency};

/// Error codes that mean "a share, recipient or shared object with that name already exists". The
/// statuses are not documented (409 is expected, unverified), so the code decides.
pub const ALREADY_EXISTS_CODES: [&str; 4] = [
    "SHARE_ALREADY_EXISTS",
    "RECIPIENT_ALREADY_EXISTS",
    "RESOURCE_ALREADY_EXISTS",
    "ALREADY_EXISTS",
];
/// Error codes that mean "no share or recipient with that name".
pub const DOES_NOT_EXIST_CODES: [&str; 3] = [
    "SHARE_DOES_NOT_EXIST",
    "RECIPIENT_DOES_NOT_EXIST",
    "RESOURCE_DOES_NOT_EXIST",
];

/// Whether an error says the thing to create is already there: Databricks answered `*_ALREADY_EXISTS`,
/// or a create whose answer was lost was found in place on reading back
/// ([`DatabricksError::FoundAfterLostAnswer`]). Either way the caller reads the object and checks
/// whose it is.
pub fn is_already_exists(error: &DatabricksError) -> bool {
    matches!(error, DatabricksError::FoundAfterLostAnswer { .. })
        || error
            .error_code()
            .is_some_and(|c| ALREADY_EXISTS_CODES.contains(&c))
}

/// Whether an error says the share or recipient does not exist.
pub fn is_does_not_exist(error: &DatabricksError) -> bool {
    error
        .error_code()
        .is_some_and(|c| DOES_NOT_EXIST_CODES.contains(&c))
}

/// A share as uc-access needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareInfo {
    pub name: String,
    pub comment: Option<String>,
    pub owner: Option<String>,
    /// Full names of the data objects in the share (tables as `catalog.schema.table`).
    pub objects: Vec<String>,
}

/// One token of a TOKEN recipient.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RecipientToken {
    /// The token's id (not a secret): what a grant records to know whether the unused link is its own.
    pub id: Option<String>,
    /// One-time link to download the credential; absent once it has been used.
    pub activation_url: Option<String>,
    /// Epoch milliseconds.
    pub expiration_time: Option<i64>,
}

impl fmt::Debug for RecipientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The activation link is a credential: never in a log line.
        f.debug_struct("RecipientToken")
            .field("id", &self.id)
            .field("activation_url", &self.activation_url.as_ref().map(|_| "…"))
            .field("expiration_time", &self.expiration_time)
            .finish()
    }
}

/// A recipient as uc-access needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientInfo {
    pub name: String,
    pub authentication_type: Option<String>,
    pub comment: Option<String>,
    pub properties: BTreeMap<String, String>,
    /// The recipient's token expiry, epoch milliseconds.
    pub expiration_time: Option<i64>,
    pub activated: Option<bool>,
    pub tokens: Vec<RecipientToken>,
}

impl RecipientInfo {
    /// The activation link of a token not yet used, if any.
    pub fn activation_url(&self) -> Option<&str> {
        self.unused_token()
            .and_then(|t| t.activation_url.as_deref())
    }

    /// The newest token whose activation link has not been used.
    pub fn unused_token(&self) -> Option<&RecipientToken> {
        self.tokens
            .iter()
            .rev()
            .find(|t| t.activation_url.as_deref().is_some_and(|u| !u.is_empty()))
    }
}

/// What a new recipient is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    pub name: String,
    pub comment: String,
    pub properties: BTreeMap<String, String>,
    /// Token expiry, epoch milliseconds.
    pub expiration_time: i64,
}

/// One principal's privileges on a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareAssignment {
    pub principal: String,
    pub privileges: Vec<String>,
}

/// Adding or removing a table in a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectAction {
    Add,
    Remove,
}

impl ObjectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Remove => "REMOVE",
        }
    }
}

/// The Delta Sharing operations the use cases need.
#[async_trait]
pub trait SharingApi: Send + Sync {
    /// The share with its data objects, `None` when there is none by that name.
    async fn get_share(
        &self,
        workspace: &Url,
        name: &str,
        deadline: Deadline,
    ) -> Result<Option<ShareInfo>, DatabricksError>;

    async fn create_share(
        &self,
        workspace: &Url,
        name: &str,
        comment: &str,
        deadline: Deadline,
    ) -> Result<ShareInfo, DatabricksError>;

    /// `PATCH /shares/{name}` with one `updates` entry for a table.
    async fn update_table(
        &self,
        workspace: &Url,
        share: &str,
        action: ObjectAction,
        table: &str,
        deadline: Deadline,
    ) -> Result<(), DatabricksError>;

    /// Who holds what on the share.
    async fn share_permissions(
        &self,
        workspace: &Url,
        share: &str,
        deadline: Deadline,
    ) -> Result<Vec<ShareAssignment>, DatabricksError>;

    /// Adds or removes `SELECT` for one recipient; answers the assignments after the change.
    async fn set_select(
        &self,
        workspace: &Url,
        share: &str,
        recipient: &str,
        grant: bool,
        deadline: Deadline,
    ) -> Result<Vec<ShareAssignment>, DatabricksError>;

    /// The recipient, `None` when there is none by that name.
    async fn get_recipient(
        &self,
        workspace: &Url,
        name: &str,
        deadline: Deadline,
    ) -> Result<Option<RecipientInfo>, DatabricksError>;

    /// Creates a TOKEN recipient.
    async fn create_recipient(
        &self,
        workspace: &Url,
        recipient: &NewRecipient,
        deadline: Deadline,
    ) -> Result<RecipientInfo, DatabricksError>;

    /// Moves the recipient's token expiry (epoch milliseconds).
    async fn set_recipient_expiry(
        &self,
        workspace: &Url,
        name: &str,
        expiration_time: i64,
        deadline: Deadline,
    ) -> Result<(), DatabricksError>;

    /// `POST /recipients/{name}/rotate-token`: a new token with a new activation link; the existing
    /// tokens (and their unused links) stop working at once (`existing_token_expire_in_seconds: 0`).
    async fn rotate_token(
        &self,
        workspace: &Url,
        name: &str,
        deadline: Deadline,
    ) -> Result<RecipientInfo, DatabricksError>;
}

/// The Delta Sharing API of any workspace.
#[derive(Debug, Clone)]
pub struct SharingClient {
    transport: Transport,
    auth: Arc<DatabricksAuth>,
}

#[derive(Deserialize)]
struct RawShare {
    name: String,
    comment: Option<String>,
    owner: Option<String>,
    #[serde(default)]
    objects: Vec<RawObject>,
}

#[derive(Deserialize)]
struct RawObject {
    name: String,
}

#[derive(Deserialize)]
struct RawRecipient {
    name: String,
    authentication_type: Option<String>,
    comment: Option<String>,
    properties_kvpairs: Option<RawProperties>,
    expiration_time: Option<i64>,
    activated: Option<bool>,
    #[serde(default)]
    tokens: Vec<RawToken>,
}

#[derive(Deserialize)]
struct RawProperties {
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawToken {
    id: Option<String>,
    activation_url: Option<String>,
    expiration_time: Option<i64>,
}

#[derive(Deserialize)]
struct RawPermissions {
    #[serde(default)]
    privilege_assignments: Vec<RawAssignment>,
}

#[derive(Deserialize)]
struct RawAssignment {
    principal: String,
    #[serde(default)]
    privileges: Vec<String>,
}

impl From<RawShare> for ShareInfo {
    fn from(raw: RawShare) -> Self {
        Self {
            name: raw.name,
            comment: raw.comment,
            owner: raw.owner,
            objects: raw.objects.into_iter().map(|o| o.name).collect(),
        }
    }
}

impl From<RawRecipient> for RecipientInfo {
    fn from(raw: RawRecipient) -> Self {
        Self {
            name: raw.name,
            authentication_type: raw.authentication_type,
            comment: raw.comment,
            properties: raw
                .properties_kvpairs
                .map(|p| p.properties)
                .unwrap_or_default(),
            expiration_time: raw.expiration_time,
            activated: raw.activated,
            tokens: raw
                .tokens
                .into_iter()
                .map(|t| RecipientToken {
                    id: t.id,
                    activation_url: t.activation_url,
                    expiration_time: t.expiration_time,
                })
                .collect(),
        }
    }
}

fn assignments(raw: RawPermissions) -> Vec<ShareAssignment> {
    raw.privilege_assignments
        .into_iter()
        .map(|a| ShareAssignment {
            principal: a.principal,
            privileges: a.privileges,
        })
        .collect()
}

/// `{workspace}/api/2.1/unity-catalog/{path}`, each segment percent-encoded.
fn url_for(workspace: &Url, segments: &[&str]) -> Url {
    let mut url = workspace.clone();
    let path: Vec<String> = segments.iter().map(|s| encode_segment(s)).collect();
    url.set_path(&format!("/api/2.1/unity-catalog/{}", path.join("/")));
    url
}

fn call(method: Method, url: Url, body: serde_json::Value, idempotency: Idempotency) -> Call {
    Call {
        method,
        url,
        query: Vec::new(),
        body: Some(json_body(&body)),
        idempotency,
    }
}

impl SharingClient {
    pub fn new(transport: Transport, auth: Arc<DatabricksAuth>) -> Self {
        Self { transport, auth }
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        workspace: &Url,
        call: &Call,
        deadline: Deadline,
    ) -> Result<T, DatabricksError> {
        let tokens = self.auth.workspace(workspace);
        self.transport.json(&*tokens, call, deadline).await
    }

    /// Sends a change a replay could duplicate ([`Idempotency::NotIdempotent`]). When the answer is
    /// lost ([`DatabricksError::OutcomeUnknown`]), `in_place` reads back whether what the change asked
    /// for is there. If it is, the answer is [`DatabricksError::FoundAfterLostAnswer`]: the caller
    /// cannot tell this request's work from someone else's, and checks the ownership mark as it does
    /// after `*_ALREADY_EXISTS`. If it is not, Databricks did not carry the change out, and it is sent
    /// once more: every such change is keyed by a name (a share, a recipient, a table in a share), so a
    /// replay racing a first attempt still being processed can only be refused as a duplicate, never
    /// make a second object. If the read fails, the outcome stays unknown.
    async fn change<T, F, Fut>(
        &self,
        workspace: &Url,
        call: &Call,
        deadline: Deadline,
        in_place: F,
    ) -> Result<T, DatabricksError>
    where
        T: serde::de::DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<bool, DatabricksError>>,
    {
        let unknown = match self.send(workspace, call, deadline).await {
            Err(e @ DatabricksError::OutcomeUnknown { .. }) => e,
            answer => return answer,
        };
        let request = call.label();
        match in_place().await {
            Ok(true) => {
                tracing::info!(%request, "a change whose answer was lost is in place");
                Err(DatabricksError::FoundAfterLostAnswer {
                    request,
                    cause: Box::new(unknown),
                })
            }
            Ok(false) => {
                tracing::info!(%request, "a change whose answer was lost was not carried out; sending it once more");
                self.send(workspace, call, deadline).await
            }
            Err(read) => {
                tracing::debug!(%request, error = %read, "cannot read back a change whose answer was lost");
                Err(unknown)
            }
        }
    }

    /// Whether the share holds `table` (a missing share holds nothing).
    async fn share_holds(
        &self,
        workspace: &Url,
        share: &str,
        table: &str,
        deadline: Deadline,
    ) -> Result<bool, DatabricksError> {
        Ok(self
            .get_share(workspace, share, deadline)
            .await?
            .is_some_and(|s| s.objects.iter().any(|o| o.eq_ignore_ascii_case(table))))
    }

    /// A read that answers `None` for a missing share or recipient.
    async fn read_optional<T: serde::de::DeserializeOwned>(
        &self,
        workspace: &Url,
        call: &Call,
        deadline: Deadline,
    ) -> Result<Option<T>, DatabricksError> {
        match self.send(workspace, call, deadline).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_does_not_exist(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl SharingApi for SharingClient {
    #[tracing::instrument(skip_all, fields(share = name))]
    async fn get_share(
        &self,
        workspace: &Url,
        name: &str,
        deadline: Deadline,
    ) -> Result<Option<ShareInfo>, DatabricksError> {
        let call =
            Call::get(url_for(workspace, &["shares", name])).query("include_shared_data", "true");
        let raw: Option<RawShare> = self.read_optional(workspace, &call, deadline).await?;
        Ok(raw.map(Into::into))
    }

    #[tracing::instrument(skip_all, fields(share = name))]
    async fn create_share(
        &self,
        workspace: &Url,
        name: &str,
        comment: &str,
        deadline: Deadline,
    ) -> Result<ShareInfo, DatabricksError> {
        // Not replayed on a lost answer (a replay of a create that happened answers
        // SHARE_ALREADY_EXISTS): read back instead.
        let call = call(
            Method::POST,
            url_for(workspace, &["shares"]),
            json!({"name": name, "comment": comment}),
            Idempotency::NotIdempotent,
        );
        let exists = || async { Ok(self.get_share(workspace, name, deadline).await?.is_some()) };
        let raw: RawShare = self.change(workspace, &call, deadline, exists).await?;
        Ok(raw.into())
    }

    #[tracing::instrument(skip_all, fields(share = share, action = action.as_str()))]
    async fn update_table(
        &self,
        workspace: &Url,
        share: &str,
        action: ObjectAction,
        table: &str,
        deadline: Deadline,
    ) -> Result<(), DatabricksError> {
        let call = call(
            Method::PATCH,
            url_for(workspace, &["shares", share]),
            json!({"updates": [{
                "action": action.as_str(),
                "data_object": {"name": table, "data_object_type": "TABLE"},
            }]}),
            // A replay of an addition that happened answers RESOURCE_ALREADY_EXISTS (of a removal, that
            // the table is not in the share): read back instead.
            Idempotency::NotIdempotent,
        );
        let done = || async {
            let holds = self.share_holds(workspace, share, table, deadline).await?;
            Ok(holds == (action == ObjectAction::Add))
        };
        match self
            .change::<serde_json::Value, _, _>(workspace, &call, deadline, done)
            .await
        {
            Ok(_) => Ok(()),
            // A removal found done is done, whoever did it.
            Err(DatabricksError::FoundAfterLostAnswer { .. }) if action == ObjectAction::Remove => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip_all, fields(share = share))]
    async fn share_permissions(
        &self,
        workspace: &Url,
        share: &str,
        deadline: Deadline,
    ) -> Result<Vec<ShareAssignment>, DatabricksError> {
        let call = Call::get(url_for(workspace, &["shares", share, "permissions"]));
        let raw: RawPermissions = self.send(workspace, &call, deadline).await?;
        Ok(assignments(raw))
    }

    #[tracing::instrument(skip_all, fields(share = share, grant = grant))]
    async fn set_select(
        &self,
        workspace: &Url,
        share: &str,
        recipient: &str,
        grant: bool,
        deadline: Deadline,
    ) -> Result<Vec<ShareAssignment>, DatabricksError> {
        let key = if grant { "add" } else { "remove" };
        let call = call(
            Method::PATCH,
            url_for(workspace, &["shares", share, "permissions"]),
            json!({"changes": [{"principal": recipient, key: ["SELECT"]}]}),
            // Set semantics like the grants PATCH: a replay converges.
            Idempotency::Idempotent,
        );
        let raw: RawPermissions = self.send(workspace, &call, deadline).await?;
        Ok(assignments(raw))
    }

    #[tracing::instrument(skip_all, fields(recipient = name))]
    async fn get_recipient(
        &self,
        workspace: &Url,
        name: &str,
        deadline: Deadline,
    ) -> Result<Option<RecipientInfo>, DatabricksError> {
        let call = Call::get(url_for(workspace, &["recipients", name]));
        let raw: Option<RawRecipient> = self.read_optional(workspace, &call, deadline).await?;
        Ok(raw.map(Into::into))
    }

    #[tracing::instrument(skip_all, fields(recipient = recipient.name))]
    async fn create_recipient(
        &self,
        workspace: &Url,
        recipient: &NewRecipient,
        deadline: Deadline,
    ) -> Result<RecipientInfo, DatabricksError> {
        let call = call(
            Method::POST,
            url_for(workspace, &["recipients"]),
            json!({
                "name": recipient.name,
                "authentication_type": "TOKEN",
                "comment": recipient.comment,
                "properties_kvpairs": {"properties": recipient.properties},
                "expiration_time": recipient.expiration_time,
            }),
            // Not replayed on a lost answer: read back instead.
            Idempotency::NotIdempotent,
        );
        let exists = || async {
            Ok(self
                .get_recipient(workspace, &recipient.name, deadline)
                .await?
                .is_some())
        };
        let raw: RawRecipient = self.change(workspace, &call, deadline, exists).await?;
        Ok(raw.into())
    }

    #[tracing::instrument(skip_all, fields(recipient = name))]
    async fn set_recipient_expiry(
        &self,
        workspace: &Url,
        name: &str,
        expiration_time: i64,
        deadline: Deadline,
    ) -> Result<(), DatabricksError> {
        let call = call(
            Method::PATCH,
            url_for(workspace, &["recipients", name]),
            json!({"expiration_time": expiration_time}),
            Idempotency::Idempotent,
        );
        let _: serde_json::Value = self.send(workspace, &call, deadline).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(recipient = name))]
    async fn rotate_token(
        &self,
        workspace: &Url,
        name: &str,
        deadline: Deadline,
    ) -> Result<RecipientInfo, DatabricksError> {
        // Not replayed after an unknown outcome: a second rotation would expire the token the first
        // one issued, whose link the caller never saw; the caller's next approval rotates again.
        let call = call(
            Method::POST,
            url_for(workspace, &["recipients", name, "rotate-token"]),
            json!({"existing_token_expire_in_seconds": 0}),
            Idempotency::NotIdempotent,
        );
        let raw: RawRecipient = self.send(workspace, &call, deadline).await?;
        Ok(raw.into())
    }
}

#[cfg(test)]
#[path = "sharing_tests.rs"]
mod tests;
