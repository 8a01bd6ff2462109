//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and the crash regressions
//! (`fuzz/regressions/<target>/`) through the same entry points the cargo-fuzz targets call
//! (`fuzz/entries.rs`), so CI checks every saved input on stable Rust in a few seconds. The long
//! instrumented runs are `scripts/fuzz` (docs/testing.md).

#![allow(clippy::unwrap_used)] // a test panics with the failing value

#[path = "../fuzz/entries.rs"]
mod entries;

use std::path::Path;

/// A fuzz entry point: bytes in, a panic on a broken invariant.
type Entry = fn(&[u8]);

const TARGETS: [(&str, Entry); 5] = [
    ("callback_body", entries::callback_body),
    ("operator_body", entries::operator_body),
    ("qualified_name", entries::qualified_name),
    ("token", entries::token),
    ("host_payload", entries::host_payload),
];

fn inputs(dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&path) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn replay(dir: &str, minimum: usize) {
    for (target, entry) in TARGETS {
        let files = inputs(dir, target);
        assert!(
            files.len() >= minimum,
            "fuzz/{dir}/{target} holds {} inputs, expected at least {minimum}",
            files.len()
        );
        for (name, bytes) in files {
            let outcome = std::panic::catch_unwind(|| entry(&bytes));
            assert!(
                outcome.is_ok(),
                "fuzz/{dir}/{target}/{name} crashes the entry"
            );
        }
    }
}

#[test]
fn every_committed_corpus_input_runs_without_a_crash() {
    replay("corpus", 5);
}

#[test]
fn every_crash_found_so_far_stays_fixed() {
    replay("regressions", 0);
}

#[test]
fn the_unsigned_token_checks_accept_a_well_formed_token_and_name_what_is_wrong() {
    use base64::Engine;
    use uc_access::auth::{AuthError, TokenKind, check_unsigned};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let tenant = uuid::Uuid::from_u128(0x10ca1000_0000_4000_8000_000000000000);
    let token = |header: &str, claims: serde_json::Value| {
        format!(
            "{}.{}.sig",
            b64.encode(header),
            b64.encode(claims.to_string())
        )
    };
    let rs256 = r#"{"alg":"RS256","kid":"k1"}"#;
    let app = "10ca1000-0000-4000-8000-0000000000a1";
    let ok = check_unsigned(
        &token(
            rs256,
            serde_json::json!({"tid": tenant.to_string(), "azp": app, "roles": ["R"]}),
        ),
        tenant,
    )
    .unwrap();
    assert_eq!(ok.kid, "k1");
    assert_eq!(ok.app_id.to_string(), app);
    assert_eq!(ok.roles, vec!["R"]);
    assert_eq!(ok.kind, TokenKind::AppOnly);
    let person = check_unsigned(
        &token(
            rs256,
            serde_json::json!({"tid": tenant.to_string(), "azp": app, "scp": "user_impersonation"}),
        ),
        tenant,
    )
    .unwrap();
    assert_eq!(person.kind, TokenKind::Delegated);
    // A v1.0 token names its caller in `appid`; a token without `ver` follows the v2.0 rules.
    let v1 = check_unsigned(
        &token(
            rs256,
            serde_json::json!({"ver": "1.0", "tid": tenant.to_string(), "appid": app}),
        ),
        tenant,
    )
    .unwrap();
    assert_eq!(v1.version, uc_access::auth::TokenVersion::V1);
    assert_eq!(v1.app_id.to_string(), app);
    assert_eq!(ok.version, uc_access::auth::TokenVersion::V2);
    for (header, claims, error) in [
        (
            rs256,
            serde_json::json!({"ver": "1.0", "tid": tenant.to_string(), "azp": app}),
            AuthError::MissingClaim,
        ),
        (
            rs256,
            serde_json::json!({"ver": "2.0", "tid": tenant.to_string(), "appid": app}),
            AuthError::MissingClaim,
        ),
        (
            rs256,
            serde_json::json!({"ver": "9.9", "tid": tenant.to_string(), "azp": app}),
            AuthError::MalformedToken,
        ),
        (
            r#"{"alg":"none","kid":"k1"}"#,
            serde_json::json!({}),
            AuthError::UnsupportedAlgorithm,
        ),
        (
            r#"{"alg":"RS256"}"#,
            serde_json::json!({}),
            AuthError::MalformedToken,
        ),
        (
            rs256,
            serde_json::json!({"azp": app}),
            AuthError::MissingClaim,
        ),
        (
            rs256,
            serde_json::json!({"tid": "11111111-2222-4333-8444-555555555555", "azp": app}),
            AuthError::WrongTenant,
        ),
        (
            rs256,
            serde_json::json!({"tid": tenant.to_string(), "azp": "x"}),
            AuthError::MalformedToken,
        ),
    ] {
        assert_eq!(
            check_unsigned(&token(header, claims), tenant),
            Err(error),
            "{header}"
        );
    }
    assert_eq!(
        check_unsigned("a.b", tenant),
        Err(AuthError::MalformedToken)
    );
}
