//! The doctor's audience check: whether `AUTH_AUDIENCE` accepts what each token version carries, and,
//! once tokens were refused for their audience alone, which value they carried and what to change.

use crate::auth::{
    AudienceKind, AudienceMismatch, Authenticator, DEFAULT_SCOPE_SUFFIX, TokenVersion,
};

use super::Check;

/// `auth.audience`: fails when tokens of the tenant were refused only for their audience since this
/// process started (naming the value to add); otherwise passes, with advice when one token version has no
/// accepted audience or when an entry was a scope.
pub fn audience_check(auth: &Authenticator) -> Check {
    const NAME: &str = "auth.audience";
    let settings = auth.settings();
    let audiences = &settings.audiences;
    let uris: Vec<&str> = audiences
        .iter()
        .filter(|a| AudienceKind::of(a) == AudienceKind::Uri)
        .map(String::as_str)
        .collect();
    let client_ids: Vec<&str> = audiences
        .iter()
        .filter(|a| AudienceKind::of(a) == AudienceKind::ClientId)
        .map(String::as_str)
        .collect();
    let scope_example = uris
        .first()
        .or(client_ids.first())
        .map_or_else(|| "<application id URI>".to_owned(), |a| (*a).to_owned())
        + DEFAULT_SCOPE_SUFFIX;

    let (mismatches, others) = auth.audience_mismatches();
    if !mismatches.is_empty() {
        let seen: Vec<String> = mismatches.iter().map(describe).collect();
        let more = if others > 0 {
            format!(" (and {others} more with other audiences)")
        } else {
            String::new()
        };
        return Check::fail(
            NAME,
            format!(
                "since start, tokens of this tenant were refused only for their audience (wrong_audience): {}{more}; AUTH_AUDIENCE accepts {}",
                seen.join("; "),
                quoted(audiences)
            ),
            mismatches
                .iter()
                .map(|m| fix_for(m, &scope_example))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }

    let detail = format!(
        "accepts v1.0 tokens whose aud is one of {} and v2.0 tokens whose aud is one of {}; no token was refused for its audience since start",
        if audiences.is_empty() {
            "nothing".to_owned()
        } else {
            quoted(audiences)
        },
        if client_ids.is_empty() {
            "nothing".to_owned()
        } else {
            quoted(&client_ids)
        },
    );
    let mut advice = Vec::new();
    for notice in &settings.audience_notices {
        advice.push(notice.to_string());
    }
    if client_ids.is_empty() {
        advice.push(
            "no client id is listed, so every v2.0 token is refused: v2.0 tokens always carry the API's client id in aud. \
             If uc-access's app registration says accessTokenAcceptedVersion 2 in its manifest, add its Application (client) ID \
             (Entra admin center → App registrations → uc-access → Overview) to AUTH_AUDIENCE"
                .to_owned(),
        );
    }
    if uris.is_empty() {
        advice.push(format!(
            "no application id URI is listed: a v1.0 token (the default, accessTokenAcceptedVersion null or 1) carries the URI when the caller asks for `<URI>{DEFAULT_SCOPE_SUFFIX}`. \
             Add the application id URI, or make the caller's scope (Purview's Audience) the client id followed by {DEFAULT_SCOPE_SUFFIX}"
        ));
    }
    if advice.is_empty() {
        Check::pass(NAME, detail)
    } else {
        Check::pass(NAME, detail).advise(advice.join(" "))
    }
}

fn describe(m: &AudienceMismatch) -> String {
    format!(
        "{} × {} token of app {} with aud {:?}",
        m.count, m.version, m.app_id, m.audience
    )
}

fn fix_for(m: &AudienceMismatch, scope_example: &str) -> String {
    match (m.version, AudienceKind::of(&m.audience)) {
        (TokenVersion::V2, AudienceKind::ClientId) => format!(
            "v2.0 tokens always carry the API's client id: if {:?} is the Application (client) ID of uc-access's app registration, add it to AUTH_AUDIENCE; \
             if it is another API's, app {} asked for the wrong scope (its scope, Purview's Audience, must be {scope_example}).",
            m.audience, m.app_id
        ),
        (TokenVersion::V1, _) => format!(
            "v1.0 tokens carry the resource the caller asked for: if {:?} is uc-access's application id URI or client id, add it to AUTH_AUDIENCE; \
             if not, app {} asked for another API (its scope, Purview's Audience, must be {scope_example}).",
            m.audience, m.app_id
        ),
        (TokenVersion::V2, AudienceKind::Uri) => format!(
            "a v2.0 token with aud {:?} is not for an Entra-registered API of this tenant as uc-access expects (v2.0 tokens carry a client id); app {} asked for another resource: its scope must be {scope_example}.",
            m.audience, m.app_id
        ),
    }
}

fn quoted<S: AsRef<str>>(values: &[S]) -> String {
    values
        .iter()
        .map(|v| format!("`{}`", v.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthSettings;
    use crate::env::Env;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

    fn check_for(audience: &str) -> Check {
        let env = Env::from_pairs([("AUTH_TENANT_ID", TENANT), ("AUTH_AUDIENCE", audience)]);
        let settings = AuthSettings::from_env(&env, &[]).unwrap();
        audience_check(&Authenticator::new(settings).unwrap())
    }

    #[test]
    fn both_forms_listed_pass_without_advice() {
        let c = check_for(&format!("api://uc-access,{CLIENT_ID}"));
        assert!(c.ok, "{c:?}");
        assert_eq!(c.fix, None, "{c:?}");
        assert!(c.detail.contains(CLIENT_ID) && c.detail.contains("api://uc-access"));
    }

    #[test]
    fn only_the_uri_listed_advises_adding_the_client_id_for_v2_tokens() {
        let c = check_for("api://uc-access");
        assert!(c.ok, "a v1.0-only deployment works: {c:?}");
        let fix = c.fix.unwrap();
        assert!(fix.contains("v2.0") && fix.contains("client id"), "{fix}");
        assert!(fix.contains("accessTokenAcceptedVersion"), "{fix}");
    }

    #[test]
    fn only_the_client_id_listed_advises_the_uri_or_a_client_id_scope() {
        let c = check_for(CLIENT_ID);
        assert!(c.ok);
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("application id URI") && fix.contains("/.default"),
            "{fix}"
        );
    }

    #[test]
    fn a_scope_in_auth_audience_is_repeated_with_the_value_to_write() {
        let c = check_for(&format!("api://uc-access/.default,{CLIENT_ID}"));
        assert!(c.ok);
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("api://uc-access/.default") && fix.contains("write \"api://uc-access\""),
            "{fix}"
        );
    }
}
