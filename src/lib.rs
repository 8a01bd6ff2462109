//! uc-access: approved access requests become least-privilege Unity Catalog grants that expire.

pub mod app;
pub mod auth;
pub mod contract;
pub mod databricks;
pub mod domain;
pub mod error;
pub mod functions;
pub mod graph;
pub mod host;
pub mod ledger;
pub mod outbound;
pub mod planning;
pub mod policy;
pub mod secrets;
pub mod settings;
pub mod telemetry;
pub mod usecases;
