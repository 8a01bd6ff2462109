use super::*;
use secrecy::ExposeSecret;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-3333-4444-555555555555";

fn base() -> Env {
    Env::from_pairs([
        (TENANT_ID, TENANT),
        (AUDIENCE, "api://uc-access, 0000-client"),
    ])
}

#[test]
fn minimal_settings_default_the_openid_url_and_skew_and_allow_nobody() {
    let s = AuthSettings::from_env(&base(), &[("purview-callback", Callers::Services)]).unwrap();
    assert_eq!(s.audiences, vec!["api://uc-access", "0000-client"]);
    assert_eq!(
        s.openid_configuration_url.as_str(),
        format!("https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(s.clock_skew, Duration::from_secs(60));
    assert_eq!(
        s.function("purview-callback"),
        Some(&FunctionAccess::default())
    );
    assert_eq!(s.function("grant-access"), None);
}

#[test]
fn the_v1_document_is_derived_from_the_v2_one_and_may_be_set_apart() {
    let s = AuthSettings::from_env(&base(), &[]).unwrap();
    assert_eq!(
        s.v1_openid_configuration_url.unwrap().as_str(),
        format!("https://login.microsoftonline.com/{TENANT}/.well-known/openid-configuration")
    );
    // A sovereign cloud or the local issuer: the same rule, wherever the v2.0 document is.
    let env = base().with(
        OPENID_CONFIGURATION_URL,
        "http://127.0.0.1:7071/local-issuer/v2.0/.well-known/openid-configuration?appid=x",
    );
    let s = AuthSettings::from_env(&env, &[]).unwrap();
    assert_eq!(
        s.v1_openid_configuration_url.unwrap().as_str(),
        "http://127.0.0.1:7071/local-issuer/.well-known/openid-configuration?appid=x"
    );
    // A v2.0 URL of another shape gives no v1.0 document unless one is set.
    let env = base().with(
        OPENID_CONFIGURATION_URL,
        "https://login.example.com/tenant/config",
    );
    assert!(
        AuthSettings::from_env(&env, &[])
            .unwrap()
            .v1_openid_configuration_url
            .is_none()
    );
    let env = env.with(
        V1_OPENID_CONFIGURATION_URL,
        "https://login.example.com/tenant/v1-config",
    );
    assert_eq!(
        AuthSettings::from_env(&env, &[])
            .unwrap()
            .v1_openid_configuration_url
            .unwrap()
            .as_str(),
        "https://login.example.com/tenant/v1-config"
    );
}

#[test]
fn a_default_scope_in_auth_audience_is_accepted_as_its_audience_and_noted() {
    let env = base().with(
        AUDIENCE,
        "api://uc-access/.default; 6E74172B-BE56-4843-9FF4-E66A39BB12E3, api://uc-access",
    );
    let s = AuthSettings::from_env(&env, &[]).unwrap();
    assert_eq!(
        s.audiences,
        vec!["api://uc-access", "6e74172b-be56-4843-9ff4-e66a39bb12e3"],
        "the scope names the URI, the client id is lower-cased, duplicates collapse"
    );
    assert_eq!(s.audience_notices.len(), 1);
    assert_eq!(s.audience_notices[0].given, "api://uc-access/.default");
    assert_eq!(s.audience_notices[0].used, "api://uc-access");
    assert!(
        AuthSettings::from_env(&base(), &[])
            .unwrap()
            .audience_notices
            .is_empty()
    );
}

#[test]
fn allow_lists_are_read_per_function_from_upper_snake_keys() {
    let env = base().with("PURVIEW_CALLBACK_ALLOWED_APP_IDS", APP).with(
        "GRANT_ACCESS_ALLOWED_ROLES",
        "UcAccess.Operator;UcAccess.Admin",
    );
    let s = AuthSettings::from_env(
        &env,
        &[
            ("purview-callback", Callers::Services),
            ("grant-access", Callers::People),
        ],
    )
    .unwrap();
    let purview = s.function("purview-callback").unwrap();
    assert!(
        purview
            .allowed_app_ids
            .contains(&Uuid::parse_str(APP).unwrap())
    );
    assert!(purview.allowed_roles.is_empty());
    assert_eq!(purview.callers, Callers::Services);
    let grant = s.function("grant-access").unwrap();
    assert!(grant.allowed_roles.contains("UcAccess.Admin"));
    assert!(grant.allowed_app_ids.is_empty());
    assert_eq!(grant.callers, Callers::People);
}

#[test]
fn bad_values_are_rejected_naming_the_key() {
    let cases = [
        (base().with(TENANT_ID, "contoso.onmicrosoft.com"), TENANT_ID),
        (base().with(AUDIENCE, " , "), AUDIENCE),
        (base().with(AUDIENCE, "/.default"), AUDIENCE),
        (base().with(AUDIENCE, "api://a api://b"), AUDIENCE),
        (
            base().with(V1_OPENID_CONFIGURATION_URL, "http://login.example.com/x"),
            V1_OPENID_CONFIGURATION_URL,
        ),
        (
            base().with(OPENID_CONFIGURATION_URL, "not a url"),
            OPENID_CONFIGURATION_URL,
        ),
        (
            base().with(OPENID_CONFIGURATION_URL, "http://login.example.com/x"),
            OPENID_CONFIGURATION_URL,
        ),
        (base().with(CLOCK_SKEW_SECONDS, "3600"), CLOCK_SKEW_SECONDS),
        (base().with(CLOCK_SKEW_SECONDS, "soon"), CLOCK_SKEW_SECONDS),
        (
            base().with("PURVIEW_CALLBACK_ALLOWED_APP_IDS", "purview"),
            "PURVIEW_CALLBACK_ALLOWED_APP_IDS",
        ),
        (
            base().with("PURVIEW_CALLBACK_BASIC_USERNAME", "purview"),
            "PURVIEW_CALLBACK_BASIC_PASSWORD",
        ),
        (
            base().with("PURVIEW_CALLBACK_BASIC_PASSWORD", "s3cret"),
            "PURVIEW_CALLBACK_BASIC_USERNAME",
        ),
        (
            base()
                .with("PURVIEW_CALLBACK_BASIC_USERNAME", "a:b")
                .with("PURVIEW_CALLBACK_BASIC_PASSWORD", "s3cret"),
            "PURVIEW_CALLBACK_BASIC_USERNAME",
        ),
    ];
    for (env, key) in cases {
        let err =
            AuthSettings::from_env(&env, &[("purview-callback", Callers::Services)]).unwrap_err();
        assert_eq!(err.key, key, "{err}");
    }
    let err = AuthSettings::from_env(&Env::default(), &[]).unwrap_err();
    assert_eq!(err.key, TENANT_ID);
}

#[test]
fn plain_http_is_accepted_for_a_loopback_openid_url_only() {
    let env = base().with(
        OPENID_CONFIGURATION_URL,
        "http://127.0.0.1:7071/local-issuer/.well-known/openid-configuration",
    );
    assert!(AuthSettings::from_env(&env, &[]).is_ok());
}

#[tokio::test]
async fn a_supplied_basic_password_completes_a_username_from_the_environment() {
    let env = base().with("PURVIEW_CALLBACK_BASIC_USERNAME", "purview");
    let passwords = BTreeMap::from([(
        "purview-callback".to_owned(),
        SecretString::from("from-key-vault"),
    )]);
    let s = AuthSettings::from_env_with_basic_passwords(
        &env,
        &[("purview-callback", Callers::Services)],
        passwords,
    )
    .unwrap();
    let basic = s
        .function("purview-callback")
        .unwrap()
        .basic
        .as_ref()
        .unwrap();
    assert_eq!(basic.username, "purview");
    assert_eq!(
        basic.password.current().await.expose_secret(),
        "from-key-vault"
    );
}

#[test]
fn an_empty_or_blank_basic_password_supplied_by_the_vault_is_a_settings_error_naming_the_key() {
    let env = base().with("PURVIEW_CALLBACK_BASIC_USERNAME", "purview");
    for supplied in ["", "   ", "\t"] {
        let passwords =
            BTreeMap::from([("purview-callback".to_owned(), SecretString::from(supplied))]);
        let err = AuthSettings::from_env_with_basic_passwords(
            &env,
            &[("purview-callback", Callers::Services)],
            passwords,
        )
        .unwrap_err();
        assert_eq!(err.key, "PURVIEW_CALLBACK_BASIC_PASSWORD", "{supplied:?}");
        assert!(err.problem.contains("empty"), "{err}");
        assert!(!err.is_missing(), "a bad value stops the start: {err}");
    }
    // A blank value in the environment counts as unset: the same key is named.
    let env = env.with("PURVIEW_CALLBACK_BASIC_PASSWORD", "  ");
    let err = AuthSettings::from_env(&env, &[("purview-callback", Callers::Services)]).unwrap_err();
    assert_eq!(err.key, "PURVIEW_CALLBACK_BASIC_PASSWORD");
}

#[test]
fn debug_output_never_shows_the_basic_password() {
    let env = base()
        .with("PURVIEW_CALLBACK_BASIC_USERNAME", "purview")
        .with("PURVIEW_CALLBACK_BASIC_PASSWORD", "hunter2-very-secret");
    let s = AuthSettings::from_env(&env, &[("purview-callback", Callers::Services)]).unwrap();
    let printed = format!("{s:?}");
    assert!(printed.contains("purview"));
    assert!(!printed.contains("hunter2"), "{printed}");
}
