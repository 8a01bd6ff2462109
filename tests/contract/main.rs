//! The `purview-callback` contract corpus (tests/fixtures/purview/corpus/) run through the built binary
//! in its Azure shape: `uc-access serve` started as the Functions host starts it, its ledger in Blob
//! Storage (Azurite) reached as its managed identity, each body delivered as the host delivers it
//! (forwarded HTTP and the invocation payload) with Entra ID tokens in the v1 and the v2 shape.

#![allow(clippy::unwrap_used)] // tests panic on purpose with the failing value

#[allow(dead_code)] // the benchmarks' figures (CPU, memory) are not read here
#[path = "../common/app.rs"]
mod app;
#[allow(dead_code)] // the ledger tests' helpers for logs and the process id
#[path = "../ledger/azurite.rs"]
mod azurite;
mod corpus;
#[allow(dead_code)] // the ledger tests' wrong-audience credential
#[path = "../ledger/credential.rs"]
mod credential;
#[allow(dead_code)] // the ledger tests' view of the other arrays
#[path = "../common/dynamic_content.rs"]
mod dynamic_content;
#[allow(dead_code)] // the identity endpoint's request log
#[path = "../ledger/identity.rs"]
mod identity;
