//! Every Unity Catalog REST path uc-access calls, spelled once: the clients build their URLs from
//! [`UcPath`], and a dry run describes the same calls from the same values, so what a dry run shows is
//! what a real run sends.

use serde_json::{Value, json};
use url::Url;

use super::encode_segment;
use crate::planning::grant::PlannedChange;
use crate::planning::share::ShareStep;

/// The root of the Unity Catalog REST API on a workspace.
pub const UC_ROOT: &str = "/api/2.1/unity-catalog";

/// One Unity Catalog resource. Names are percent-encoded as one path segment each: the official SDKs
/// paste them raw, so a `#` or `?` in a name would cut their URL short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UcPath<'a> {
    /// `permissions/{securable_type}/{full_name}`: direct grants (read and `PATCH`).
    Permissions {
        securable_type: &'a str,
        full_name: &'a str,
    },
    /// `effective-permissions/{securable_type}/{full_name}`: direct and inherited grants.
    EffectivePermissions {
        securable_type: &'a str,
        full_name: &'a str,
    },
    /// `tables/{full_name}`: what a table securable really is (table, view, materialized view, …).
    Table(&'a str),
    /// `catalogs/{name}`.
    Catalog(&'a str),
    /// `shares`: create a share.
    Shares,
    /// `shares/{name}`: read a share, add or remove its tables.
    Share(&'a str),
    /// `shares/{name}/permissions`: who may read a share.
    SharePermissions(&'a str),
    /// `recipients`: create a recipient.
    Recipients,
    /// `recipients/{name}`: read, update (token expiry) or delete a recipient.
    Recipient(&'a str),
    /// `recipients/{name}/rotate-token`: a new activation link.
    RotateToken(&'a str),
}

impl UcPath<'_> {
    /// The path, from the workspace root.
    pub fn path(&self) -> String {
        let e = |s: &str| encode_segment(s);
        let tail = match *self {
            UcPath::Permissions {
                securable_type,
                full_name,
            } => format!("permissions/{securable_type}/{}", e(full_name)),
            UcPath::EffectivePermissions {
                securable_type,
                full_name,
            } => format!("effective-permissions/{securable_type}/{}", e(full_name)),
            UcPath::Table(name) => format!("tables/{}", e(name)),
            UcPath::Catalog(name) => format!("catalogs/{}", e(name)),
            UcPath::Shares => "shares".to_owned(),
            UcPath::Share(name) => format!("shares/{}", e(name)),
            UcPath::SharePermissions(name) => format!("shares/{}/permissions", e(name)),
            UcPath::Recipients => "recipients".to_owned(),
            UcPath::Recipient(name) => format!("recipients/{}", e(name)),
            UcPath::RotateToken(name) => format!("recipients/{}/rotate-token", e(name)),
        };
        format!("{UC_ROOT}/{tail}")
    }

    /// The URL on `workspace`.
    pub fn url(&self, workspace: &Url) -> Url {
        let mut url = workspace.clone();
        url.set_path(&self.path());
        url
    }
}

/// The exact `PATCH` calls a grant plan makes, described for a dry run.
pub fn grant_calls(changes: &[PlannedChange], principal: &str) -> Vec<Value> {
    changes
        .iter()
        .map(|c| {
            let full_name = c.securable.full_name();
            let path = UcPath::Permissions {
                securable_type: c.securable.securable_type().as_str(),
                full_name: &full_name,
            };
            json!({
                "method": "PATCH",
                "path": path.path(),
                "body": {"changes": [{
                    "principal": principal,
                    "add": c.add.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                }]},
            })
        })
        .collect()
}

/// The exact call a Delta Sharing step makes, described for a dry run (method, path, body). Bodies hold
/// names only, never an activation link; the token expiry is a placeholder.
pub fn share_step_call(step: ShareStep, recipient: &str, share: &str, table: &str) -> Value {
    let (method, path, body) = match step {
        ShareStep::CreateRecipient => (
            "POST",
            UcPath::Recipients,
            json!({"name": recipient, "authentication_type": "TOKEN"}),
        ),
        ShareStep::ExtendToken => (
            "PATCH",
            UcPath::Recipient(recipient),
            json!({"expiration_time": "<grant expiry>"}),
        ),
        ShareStep::RotateToken => (
            "POST",
            UcPath::RotateToken(recipient),
            json!({"existing_token_expire_in_seconds": 0}),
        ),
        ShareStep::CreateShare => ("POST", UcPath::Shares, json!({"name": share})),
        ShareStep::AddTable => (
            "PATCH",
            UcPath::Share(share),
            json!({"updates": [{"action": "ADD", "data_object": {"name": table, "data_object_type": "TABLE"}}]}),
        ),
        ShareStep::GrantSelect => (
            "PATCH",
            UcPath::SharePermissions(share),
            json!({"changes": [{"principal": recipient, "add": ["SELECT"]}]}),
        ),
    };
    json!({"method": method, "path": path.path(), "body": body})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_encoded_segment_each() {
        let p = UcPath::Permissions {
            securable_type: "table",
            full_name: "cat#1.sch?x.t/y z",
        };
        assert_eq!(
            p.path(),
            "/api/2.1/unity-catalog/permissions/table/cat%231.sch%3Fx.t%2Fy%20z"
        );
        let url = p.url(&Url::parse("https://adb-1.azuredatabricks.net").unwrap());
        assert_eq!((url.query(), url.fragment()), (None, None));
        assert_eq!(
            UcPath::RotateToken("r/1").path(),
            "/api/2.1/unity-catalog/recipients/r%2F1/rotate-token"
        );
    }

    #[test]
    fn dry_run_calls_name_the_real_paths() {
        let call = share_step_call(ShareStep::GrantSelect, "r", "s", "a.b.c");
        assert_eq!(call["path"], "/api/2.1/unity-catalog/shares/s/permissions");
        assert_eq!(call["body"]["changes"][0]["add"][0], "SELECT");
    }
}
