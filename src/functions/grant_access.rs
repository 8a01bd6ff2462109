//! `grant-access` (HTTP POST, operators and the Power Automate connector): a request naming the
//! principal and securable directly becomes a least-privilege grant with expiry, or with `dryRun` the
//! exact calls that would be made.

use axum::Json;

use crate::auth::Caller;
use crate::contract::grant_access;
use crate::domain::{ApplicationId, EntraObjectId, Operator};
use crate::error::ApiError;
use crate::functions::answer::{Answer, provision_and_answer};
use crate::functions::http::{Accepted, GrantAccess};

pub async fn handle(accepted: Accepted<GrantAccess>) -> Result<Json<Answer>, ApiError> {
    let services = &accepted.services;
    // The operator's own object id stands as requester and approver, so policy refuses self-grants.
    let caller = accepted.caller.object_id().map(EntraObjectId::from).ok_or_else(|| {
        ApiError::unauthenticated(
            "missing_claim",
            "grant-access needs a caller identity with an object id (a user or a service principal token)",
        )
    })?;
    let mut request = grant_access::parse(&accepted.body, &services.workspaces, caller)?;
    request.approval.operator = operator(&accepted.caller);
    provision_and_answer(services, &accepted.caller, &request).await
}

/// What the token says about the kind of operator, for the self-approval checks (a person is never a
/// service principal; an application is known by its application id).
fn operator(caller: &Caller) -> Option<Operator> {
    match caller {
        Caller::User(u) => Some(Operator::Person {
            via: ApplicationId::from(u.app_id),
        }),
        Caller::Application(a) => Some(Operator::Application {
            app_id: ApplicationId::from(a.app_id),
        }),
        Caller::Basic(_) => None,
    }
}
