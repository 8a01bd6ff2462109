//! The fuzz entry points: bytes in, the parsers the HTTP functions and the host protocol run, and the
//! invariants their results must keep. Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and by
//! `tests/fuzz_corpus.rs`, which replays the committed corpus through them in ordinary `cargo test`.
//!
//! Each entry must never panic on any input; a panic here is a crash (an `assert!` names the broken
//! invariant).

#![allow(dead_code)] // each fuzz target uses one entry

use serde_json::Value;
use uc_access::auth::{BasicCredentials, check_basic, check_unsigned};
use uc_access::contract::{grant_access, principal, purview, qualified_name};
use uc_access::domain::{EntraObjectId, Name, Securable, WorkspaceRef, Workspaces};
use uc_access::host::timer::{TimerInfo, parse_lenient_time};
use uc_access::host::{InvocationRequest, http_bridge};

const TENANT: uuid::Uuid = uuid::Uuid::from_u128(0x10ca1000_0000_4000_8000_000000000000);
const CALLER: &str = "7d3b4a5f-6e7d-4c8b-8a91-2c3d4e5f6071";

fn workspaces() -> Workspaces {
    Workspaces::new(Some(WorkspaceRef {
        name: "default".into(),
        host: "https://adb-1.1.azuredatabricks.net"
            .parse()
            .expect("a valid URL"),
    }))
}

/// Every part of a securable's name is a valid [`Name`], stored lower case, with none of the characters
/// Unity Catalog refuses (`.`, space, `/`, control characters), so the dotted full name splits back into
/// exactly its parts (what reaches a grant is exactly what was checked).
fn assert_clean(securable: &Securable) {
    let full = securable.full_name();
    for part in full.split('.') {
        assert!(!part.is_empty(), "empty part in {full:?}");
        assert!(
            !part.chars().any(uc_access::domain::is_refused_in_names),
            "a character Unity Catalog refuses in {full:?}"
        );
        assert_eq!(part, part.to_lowercase(), "not stored lower case: {full:?}");
        assert_eq!(
            Name::parse(part).map(|n| n.to_string()).as_deref(),
            Ok(part)
        );
    }
    assert_eq!(
        Securable::parse(securable.securable_type(), &full).as_ref(),
        Ok(securable),
        "the full name does not parse back to the same securable"
    );
}

/// The `purview-callback` body.
pub fn callback_body(data: &[u8]) {
    if let Ok(request) = purview::parse(data, &workspaces()) {
        assert_clean(&request.securable);
        let approvers = &request.approval.approvers;
        assert!(approvers.len() <= purview::MAX_ASSIGNEES);
        assert!(
            approvers.windows(2).all(|w| w[0] < w[1]),
            "approvers sorted, no duplicates"
        );
        assert_ne!(
            request.target,
            Some(request.requester),
            "a self-target is no target"
        );
        if let Some(privileges) = &request.privileges {
            for p in privileges.iter() {
                assert!(p.valid_on(request.securable.securable_type()));
            }
        }
    }
}

/// The `grant-access` and `resolve-principal` bodies (the operator functions).
pub fn operator_body(data: &[u8]) {
    let caller = EntraObjectId::parse(CALLER).expect("a GUID");
    if let Ok(request) = grant_access::parse(data, &workspaces(), caller) {
        assert_clean(&request.securable);
        assert_eq!(request.requester, caller);
        assert_eq!(request.approval.approvers, vec![caller]);
    }
    let _ = principal::parse_body(data);
}

/// Purview's qualified names and the plain names inside them.
pub fn qualified_name(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(asset) = qualified_name::parse(raw) {
        assert_clean(&asset.securable);
        assert_eq!(asset.authority, asset.authority.to_ascii_lowercase());
        // Rendering the parsed asset again gives the same asset: nothing was read in two ways. A name
        // holding '%' is written %25, as the parser asks.
        let mut again = format!("databricks://{}", asset.authority);
        for (keyword, part) in ["catalogs", "schemas", "tables"]
            .iter()
            .zip(asset.securable.full_name().split('.'))
        {
            again.push_str(&format!("/{keyword}/{}", part.replace('%', "%25")));
        }
        assert_eq!(
            qualified_name::parse(&again).as_ref(),
            Ok(&asset),
            "{again}"
        );
    }
    if let Ok(name) = Name::parse(raw) {
        assert_eq!(name.as_str(), raw.to_lowercase());
        assert_eq!(Name::parse(name.as_str()), Ok(name));
    }
}

/// Bearer tokens (header and identity claims, no key needed) and Basic credentials. The first byte
/// chooses: a token as given, a token assembled around the rest as its claims, or a Basic header.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = check_unsigned(text, TENANT);
        }
        1 => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let header = b64.encode(br#"{"alg":"RS256","kid":"k"}"#);
            let token = format!("{header}.{}.sig", b64.encode(text));
            if let Ok(identity) = check_unsigned(&token, TENANT) {
                assert_eq!(identity.kid, "k");
                // Read `tid` the way the claims are read (other members ignored, whatever they hold:
                // a number too large for `Value` is fine in a member nobody reads).
                #[derive(serde::Deserialize)]
                struct Tid {
                    tid: Option<String>,
                }
                let Tid { tid } = serde_json::from_str(text).expect("accepted claims are JSON");
                assert_eq!(
                    tid.and_then(|t| uuid::Uuid::parse_str(&t).ok()),
                    Some(TENANT),
                    "a token of another tenant was accepted"
                );
            }
        }
        _ => {
            let expected = BasicCredentials::new("purview", "correct horse".to_owned().into());
            // A fixed password never waits on a store: the check completes at its first poll.
            let check = std::pin::pin!(check_basic(text, &expected));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let std::task::Poll::Ready(result) = std::future::Future::poll(check, &mut cx) else {
                panic!("the Basic check waited on a fixed password");
            };
            if let Ok(user) = result {
                assert_eq!(user, "purview");
            }
        }
    }
}

/// What the Functions host posts: invocation payloads (timer and bridged HTTP) and timer bindings.
pub fn host_payload(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        if let Ok(info) = TimerInfo::from_binding(&value) {
            for t in [info.last, info.next, info.last_updated]
                .into_iter()
                .flatten()
            {
                assert!(t.year() > 1, "the year-one placeholder means never");
            }
        }
        if let Value::String(s) = &value
            && let Some(t) = parse_lenient_time(s)
        {
            assert!(t.year() > 1);
        }
    }
    if let Ok(invocation) = serde_json::from_slice::<InvocationRequest>(data) {
        if let Some(binding) = invocation.binding("timer") {
            let _ = TimerInfo::from_binding(&binding);
        }
        if let Ok(request) = http_bridge::to_http_request("purview-callback", &invocation, None) {
            assert!(
                request.uri().path() == "/api/purview-callback",
                "a bridged request must stay on its function's route: {}",
                request.uri()
            );
        }
    }
}
