//! uc-access: approved access requests become least-privilege Unity Catalog grants that expire.

pub mod databricks;
pub mod domain;
pub mod settings;
