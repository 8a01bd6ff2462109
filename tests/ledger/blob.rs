//! The suite against the Blob ledger on Azurite (HTTPS, bearer tokens), plus what only Blob can show.

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::Bytes;

use azure_core::http::ClientOptions;
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use uc_access::ledger::{BlobLedger, BlobLedgerOptions, LedgerError, LedgerStore};

use crate::azurite::Azurite;
use crate::credential::TestCredential;
use crate::fixtures::grant;
use crate::suite::TestStore;

fn fresh_container() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// A fresh container on the shared Azurite, so tests do not see each other's records.
fn ledger(credential: Arc<TestCredential>) -> BlobLedger {
    ledger_in(&fresh_container(), credential)
}

pub(crate) fn ledger_in(container: &str, credential: Arc<TestCredential>) -> BlobLedger {
    let azurite = Azurite::shared();
    BlobLedger::new(
        &azurite.account_url(),
        container,
        credential,
        BlobLedgerOptions {
            transport: Some(azurite.transport()),
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

/// The SDK's own client on a container, to look at what the ledger stored.
fn raw_container(container: &str) -> BlobContainerClient {
    let azurite = Azurite::shared();
    let mut url = azurite.account_url();
    url.path_segments_mut().unwrap().push(container);
    let options = BlobContainerClientOptions {
        client_options: ClientOptions {
            transport: Some(azurite.transport()),
            ..ClientOptions::default()
        },
        ..BlobContainerClientOptions::default()
    };
    BlobContainerClient::new(url, Some(TestCredential::new()), Some(options)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_tags_are_written_with_the_record_and_fit_the_tag_rules() {
    let container = fresh_container();
    let ledger = ledger_in(&container, TestCredential::new());
    let mut record = grant("blob:tags");
    record.principal = uc_access::domain::Principal::group("Finance & Ops (EU) ✓").unwrap();
    ledger.create(record.clone()).await.unwrap();

    let blob = raw_container(&container).blob_client(&format!("grants/{}.json", record.id));
    let tags: HashMap<String, String> = blob
        .get_tags(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .into();
    assert_eq!(tags["state"], "pending");
    assert_eq!(tags["requestedAt"], "2025-03-01T11:59:00Z");
    assert!(
        !tags.contains_key("expiresAt"),
        "a pending grant has no expiry yet"
    );
    assert_eq!(tags["principal"].len(), 64, "names are hashed");
    assert!(tags.len() <= 10, "the service allows ten tags");
    for value in tags.values() {
        assert!(value.len() <= 256);
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " +-./:=_".contains(c)),
            "{value:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_that_is_not_a_grant_record_is_reported_as_corrupt() {
    let container = fresh_container();
    let ledger = ledger_in(&container, TestCredential::new());
    let record = grant("blob:corrupt");
    // The first call creates the container.
    assert!(matches!(
        ledger.get(record.id).await,
        Err(LedgerError::NotFound { .. })
    ));
    raw_container(&container)
        .blob_client(&format!("grants/{}.json", record.id))
        .upload(Bytes::from_static(b"{\"half\":").into(), None)
        .await
        .unwrap();

    let err = ledger.get(record.id).await.unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_grant_the_tag_index_has_not_caught_up_with_is_still_found_for_its_principal() {
    use azure_core::http::RequestContent;
    use azure_storage_blob::models::{BlobContainerClientListBlobsOptions, BlobTags};
    use futures::TryStreamExt;
    use uc_access::ledger::{GrantState, ListFilter};

    let container = fresh_container();
    let ledger = ledger_in(&container, TestCredential::new());
    let now = time::OffsetDateTime::now_utc();
    let record = crate::fixtures::active("blob:lag", crate::fixtures::alice(), now);
    let stored = ledger.create(record.clone()).await.unwrap();

    // Simulate the lag: the record is stored, but find-by-tags does not know it yet.
    let raw = raw_container(&container);
    let tags: RequestContent<BlobTags, _> = BlobTags::from(HashMap::new()).try_into().unwrap();
    raw.blob_client(&format!("grants/{}.json", record.id))
        .set_tags(tags, None)
        .await
        .unwrap();
    let filter = ListFilter {
        principal: Some(record.principal.clone()),
        ..ListFilter::default()
    };
    assert!(
        ledger.list(&filter).await.unwrap().is_empty(),
        "the tag query misses it"
    );

    let live = ledger
        .active_for_principal(&record.workspace.name, &record.principal)
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "found through the principal's marker");
    assert_eq!(live[0].record.id, record.id);
    let other = ledger
        .active_for_principal(&record.workspace.name, &crate::fixtures::bob())
        .await
        .unwrap();
    assert!(other.is_empty(), "markers are per principal");

    // Revoked: no longer live, and its marker is gone.
    let mut revoking = stored.clone();
    revoking
        .record
        .begin_revoke(now, now + time::Duration::minutes(1))
        .unwrap();
    let revoking = ledger.update(&revoking).await.unwrap();
    let mut revoked = revoking.clone();
    revoked.record.mark_revoked(now).unwrap();
    let revoked = ledger.update(&revoked).await.unwrap();
    assert_eq!(revoked.record.state, GrantState::Revoked);
    assert!(
        ledger
            .active_for_principal(&record.workspace.name, &record.principal)
            .await
            .unwrap()
            .is_empty()
    );
    let markers: Vec<_> = raw
        .list_blobs(Some(BlobContainerClientListBlobsOptions {
            prefix: Some("by-principal/".into()),
            ..Default::default()
        }))
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(markers.is_empty(), "{markers:?}");

    // Approved again under the same key: the reopened record gets its marker back, so it is found for its
    // principal while the tag index has not caught up with it either.
    let mut reopened = revoked.clone();
    reopened
        .record
        .reopen(
            crate::fixtures::new_grant(
                "blob:lag",
                record.principal.clone(),
                record.securable.clone(),
            ),
            now,
        )
        .unwrap();
    ledger.update(&reopened).await.unwrap();
    raw.blob_client(&format!("grants/{}.json", record.id))
        .set_tags(BlobTags::from(HashMap::new()).try_into().unwrap(), None)
        .await
        .unwrap();
    let live = ledger
        .active_for_principal(&record.workspace.name, &record.principal)
        .await
        .unwrap();
    assert_eq!(
        live.len(),
        1,
        "the reopened grant is found through its marker"
    );
    assert_eq!(live[0].record.state, GrantState::Pending);
}

/// An HTTP client for the SDK that notes every request (method and path) before sending it on.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn azure_core::http::HttpClient>,
    seen: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for Recording {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        self.seen.lock().unwrap().push((
            request.method().to_string(),
            request.url().path().to_owned(),
        ));
        self.inner.execute_request(request).await
    }
}

impl Recording {
    /// How many `method` requests named `id` (a record's blob or a marker).
    fn count(&self, method: &str, id: uc_access::ledger::GrantId) -> usize {
        let id = id.to_string();
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, path)| m.eq_ignore_ascii_case(method) && path.contains(&id))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeps_lookup_does_not_download_the_grants_it_is_ending() {
    use crate::fixtures::{active, alice, bob};
    use std::collections::BTreeSet;
    use uc_access::ledger::GrantState;

    let azurite = Azurite::shared();
    let recording = Arc::new(Recording {
        inner: Arc::new(azurite.http_client()),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let ledger = BlobLedger::new(
        &azurite.account_url(),
        &fresh_container(),
        TestCredential::new(),
        BlobLedgerOptions {
            transport: Some(azure_core::http::Transport::new(recording.clone())),
        },
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut ending = Vec::new();
    for key in ["blob:ending:1", "blob:ending:2"] {
        let stored = ledger
            .create(active(key, alice(), now - time::Duration::days(2)))
            .await
            .unwrap();
        let mut revoking = stored;
        revoking
            .record
            .begin_revoke(now, now + time::Duration::minutes(1))
            .unwrap();
        ending.push(ledger.update(&revoking).await.unwrap().record.id);
    }
    let staying = ledger
        .create(active("blob:staying", alice(), now))
        .await
        .unwrap()
        .record;
    let bobs = ledger
        .create(active("blob:bob", bob(), now))
        .await
        .unwrap()
        .record;

    let found = ledger
        .live_grants_sharing(
            &staying.workspace.name,
            &BTreeSet::from([staying.securable.catalog_name().as_str().to_owned()]),
            &BTreeSet::from([alice()]),
            &ending.iter().copied().collect(),
        )
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|v| v.record.id).collect::<Vec<_>>(),
        vec![staying.id]
    );
    assert_eq!(found[0].record.state, GrantState::Active);
    for id in &ending {
        assert_eq!(
            recording.count("GET", *id),
            0,
            "a grant being ended is not downloaded by the lookup"
        );
    }
    assert_eq!(
        recording.count("GET", staying.id),
        1,
        "the staying grant is read once"
    );
    assert_eq!(
        recording.count("GET", bobs.id),
        0,
        "another principal's grant is not read"
    );

    // Without exceptions the ending grants are read, and left out because they are revoking.
    let all = ledger
        .active_for_principal(&staying.workspace.name, &alice())
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|v| v.record.id).collect::<Vec<_>>(),
        vec![staying.id]
    );
    for id in &ending {
        assert_eq!(recording.count("GET", *id), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_from_settings_and_its_credential_send_over_the_client_they_are_given() {
    use uc_access::ledger::BlobSettings;

    let proxy = crate::proxy::RecordingProxy::start().await;
    let settings = BlobSettings {
        account_url: url::Url::parse("https://uclegder.blob.core.windows.net").unwrap(),
        container: "uc-access-ledger".into(),
        managed_identity_client_id: None,
    };
    let ledger = BlobLedger::from_settings(&settings, &proxy.client()).unwrap();
    // The read cannot succeed (the proxy refuses every tunnel) and the SDK would retry it for a minute:
    // it runs only until the proxy has seen both requests.
    let read = tokio::spawn(async move { ledger.get(grant("blob:proxy").id).await });
    let seen = |lines: &[String]| lines.iter().any(|l| l.starts_with("CONNECT"));
    let waited = std::time::Instant::now();
    while !seen(&proxy.lines()) && waited.elapsed() < std::time::Duration::from_secs(20) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    read.abort();
    let lines = proxy.lines();
    // The managed identity's token (from the instance metadata service here: the test sets no App
    // Service identity endpoint), then the storage request, both through the given client.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("GET http://169.254.169.254/metadata/identity/oauth2/token")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("CONNECT uclegder.blob.core.windows.net:443")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_for_a_key_of_another_principal_leaves_no_marker_behind() {
    use azure_storage_blob::models::BlobContainerClientListBlobsOptions;
    use futures::TryStreamExt;

    let container = fresh_container();
    let ledger = ledger_in(&container, TestCredential::new());
    let now = time::OffsetDateTime::now_utc();
    let alices = crate::fixtures::active("blob:reused", crate::fixtures::alice(), now);
    ledger.create(alices.clone()).await.unwrap();
    let markers = || async {
        raw_container(&container)
            .list_blobs(Some(BlobContainerClientListBlobsOptions {
                prefix: Some("by-principal/".into()),
                ..Default::default()
            }))
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|b| b.name)
            .collect::<Vec<_>>()
    };
    let before = markers().await;
    assert_eq!(before.len(), 1, "{before:?}");

    // The same key for Bob (a key reused for another request): refused, and nothing is left under Bob.
    let bobs = crate::fixtures::active("blob:reused", crate::fixtures::bob(), now);
    assert_eq!(bobs.id, alices.id, "the id derives from the key");
    let err = ledger.create(bobs).await.unwrap_err();
    assert!(matches!(err, LedgerError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(markers().await, before);

    // A repeated delivery of Alice's own keeps her marker.
    let err = ledger.create(alices).await.unwrap_err();
    assert!(matches!(err, LedgerError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(markers().await, before);
}

/// The index tags stored on the record `id` now (what a tag query would see once the index has them).
async fn tags_of(
    raw: &BlobContainerClient,
    id: uc_access::ledger::GrantId,
) -> HashMap<String, String> {
    raw.blob_client(&format!("grants/{id}.json"))
        .get_tags(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .into()
}

/// Sets the record's index tags back to `tags`: the tag index still showing an earlier write (as Azure's
/// may, for seconds or minutes), while the record itself is current.
async fn index_shows(
    raw: &BlobContainerClient,
    id: uc_access::ledger::GrantId,
    tags: HashMap<String, String>,
) {
    use azure_core::http::RequestContent;
    use azure_storage_blob::models::BlobTags;
    let tags: RequestContent<BlobTags, _> = BlobTags::from(tags).try_into().unwrap();
    raw.blob_client(&format!("grants/{id}.json"))
        .set_tags(tags, None)
        .await
        .unwrap();
}

/// The names of the journal's entries (`due-soon/<id>`).
async fn journal_entries(raw: &BlobContainerClient) -> Vec<String> {
    use azure_storage_blob::models::BlobContainerClientListBlobsOptions;
    use futures::TryStreamExt;
    raw.list_blobs(Some(BlobContainerClientListBlobsOptions {
        prefix: Some("due-soon/".into()),
        ..Default::default()
    }))
    .unwrap()
    .try_collect::<Vec<_>>()
    .await
    .unwrap()
    .into_iter()
    .filter_map(|b| b.name)
    .collect()
}

/// The ids of the records a sweep at `at` finds due, through both of the ledger's due queries.
async fn found_due(
    ledger: &BlobLedger,
    at: time::OffsetDateTime,
) -> Vec<uc_access::ledger::GrantId> {
    use uc_access::ledger::DueQuery;
    let query = DueQuery::at(at);
    let grouped: Vec<_> = ledger
        .find_due_groups(&query)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|g| g.ids)
        .collect();
    let listed: Vec<_> = ledger
        .find_due(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.record.id)
        .collect();
    assert_eq!(grouped, listed, "both queries agree");
    grouped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_minute_grant_whose_activation_the_tag_index_has_not_caught_up_with_is_found_by_the_next_sweep()
 {
    use time::Duration;
    use uc_access::domain::GrantDuration;

    let container = fresh_container();
    let ledger = ledger_in(&container, TestCredential::new());
    let raw = raw_container(&container);
    let now = time::OffsetDateTime::now_utc();
    let mut record = crate::fixtures::grant_at(
        "blob:one-minute",
        crate::fixtures::alice(),
        crate::fixtures::table("main.sales.orders"),
        now,
    );
    record.duration = GrantDuration::parse("PT1M").unwrap();
    let mut active = ledger.create(record.clone()).await.unwrap();
    let pending_tags = tags_of(&raw, record.id).await;
    let added = active.record.plan.clone();
    active.record.mark_active(added, now).unwrap();
    let active = ledger.update(&active).await.unwrap();
    // The index still says `pending`, requested a moment ago: no tag query finds it due.
    index_shows(&raw, record.id, pending_tags).await;

    assert_eq!(
        found_due(&ledger, now + Duration::minutes(2)).await,
        vec![record.id],
        "expired a minute ago: the run after its expiry revokes it"
    );

    // Revoked: the sweep after that drops its journal entry, and finds nothing.
    let mut revoking = active;
    revoking
        .record
        .begin_revoke(now + Duration::minutes(2), now + Duration::minutes(3))
        .unwrap();
    let mut revoked = ledger.update(&revoking).await.unwrap();
    revoked
        .record
        .mark_revoked(now + Duration::minutes(2))
        .unwrap();
    ledger.update(&revoked).await.unwrap();
    assert!(
        found_due(&ledger, now + Duration::minutes(4))
            .await
            .is_empty()
    );
    assert_eq!(journal_entries(&raw).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_rescheduled_a_minute_on_is_found_when_due_though_the_index_still_says_pending()
 {
    use time::Duration;

    let container = fresh_container();
    let ledger = ledger_in(&container, TestCredential::new());
    let raw = raw_container(&container);
    let now = time::OffsetDateTime::now_utc();
    let record = crate::fixtures::grant_at(
        "blob:failed-apply",
        crate::fixtures::alice(),
        crate::fixtures::table("main.sales.orders"),
        now,
    );
    let mut failed = ledger.create(record.clone()).await.unwrap();
    let pending_tags = tags_of(&raw, record.id).await;
    failed
        .record
        .mark_failed("PATCH failed", now, now + Duration::minutes(1))
        .unwrap();
    ledger.update(&failed).await.unwrap();
    index_shows(&raw, record.id, pending_tags).await;

    assert!(
        found_due(&ledger, now + Duration::seconds(30))
            .await
            .is_empty(),
        "not due before its retry time"
    );
    assert_eq!(
        found_due(&ledger, now + Duration::minutes(2)).await,
        vec![record.id],
        "its undo is retried on time, not when the stale pending record would be due"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_approved_again_after_its_revoke_is_found_when_due_though_the_index_still_says_revoked()
 {
    use time::Duration;
    use uc_access::domain::GrantDuration;

    let container = fresh_container();
    let ledger = ledger_in(&container, TestCredential::new());
    let raw = raw_container(&container);
    let now = time::OffsetDateTime::now_utc();
    let earlier = now - Duration::days(3);
    let stored = ledger
        .create(crate::fixtures::active(
            "blob:reopened",
            crate::fixtures::alice(),
            earlier,
        ))
        .await
        .unwrap();
    let id = stored.record.id;
    let mut revoking = stored;
    revoking.record.begin_revoke(earlier, earlier).unwrap();
    let mut revoked = ledger.update(&revoking).await.unwrap();
    revoked.record.mark_revoked(earlier).unwrap();
    let mut reopened = ledger.update(&revoked).await.unwrap();
    let revoked_tags = tags_of(&raw, id).await;

    // The same request approved again, for a minute.
    let mut again = crate::fixtures::new_grant(
        "blob:reopened",
        crate::fixtures::alice(),
        crate::fixtures::table("main.sales.orders"),
    );
    again.duration = GrantDuration::parse("PT1M").unwrap();
    reopened.record.reopen(again, now).unwrap();
    let mut active = ledger.update(&reopened).await.unwrap();
    let added = active.record.plan.clone();
    active.record.mark_active(added, now).unwrap();
    ledger.update(&active).await.unwrap();
    index_shows(&raw, id, revoked_tags).await;

    assert_eq!(
        found_due(&ledger, now + Duration::minutes(2)).await,
        vec![id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activating_a_grant_shorter_than_an_hour_costs_one_journal_write_and_a_longer_one_none() {
    use uc_access::domain::GrantDuration;

    let azurite = Azurite::shared();
    let recording = Arc::new(Recording {
        inner: Arc::new(azurite.http_client()),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let ledger = BlobLedger::new(
        &azurite.account_url(),
        &fresh_container(),
        TestCredential::new(),
        BlobLedgerOptions {
            transport: Some(azure_core::http::Transport::new(recording.clone())),
        },
    )
    .unwrap();
    let journal_writes = || {
        recording
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(method, path)| {
                method.eq_ignore_ascii_case("PUT") && path.contains("/due-soon")
            })
            .count()
    };
    let now = time::OffsetDateTime::now_utc();
    for (key, duration, writes) in [("blob:week", "P7D", 0), ("blob:minutes", "PT30M", 1)] {
        let mut record = crate::fixtures::grant_at(
            key,
            crate::fixtures::alice(),
            crate::fixtures::table("main.sales.orders"),
            now,
        );
        record.duration = GrantDuration::parse(duration).unwrap();
        let before = journal_writes();
        let mut stored = ledger.create(record).await.unwrap();
        assert_eq!(
            journal_writes(),
            before,
            "{duration}: the pending create is not journaled"
        );
        let added = stored.record.plan.clone();
        stored.record.mark_active(added, now).unwrap();
        ledger.update(&stored).await.unwrap();
        assert_eq!(journal_writes() - before, writes, "{duration}");
    }
}
