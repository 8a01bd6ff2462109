//! Databricks clients against small purpose-built HTTP fakes: request shape, errors, timeouts, retries,
//! paging, token caching.

mod directory;
mod fake;
mod grants;
mod tokens;
