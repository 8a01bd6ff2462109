//! The test suite itself: every file in a multi-file test folder is compiled. A module dropped from a
//! `main.rs` silently removes its tests (it happened once, to the Databricks client tests).

use std::fs;
use std::path::Path;

#[test]
fn every_test_module_file_is_declared_by_its_main() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut orphans = Vec::new();
    let mut folders = 0;
    for entry in fs::read_dir(&tests).expect("tests/") {
        let folder = entry.expect("an entry").path();
        let main = folder.join("main.rs");
        if !main.is_file() {
            continue;
        }
        folders += 1;
        let declared = fs::read_to_string(&main).expect("main.rs");
        for file in fs::read_dir(&folder).expect("a test folder") {
            let file = file.expect("an entry").path();
            let Some(stem) = file
                .extension()
                .filter(|e| *e == "rs")
                .and(file.file_stem())
                .and_then(|s| s.to_str())
            else {
                continue;
            };
            if stem != "main" && !declared.contains(&format!("mod {stem};")) {
                orphans.push(file.display().to_string());
            }
        }
    }
    assert!(
        folders >= 3,
        "expected the api, databricks and ledger suites"
    );
    assert!(orphans.is_empty(), "not compiled by any test: {orphans:?}");
}
