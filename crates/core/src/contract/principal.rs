//! Naming a principal in a request body: exactly one of `objectId`, `userName`, `applicationId`,
//! `groupName`, `groupExternalId`, plus an optional `fallbackUserName` with `objectId`.
//! Used by `resolve-principal` (the whole body) and `grant-access` (its `principal` object).

use serde_json::{Map, Value};

use super::fields::{BodyError, FieldError, Fields};
use crate::domain::{ApplicationId, EntraObjectId, PrincipalQuery};

pub const FIELDS: [&str; 6] = [
    "objectId",
    "userName",
    "applicationId",
    "groupName",
    "groupExternalId",
    "fallbackUserName",
];

/// Parses a `resolve-principal` body.
pub fn parse_body(body: &[u8]) -> Result<PrincipalQuery, BodyError> {
    let fields = Fields::parse(body, &FIELDS)?;
    Ok(from_fields(&fields, "")?)
}

/// Parses a principal object nested under `prefix` (e.g. `principal.`) for error names.
pub fn parse_object(map: &Map<String, Value>, prefix: &str) -> Result<PrincipalQuery, FieldError> {
    let fields = Fields::from_map(map.clone(), &FIELDS).map_err(|e| match e {
        BodyError::Field(f) => FieldError::new(&format!("{prefix}{}", f.field), f.problem),
        BodyError::NotJson(p) => FieldError::new(prefix.trim_end_matches('.'), p),
    })?;
    from_fields(&fields, prefix)
}

fn from_fields(f: &Fields, prefix: &str) -> Result<PrincipalQuery, FieldError> {
    let name = |field: &str| format!("{prefix}{field}");
    let err = |field: &str, problem: String| FieldError::new(&name(field), problem);
    let given: Vec<&str> = FIELDS[..5]
        .iter()
        .copied()
        .filter(|k| matches!(f.opt_str(k), Ok(Some(_)) | Err(_)))
        .collect();
    if given.len() != 1 {
        return Err(FieldError::new(
            &name("objectId|userName|applicationId|groupName|groupExternalId"),
            "give exactly one of these fields",
        ));
    }
    let str_of = |k: &str| f.str(k).map_err(|e| err(k, e.problem));
    let fallback = f
        .opt_str("fallbackUserName")
        .map_err(|e| err("fallbackUserName", e.problem))?;
    if fallback.is_some() && given[0] != "objectId" {
        return Err(err(
            "fallbackUserName",
            "only applies together with objectId".into(),
        ));
    }
    match given[0] {
        "objectId" => {
            let id = EntraObjectId::parse(str_of("objectId")?)
                .map_err(|e| err("objectId", e.to_string()))?;
            let fallback_user_name = fallback
                .map(|n| match PrincipalQuery::user_name(n) {
                    Ok(PrincipalQuery::UserName { user_name }) => Ok(user_name),
                    Ok(_) => Err(err("fallbackUserName", "is not a user name".into())),
                    Err(e) => Err(err("fallbackUserName", e.to_string())),
                })
                .transpose()?;
            Ok(PrincipalQuery::ObjectId {
                id,
                fallback_user_name,
            })
        }
        "userName" => PrincipalQuery::user_name(str_of("userName")?)
            .map_err(|e| err("userName", e.to_string())),
        "applicationId" => ApplicationId::parse(str_of("applicationId")?)
            .map(|id| PrincipalQuery::ApplicationId { id })
            .map_err(|e| err("applicationId", e.to_string())),
        "groupName" => PrincipalQuery::group_name(str_of("groupName")?)
            .map_err(|e| err("groupName", e.to_string())),
        _ => EntraObjectId::parse(str_of("groupExternalId")?)
            .map(|id| PrincipalQuery::GroupExternalId { id })
            .map_err(|e| err("groupExternalId", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        match parse_body(body.as_bytes()).unwrap_err() {
            BodyError::Field(f) => f.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exactly_one_way_of_naming_the_principal_is_accepted() {
        assert_eq!(
            parse_body(br#"{"userName":"Alice@Contoso.com"}"#).unwrap(),
            PrincipalQuery::UserName {
                user_name: "alice@contoso.com".into()
            }
        );
        assert!(field_of(r#"{"userName":"a@b.com","groupName":"x"}"#).contains('|'));
        assert!(field_of("{}").contains('|'));
    }

    #[test]
    fn each_field_is_checked_and_named_in_the_error() {
        assert_eq!(field_of(r#"{"objectId":"not-a-guid"}"#), "objectId");
        assert_eq!(field_of(r#"{"applicationId":"x"}"#), "applicationId");
        assert_eq!(field_of(r#"{"userName":"alice"}"#), "userName");
        assert_eq!(
            field_of(r#"{"groupName":"x","fallbackUserName":"a@b.com"}"#),
            "fallbackUserName"
        );
        assert_eq!(field_of(r#"{"userNmae":"a@b.com"}"#), "userNmae");
        assert_eq!(field_of(r#"{"objectId":7}"#), "objectId");
    }

    #[test]
    fn a_nested_principal_names_its_fields_with_the_prefix() {
        let map = serde_json::from_str::<Map<String, Value>>(r#"{"objectId":"x"}"#).unwrap();
        assert_eq!(
            parse_object(&map, "principal.").unwrap_err().field,
            "principal.objectId"
        );
    }
}
