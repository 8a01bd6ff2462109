//! The request contracts: raw JSON bodies become domain values, or an error that names the field.
//! Pure: nothing happens when parsing fails.

pub mod fields;
pub mod grant_access;
pub mod principal;
pub mod purview;
pub mod qualified_name;
pub mod rendering;

pub use fields::{BodyError, FieldError};
