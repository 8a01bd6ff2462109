//! Our Databricks clients against HTTP fakes (request shapes, errors, retries, paging, tokens), and the
//! clients and use cases against the stand-in served on a real port: the nearest thing to the real
//! account and workspace APIs that can run here.

#![allow(clippy::unwrap_used)]

mod assignees;
mod crash;
mod directory;
mod fake;
mod faults;
mod grant;
mod grants;
mod graph;
#[path = "../common/hooks.rs"]
mod hooks;
mod lost_answers;
mod race;
mod resolve;
mod self_approval;
mod support;
mod sweep;
mod tokens;
mod trust;
