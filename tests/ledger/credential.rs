//! A token credential for Azurite's `--oauth basic`: well-formed JWTs with the claims it checks
//! (issuer, audience, times) and no real signature, so the SDK's bearer-token policy runs as in Azure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Default)]
pub struct TestCredential {
    /// Mint tokens for another audience (Azurite then answers 403).
    pub wrong_audience: bool,
    pub calls: AtomicUsize,
}

impl TestCredential {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn for_wrong_audience() -> Arc<Self> {
        Arc::new(Self {
            wrong_audience: true,
            ..Self::default()
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenCredential for TestCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let audience = if self.wrong_audience {
            "https://vault.azure.net"
        } else {
            STORAGE_AUDIENCE
        };
        let (token, expires) = mint(audience);
        Ok(AccessToken::new(token, expires))
    }
}

/// The audience of Azure Storage tokens (Azurite checks it).
pub const STORAGE_AUDIENCE: &str = "https://storage.azure.com";

/// A token for `audience` with the claims Azurite's `--oauth basic` checks, valid for an hour; and when
/// it expires.
pub fn mint(audience: &str) -> (String, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    let expires = now + Duration::hours(1);
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let claims = serde_json::json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": (now - Duration::minutes(1)).unix_timestamp(),
        "nbf": (now - Duration::minutes(1)).unix_timestamp(),
        "exp": expires.unix_timestamp(),
        "tid": tenant,
        "oid": "00000000-0000-4000-8000-0000000000aa",
        "appid": "00000000-0000-4000-8000-0000000000bb",
    });
    let part = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let token = format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        URL_SAFE_NO_PAD.encode(b"unsigned-test-token")
    );
    (token, expires)
}
