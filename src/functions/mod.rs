//! One module per Azure function, named as its folder under `functions/` and its route. Each has a core
//! that knows nothing of HTTP (`run(input, &deps) -> Result<Outcome, Error>`) and a few lines of adapter.

pub mod answer;
pub mod doctor;
pub mod errors;
pub mod grant_access;
pub mod http;
pub mod list_grants;
pub mod purview_callback;
pub mod resolve_principal;
pub mod revoke_access;
pub mod revoke_expired;

// The catalog of functions (names, triggers, whom each serves) belongs to the host protocol, where the
// settings and the host's own files read it too; re-exported here for the router and the tests.
pub use crate::host::catalog::{
    AuthLevel, DOCTOR, FUNCTIONS, FunctionSpec, GRANT_ACCESS, LIST_GRANTS, PURVIEW_CALLBACK,
    RESOLVE_PRINCIPAL, REVOKE_ACCESS, REVOKE_EXPIRED, Trigger, http_function_names, http_functions,
};
