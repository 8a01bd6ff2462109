//! The grant ledger's behaviour, one suite run against both backends: the local folder, and Azure Blob
//! Storage as emulated by Azurite (started by these tests over HTTPS with bearer tokens).

#![allow(clippy::unwrap_used)] // tests panic on purpose with the failing value

#[allow(dead_code)] // the benchmarks' figures (CPU, memory) are not read here
#[path = "../common/app.rs"]
mod app;
mod azurite;
mod binary;
mod blob;
mod credential;
mod fixtures;
mod identity;
mod local;
#[path = "../common/proxy.rs"]
mod proxy;
mod suite;

/// Generates one `#[tokio::test]` per suite case, each on a fresh store from `$make`.
macro_rules! suite_tests {
    ($make:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = $make().await;
                crate::suite::$case(store.as_ref()).await;
            }
        )+
    };
}
pub(crate) use suite_tests;

/// Every case of the suite, for both backends.
macro_rules! all_suite_tests {
    ($make:path) => {
        crate::suite_tests!($make;
            a_created_record_can_be_read_by_id_and_by_key,
            a_duplicate_create_is_refused_and_leaves_the_first_record,
            of_fifty_concurrent_creates_of_one_key_exactly_one_wins,
            an_update_from_a_stale_version_is_a_conflict,
            of_concurrent_updates_from_one_version_exactly_one_wins,
            a_missing_grant_is_not_found,
            find_due_returns_each_kind_of_due_record_and_nothing_else,
            find_due_follows_a_record_through_its_updates,
            list_filters_by_principal_workspace_securable_and_state,
            active_for_principal_keeps_pending_and_active_grants_of_that_principal_only,
            a_probe_succeeds_and_leaves_no_record_behind,
            update_many_changes_each_record_at_its_version_and_refuses_stale_ones,
            find_due_groups_name_the_due_records_by_catalog_oldest_first,
            live_grants_sharing_keeps_live_grants_of_those_principals_in_those_catalogs,
        );
    };
}
pub(crate) use all_suite_tests;
