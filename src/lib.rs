//! uc-access: approved access requests become least-privilege Unity Catalog grants that expire.

pub mod auth;
pub mod settings;
