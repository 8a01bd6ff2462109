use super::*;

#[test]
fn a_recipient_answer_reads_properties_tokens_and_the_unused_link() {
    let raw: RawRecipient = serde_json::from_value(json!({
        "name": "uc_access_x",
        "authentication_type": "TOKEN",
        "properties_kvpairs": {"properties": {"uc_access_managed": "true"}},
        "expiration_time": 1_900_000_000_000_i64,
        "tokens": [
            {"activation_url": "", "expiration_time": 1},
            {"activation_url": "https://x/delta_sharing/retrieve_config.html?abc", "expiration_time": 2}
        ]
    }))
    .unwrap();
    let r: RecipientInfo = raw.into();
    assert_eq!(r.properties["uc_access_managed"], "true");
    assert_eq!(
        r.activation_url(),
        Some("https://x/delta_sharing/retrieve_config.html?abc")
    );
    assert!(
        !format!("{:?}", r.tokens[1]).contains("abc"),
        "links stay out of logs"
    );
}

#[test]
fn share_names_are_encoded_path_segments() {
    let base = Url::parse("https://adb-1.azuredatabricks.net").unwrap();
    assert_eq!(
        url_for(&base, &["shares", "a#b", "permissions"]).path(),
        "/api/2.1/unity-catalog/shares/a%23b/permissions"
    );
}

#[test]
fn errors_are_classified_by_code() {
    let e = DatabricksError::from_response(
        super::super::Upstream {
            request: "POST /api/2.1/unity-catalog/shares".into(),
            status: 409,
            error_code: Some("SHARE_ALREADY_EXISTS".into()),
            message: "Share x already exists".into(),
        },
        None,
    );
    assert!(is_already_exists(&e));
    assert!(!is_does_not_exist(&e));
}
