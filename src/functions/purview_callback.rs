//! `purview-callback` (HTTP POST): called by a Purview workflow's HTTP action after approval.
//! Authenticate, parse, then provision (decide → resolve → plan → record → apply) and answer flat JSON.

use axum::Json;

use crate::contract::purview;
use crate::error::ApiError;
use crate::functions::answer::{Answer, provision_and_answer};
use crate::functions::http::{Accepted, PurviewCallback};

pub async fn handle(accepted: Accepted<PurviewCallback>) -> Result<Json<Answer>, ApiError> {
    let services = &accepted.services;
    let request = purview::parse(&accepted.body, &services.workspaces)?;
    provision_and_answer(services, &accepted.caller, &request).await
}
