//! The suite against the local-folder ledger, plus what only a folder can show.

use std::sync::Arc;

use uc_access::ledger::{LedgerError, LedgerSettings, LedgerStore, LocalLedger, open};
use uc_access::settings::Env;

use crate::fixtures::grant;
use crate::suite::TestStore;

async fn store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    TestStore {
        store: Arc::new(LocalLedger::new(dir.path().join("ledger"))),
        _keep: Some(Box::new(dir)),
    }
}

crate::all_suite_tests!(store);

#[tokio::test]
async fn a_record_is_one_readable_json_file_and_no_temporary_files_remain() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = LocalLedger::new(dir.path());
    let record = grant("local:file");
    ledger.create(record.clone()).await.unwrap();
    let _ = ledger.create(record.clone()).await.unwrap_err();

    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, vec![format!("{}.json", record.id)]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(&files[0])).unwrap()).unwrap();
    assert_eq!(json["idempotencyKey"], "local:file");
}

#[tokio::test]
async fn the_folder_is_made_at_the_first_write_and_again_if_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("nested").join("ledger");
    let ledger = LocalLedger::new(&folder);
    let first = grant("local:first");
    ledger.create(first.clone()).await.unwrap();
    assert!(folder.join(format!("{}.json", first.id)).is_file());

    std::fs::remove_dir_all(dir.path().join("nested")).unwrap();
    let second = grant("local:second");
    ledger.create(second.clone()).await.unwrap();
    assert_eq!(ledger.get(second.id).await.unwrap().record, second);
    assert!(matches!(
        ledger.get(first.id).await,
        Err(LedgerError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_damaged_file_is_reported_as_corrupt_not_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = LocalLedger::new(dir.path());
    let record = grant("local:corrupt");
    std::fs::write(
        dir.path().join(format!("{}.json", record.id)),
        b"{\"half\":",
    )
    .unwrap();

    let err = ledger.get(record.id).await.unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn the_ledger_opened_from_local_settings_keeps_records_in_ledger_dir() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs([
        ("LEDGER_BACKEND", "local"),
        ("LEDGER_DIR", dir.path().to_str().unwrap()),
    ]);
    let store = open(
        &LedgerSettings::from_env(&env).unwrap(),
        &uc_access::outbound::http_client(),
    )
    .unwrap();
    let record = grant("local:settings");
    store.create(record.clone()).await.unwrap();
    assert!(dir.path().join(format!("{}.json", record.id)).is_file());
}
