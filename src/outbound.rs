//! The process's one HTTP client for everything it calls: Databricks, the caller tokens' key set, and the
//! Azure SDK's clients and credentials (the Blob ledger, Key Vault, managed identity and Entra tokens).
//!
//! Building a client loads the platform's root certificates (on Debian the bundle and then every file of
//! `/etc/ssl/certs`, about 290 files): a few milliseconds of start-up each time (BENCHMARKS.md). Left to
//! themselves, every Azure SDK client and credential builds its own, so in the shape the app has in Azure
//! (Blob ledger, Key Vault, managed identity) start-up built up to six. One client also keeps one
//! connection pool per host for the whole process.
//!
//! One per process, made where the process starts and passed down, not a global: a reqwest client's
//! pooled connections belong to the tokio runtime that opened them, and tests run many runtimes.

use std::sync::Arc;
use std::time::Duration;

/// The client: no redirects (an API redirect is a misconfigured host, and following it would send a
/// token elsewhere; key material must come from the configured origin; the Azure SDK turns them off in
/// its own client too), a connect timeout, our user agent (the Azure SDK sets its own per request). The
/// crate builds reqwest without response decompression, as the Azure SDK expects of its transport.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("uc-access/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a reqwest client with static settings always builds")
}

/// `http` as the transport of an Azure SDK client or credential.
pub fn azure_transport(http: &reqwest::Client) -> azure_core::http::Transport {
    azure_core::http::Transport::new(Arc::new(http.clone()))
}

/// The app's managed identity as an Azure SDK credential (the user-assigned one with `client_id`, from
/// `ARM_CLIENT_ID` / `AZURE_CLIENT_ID`, or the system-assigned one when `None`), fetching its tokens over
/// `http`. The Blob ledger, Key Vault and Databricks (`azure-msi`) each hold one.
pub fn managed_identity(
    client_id: Option<String>,
    http: &reqwest::Client,
) -> azure_core::Result<Arc<azure_identity::ManagedIdentityCredential>> {
    azure_identity::ManagedIdentityCredential::new(Some(
        azure_identity::ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(azure_identity::UserAssignedId::ClientId),
            client_options: azure_client_options(http),
        },
    ))
}

/// Azure SDK client options that send over `http`, everything else the SDK's default.
pub fn azure_client_options(http: &reqwest::Client) -> azure_core::http::ClientOptions {
    azure_core::http::ClientOptions {
        transport: Some(azure_transport(http)),
        ..azure_core::http::ClientOptions::default()
    }
}
