//! uc-access: approved access requests become least-privilege Unity Catalog grants that expire.

pub mod app;
pub mod auth;
pub mod databricks;
pub mod doctor;
pub mod error;
pub mod functions;
pub mod graph;
pub mod host;
pub mod ledger;
pub mod outbound;
pub mod secrets;
pub mod services;
pub mod settings;
pub mod telemetry;
pub mod usecases;

// The core crate's modules, at the paths the rest of the product (and its users) name them by.
pub use uc_access_core::{contract, domain, env, planning, policy};
