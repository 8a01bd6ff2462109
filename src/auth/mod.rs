//! Caller authentication for the HTTP functions: Entra ID bearer tokens (Purview's service principal,
//! Power Automate's delegated users) or HTTP Basic where enabled, then a per-function allow-list.

mod audience;
mod authenticator;
mod basic;
mod bearer;
mod caller;
mod error;
mod keys;
mod settings;

pub use audience::{
    AudienceKind, AudienceMismatch, AudienceNotice, DEFAULT_SCOPE_SUFFIX, TokenVersion,
};
pub use authenticator::Authenticator;
pub use basic::check as check_basic;
pub use bearer::{TokenKind, UnsignedIdentity, check_unsigned};
pub use caller::{AllowedBy, ApplicationCaller, BasicCaller, Caller, UserCaller};
pub use error::AuthError;
pub use settings::{
    AuthSettings, BasicCredentials, Callers, DEFAULT_CLOCK_SKEW_SECONDS, FunctionAccess,
    KeyRefreshPolicy, default_openid_configuration_url, derive_v1_openid_configuration_url,
    setting_prefix,
};
