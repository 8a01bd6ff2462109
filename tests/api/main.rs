//! In-process tests of the router: the host protocol, the function folders, and every HTTP function,
//! against the real app wired to local fakes.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose with the failing value

mod bad_input;
mod doctor;
#[path = "../common/dynamic_content.rs"]
mod dynamic_content;
mod expiry;
mod functions_folder;
mod helpers;
mod host_protocol;
mod load;
mod names;
mod operators;
mod purview_callback;
mod purview_template;
mod purview_workflow;
mod sharing;
