//! The suite against the Blob ledger on Azurite (HTTPS, bearer tokens), plus what only Blob can show.

use std::sync::Arc;

use azure_core::http::Transport;
use uc_access::ledger::{BlobLedger, BlobLedgerOptions, LedgerError, LedgerStore};

use crate::azurite::Azurite;
use crate::credential::TestCredential;
use crate::fixtures::grant;
use crate::suite::TestStore;

/// A transport that trusts only the test certificate, with no decompression and no redirects (the
/// storage SDK expects raw bodies).
fn transport(azurite: &Azurite) -> Transport {
    let cert = reqwest::Certificate::from_pem(azurite.cert_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([cert])
        .no_gzip()
        .no_deflate()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Transport::new(Arc::new(client))
}

/// A fresh container on the shared Azurite, so tests do not see each other's records.
fn ledger(credential: Arc<TestCredential>) -> BlobLedger {
    let azurite = Azurite::shared();
    let container = format!("t{}", uuid::Uuid::new_v4().simple());
    BlobLedger::new(
        &azurite.account_url(),
        &container,
        credential,
        BlobLedgerOptions {
            transport: Some(transport(azurite)),
        },
    )
    .unwrap()
}

async fn store() -> TestStore {
    TestStore {
        store: Arc::new(ledger(TestCredential::new())),
        _keep: None,
    }
}

crate::all_suite_tests!(store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_a_bearer_token_from_the_credential() {
    let credential = TestCredential::new();
    let ledger = ledger(Arc::clone(&credential));
    ledger.create(grant("blob:token")).await.unwrap();
    assert!(
        credential.calls() >= 1,
        "the SDK asked the credential for a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_service_refuses_is_forbidden_and_names_the_role() {
    let ledger = ledger(TestCredential::for_wrong_audience());
    let err = ledger.create(grant("blob:refused")).await.unwrap_err();
    assert!(matches!(err, LedgerError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("Storage Blob Data Owner"), "{err}");
    assert!(!err.is_retryable());
}
