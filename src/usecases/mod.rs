//! Use cases: resolve a principal, provision an approval, expire and reconcile. They gather facts
//! through the adapters' narrow traits, call the pure decisions, and apply the result.

pub mod apply;
pub mod resolve;
