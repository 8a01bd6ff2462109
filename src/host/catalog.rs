//! The functions this binary serves, as the Functions host knows them: folder name = function name =
//! route, each with its trigger and whom it serves.

use crate::auth::Callers;

/// What the Functions host checks before uc-access sees an HTTP request (`authLevel` in `function.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLevel {
    /// `function`: a function or host key (`x-functions-key` or `?code=`), the host's own lock, in front
    /// of uc-access's. For the callers that can send a header a deployment gives them (Purview).
    Function,
    /// `anonymous`: no key at the host; uc-access authenticates every caller itself (an Entra token with
    /// an allowed app role). For the functions the Power Automate connector calls: a connection carries
    /// the signed-in person's token, and whether it can also carry a key is not confirmed.
    Anonymous,
}

impl AuthLevel {
    /// The value in `function.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthLevel::Function => "function",
            AuthLevel::Anonymous => "anonymous",
        }
    }
}

/// How the Functions host triggers a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// HTTP trigger, proxied (or forwarded) to `/api/<name>`. `callers` says whom it serves: only a
    /// function for people accepts a person's delegated token. `auth_level` is what the host checks first.
    Http {
        methods: &'static [&'static str],
        callers: Callers,
        auth_level: AuthLevel,
    },
    /// Timer trigger on the NCRONTAB schedule held by the named app setting.
    Timer { schedule_setting: &'static str },
}

/// A function as the host knows it: folder name = function name = route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSpec {
    pub name: &'static str,
    pub trigger: Trigger,
}

pub const PURVIEW_CALLBACK: &str = "purview-callback";
pub const RESOLVE_PRINCIPAL: &str = "resolve-principal";
pub const GRANT_ACCESS: &str = "grant-access";
pub const REVOKE_EXPIRED: &str = "revoke-expired";
pub const REVOKE_ACCESS: &str = "revoke-access";
pub const LIST_GRANTS: &str = "list-grants";
pub const DOCTOR: &str = "doctor";

/// Every function this binary serves; `functions/<name>/function.json` must agree (a test checks).
pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: PURVIEW_CALLBACK,
        // Purview's HTTP action authenticates as a service principal only (app-only tokens).
        trigger: Trigger::Http {
            methods: &["post"],
            callers: Callers::Services,
            auth_level: AuthLevel::Function,
        },
    },
    FunctionSpec {
        name: RESOLVE_PRINCIPAL,
        trigger: Trigger::Http {
            methods: &["post"],
            callers: Callers::People,
            auth_level: AuthLevel::Anonymous,
        },
    },
    FunctionSpec {
        name: GRANT_ACCESS,
        trigger: Trigger::Http {
            methods: &["post"],
            callers: Callers::People,
            auth_level: AuthLevel::Anonymous,
        },
    },
    FunctionSpec {
        name: REVOKE_ACCESS,
        trigger: Trigger::Http {
            methods: &["post"],
            callers: Callers::People,
            auth_level: AuthLevel::Anonymous,
        },
    },
    FunctionSpec {
        name: LIST_GRANTS,
        trigger: Trigger::Http {
            methods: &["get"],
            callers: Callers::People,
            auth_level: AuthLevel::Anonymous,
        },
    },
    FunctionSpec {
        name: DOCTOR,
        trigger: Trigger::Http {
            methods: &["get"],
            callers: Callers::People,
            auth_level: AuthLevel::Anonymous,
        },
    },
    FunctionSpec {
        name: REVOKE_EXPIRED,
        trigger: Trigger::Timer {
            schedule_setting: "REVOKE_SCHEDULE",
        },
    },
];

/// The names of the HTTP-triggered functions (the ones callers authenticate to).
pub fn http_function_names() -> Vec<&'static str> {
    http_functions().into_iter().map(|(name, _)| name).collect()
}

/// The HTTP-triggered functions with whom each serves (what the caller settings are read for).
pub fn http_functions() -> Vec<(&'static str, Callers)> {
    FUNCTIONS
        .iter()
        .filter_map(|f| match f.trigger {
            Trigger::Http { callers, .. } => Some((f.name, callers)),
            Trigger::Timer { .. } => None,
        })
        .collect()
}
