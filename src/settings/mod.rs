//! Typed settings, read once from the environment (the Function app's settings) and validated at start.

mod env;

pub use env::{Env, SettingsError};
