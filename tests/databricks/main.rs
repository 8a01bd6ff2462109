//! Our Databricks clients and use cases against the stand-in served on a real port: the nearest thing to
//! the real account and workspace APIs that can run here.

#![allow(clippy::unwrap_used)]

mod crash;
mod grant;
mod resolve;
mod support;
