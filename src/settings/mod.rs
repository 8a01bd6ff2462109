//! Typed settings, read once from the environment (the Function app's settings) and validated at start.

mod env;
mod server;

pub use env::{Env, SettingsError};
pub use server::{DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, ServerSettings};
