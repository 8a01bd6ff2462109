//! The core of uc-access: what an approval is (`domain`), how a request body becomes one (`contract`),
//! what the policy allows (`policy`), and the pure planners that turn what Unity Catalog holds into the
//! exact changes (`planning`), with the settings primitives they read (`env`).
//!
//! No HTTP, no Azure SDK, no async runtime and no REST path: this crate does not depend on them, so the
//! decisions cannot reach out. The adapters and the use cases in `uc-access` build on it.

pub mod contract;
pub mod domain;
pub mod env;
pub mod planning;
pub mod policy;
