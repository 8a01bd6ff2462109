//! Reading a JSON object field by field, so every error names the field it is about, and unknown
//! fields (typos such as `privilges`) are refused instead of ignored.

use serde_json::{Map, Value};

use crate::domain::{
    GrantDuration, Privilege, PrivilegeSet, ProvisioningMode, RequestKey, SecurableType,
};

/// A field that is missing, of the wrong type, or holds an invalid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: &str, problem: impl std::fmt::Display) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.to_string(),
        }
    }
}

/// Why a body could not be parsed at all, or which field is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// The body as a JSON object, with the set of fields it may contain.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Parses `body` as a JSON object whose keys are all in `known`.
    pub fn parse(body: &[u8], known: &[&str]) -> Result<Self, BodyError> {
        let StrictValue(value) =
            serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(BodyError::NotJson(
                "expected an object such as {\"requestorId\": …}".into(),
            ));
        };
        Self::from_map(map, known)
    }

    pub fn from_map(map: Map<String, Value>, known: &[&str]) -> Result<Self, BodyError> {
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(FieldError::new(
                unknown,
                format!(
                    "is not a field of this request (expected one of: {})",
                    known.join(", ")
                ),
            )
            .into());
        }
        Ok(Self { map })
    }

    /// A string field; blank strings count as absent (Purview pastes empty dynamic content as "").
    pub fn opt_str(&self, field: &str) -> Result<Option<&str>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(other) => Err(FieldError::new(
                field,
                format!("must be a string, got {}", kind(other)),
            )),
        }
    }

    pub fn str(&self, field: &str) -> Result<&str, FieldError> {
        self.opt_str(field)?
            .ok_or_else(|| FieldError::new(field, "is required"))
    }

    /// A boolean, or the strings "true"/"false" (values pasted as text).
    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(other) => Err(FieldError::new(
                field,
                format!("must be true or false, got {other}"),
            )),
        }
    }

    /// Whether the body names `field` at all (with any value, `null` included).
    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// A list of strings, in any of the shapes a workflow can send one: a JSON array of strings; a
    /// string holding the JSON text of such an array (what an `"@{…}"` expression makes of an array: the
    /// interpolation always yields a string); or one string separated by commas or semicolons. Items
    /// are trimmed; blank items of a separated string are dropped; an empty list counts as absent.
    pub fn opt_list(&self, field: &str) -> Result<Option<Vec<String>>, FieldError> {
        let items: Vec<String> = match self.map.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) if s.trim_start().starts_with('[') => {
                array_text_items(field, s)?
            }
            Some(Value::String(s)) => s
                .split([',', ';'])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Value::Array(values)) => array_items(field, values)?,
            Some(other) => {
                return Err(FieldError::new(
                    field,
                    format!("must be a list of strings, got {}", kind(other)),
                ));
            }
        };
        Ok((!items.is_empty()).then_some(items))
    }

    pub fn opt_object(&self, field: &str) -> Result<Option<&Map<String, Value>>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(other) => Err(FieldError::new(
                field,
                format!("must be an object, got {}", kind(other)),
            )),
        }
    }

    /// Requested privileges, each valid for the securable type.
    pub fn opt_privileges(
        &self,
        field: &str,
        securable_type: SecurableType,
    ) -> Result<Option<PrivilegeSet>, FieldError> {
        let Some(items) = self.opt_list(field)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|p| Privilege::parse_for(p, securable_type).map_err(|e| FieldError::new(field, e)))
            .collect::<Result<PrivilegeSet, _>>()
            .map(Some)
    }

    pub fn opt_duration(&self, field: &str) -> Result<Option<GrantDuration>, FieldError> {
        self.opt_str(field)?
            .map(|raw| GrantDuration::parse(raw).map_err(|e| FieldError::new(field, e)))
            .transpose()
    }

    /// A provisioning mode (`direct`, `delta-sharing`); absent or empty lets policy choose.
    pub fn opt_mode(&self, field: &str) -> Result<Option<ProvisioningMode>, FieldError> {
        self.opt_str(field)?
            .map(|raw| ProvisioningMode::parse(raw).map_err(|e| FieldError::new(field, e)))
            .transpose()
    }

    pub fn opt_key(&self, field: &str) -> Result<Option<RequestKey>, FieldError> {
        self.opt_str(field)?
            .map(|raw| RequestKey::parse(raw).map_err(|e| FieldError::new(field, e)))
            .transpose()
    }
}

/// A JSON value in which no object names a field twice, at any depth. `serde_json` keeps the last of
/// duplicate keys silently; a body where a field appears twice is ambiguous (another parser on the way may
/// read the first), and a duplicate is what a value pasted unescaped into a template would produce, so it
/// is refused instead.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(value) = access.next_value()?;
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the field {key:?} appears more than once"
                )));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// The items of a JSON array of strings; a wrong item is named by its index (`assignees[1]`).
fn array_items(field: &str, values: &[Value]) -> Result<Vec<String>, FieldError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.trim().to_owned()),
            other => Err(FieldError::new(
                &format!("{field}[{i}]"),
                format!("must be a string, got {}", kind(other)),
            )),
        })
        .collect()
}

/// The items of a string that holds the JSON text of an array. The text is parsed as strictly as a
/// body (no field twice in an object), and must be an array of strings and nothing else: a string that
/// starts with `[` and is not such an array is refused, never split on commas, so a list cannot be read
/// two ways.
fn array_text_items(field: &str, text: &str) -> Result<Vec<String>, FieldError> {
    let not_an_array = |detail: &dyn std::fmt::Display| {
        FieldError::new(
            field,
            format!(
                "starts with [ but is not the JSON text of an array of strings ({detail}); send \
                 the array itself, its JSON text, or the items separated by commas"
            ),
        )
    };
    let StrictValue(value) = serde_json::from_str(text).map_err(|e| not_an_array(&e))?;
    match value {
        Value::Array(values) => array_items(field, &values),
        other => Err(not_an_array(&format_args!("got {}", kind(&other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str) -> Fields {
        Fields::parse(body.as_bytes(), &["a", "b", "c"]).unwrap()
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = Fields::parse(br#"{"a":"x","privilges":"y"}"#, &["a"])
            .err()
            .unwrap();
        assert!(
            matches!(err, BodyError::Field(FieldError { ref field, .. }) if field == "privilges")
        );
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused() {
        assert!(matches!(
            Fields::parse(b"[1]", &[]),
            Err(BodyError::NotJson(_))
        ));
        assert!(matches!(
            Fields::parse(b"{\"a\": \"x\n\"}", &["a"]),
            Err(BodyError::NotJson(_))
        ));
        assert!(matches!(
            Fields::parse(b"\xff", &[]),
            Err(BodyError::NotJson(_))
        ));
    }

    #[test]
    fn a_field_given_twice_at_any_depth_is_refused() {
        for body in [
            &br#"{"a":"SELECT","a":"MODIFY"}"#[..],
            br#"{"a":"x","b":{"c":1,"c":2}}"#,
            br#"{"a":[{"c":1,"c":1}]}"#,
        ] {
            match Fields::parse(body, &["a", "b"]) {
                Err(BodyError::NotJson(m)) => assert!(m.contains("more than once"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        let f = fields(r#"{"a":{"x":[1,2.5,-3,null,true,"s"]},"b":"y"}"#);
        assert_eq!(f.opt_str("b").unwrap(), Some("y"));
        assert_eq!(
            f.opt_object("a").unwrap().unwrap()["x"],
            serde_json::json!([1, 2.5, -3, null, true, "s"])
        );
    }

    #[test]
    fn blank_strings_count_as_absent_and_wrong_types_are_named() {
        let f = fields(r#"{"a":"  ","b":3}"#);
        assert_eq!(f.opt_str("a").unwrap(), None);
        assert_eq!(f.str("a").unwrap_err().problem, "is required");
        assert_eq!(f.opt_str("b").unwrap_err().field, "b");
    }

    #[test]
    fn lists_come_as_arrays_or_separated_strings() {
        assert_eq!(
            fields(r#"{"a":"x, y;z"}"#).opt_list("a").unwrap().unwrap(),
            vec!["x", "y", "z"]
        );
        assert_eq!(
            fields(r#"{"a":["x"]}"#).opt_list("a").unwrap().unwrap(),
            vec!["x"]
        );
        assert_eq!(
            fields(r#"{"a":[1]}"#).opt_list("a").unwrap_err().field,
            "a[0]"
        );
        assert_eq!(fields(r#"{"a":""}"#).opt_list("a").unwrap(), None);
    }

    #[test]
    fn a_string_holding_the_json_text_of_an_array_is_that_array() {
        // What an "@{…}" expression makes of an array: its JSON text, inside a string.
        let f = fields(r#"{"a":"[\"x\", \" y \"]","b":" [ ] ","c":"[\"x,y\"]"}"#);
        assert_eq!(f.opt_list("a").unwrap().unwrap(), vec!["x", "y"]);
        assert_eq!(f.opt_list("b").unwrap(), None, "an empty array is absent");
        assert_eq!(
            f.opt_list("c").unwrap().unwrap(),
            vec!["x,y"],
            "an item of an array is never split again"
        );
    }

    #[test]
    fn a_string_that_starts_like_an_array_and_is_not_one_is_refused_not_split() {
        for body in [
            r#"{"a":"[\"x\",\"y\""}"#,
            r#"{"a":"[x, y]"}"#,
            r#"{"a":"[\"x\"], y"}"#,
            r#"{"a":"[{\"c\":1,\"c\":2}]"}"#,
        ] {
            let err = fields(body).opt_list("a").unwrap_err();
            assert_eq!(err.field, "a", "{body}");
            assert!(
                err.problem.starts_with("starts with [ but"),
                "{body}: {err}"
            );
        }
        let err = fields(r#"{"a":"[\"x\", 2]"}"#).opt_list("a").unwrap_err();
        assert_eq!(err.field, "a[1]");
    }

    #[test]
    fn has_tells_a_named_field_from_an_absent_one() {
        let f = fields(r#"{"a":null,"b":""}"#);
        assert!(f.has("a") && f.has("b") && !f.has("c"));
    }

    #[test]
    fn booleans_may_be_pasted_as_text() {
        assert_eq!(fields(r#"{"a":"TRUE"}"#).opt_bool("a").unwrap(), Some(true));
        assert_eq!(fields(r#"{"a":false}"#).opt_bool("a").unwrap(), Some(false));
        assert!(fields(r#"{"a":"yes"}"#).opt_bool("a").is_err());
    }
}
