//! Identity of a grant record: the caller's idempotency key and the grant id derived from it, so that
//! every store can find a record by either without keeping a second index.

use std::fmt;

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest idempotency key accepted: long enough for a Purview request id plus a prefix, short enough
/// to keep records and logs small.
pub const MAX_KEY_LEN: usize = 512;

/// Why an idempotency key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_KEY_LEN} characters")]
    TooLong,
    #[error("contains a control character")]
    ControlCharacter,
}

/// What makes two deliveries of one approval the same request (for example the Purview workflow run id
/// and the asset). Not a secret: it is stored in the record and may be logged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        // Not trimmed: the key is compared byte for byte, and a silently trimmed key could merge two
        // requests that differ only in spacing.
        if raw.is_empty() {
            return Err(KeyError::Empty);
        }
        if raw.chars().count() > MAX_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(KeyError::ControlCharacter);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The id of a grant record: a UUID (version 8) made from the SHA-256 of its idempotency key.
///
/// Deriving the id instead of drawing it at random means `get(id)` and `get_by_key(key)` read the same
/// single object, concurrent duplicates race on one name, and no id→key index can go out of step.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantId(Uuid);

impl GrantId {
    /// The id every record with this idempotency key has.
    pub fn for_key(key: &IdempotencyKey) -> Self {
        // Domain-separated so that the same string hashed elsewhere in the product gives another value.
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"uc-access/grant-id/v1\n");
        ctx.update(key.as_str().as_bytes());
        let hash = ctx.finish();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash.as_ref()[..16]);
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// Parses the canonical hyphenated form (what answers and `list-grants` show).
    pub fn parse(raw: &str) -> Result<Self, uuid::Error> {
        Uuid::try_parse(raw.trim()).map(Self)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantId({})", self.0.hyphenated())
    }
}

impl Serialize for GrantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GrantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Lower-case hex SHA-256 of `parts` joined by newlines: a fixed-length, tag-safe stand-in for values
/// (principal names, securable names) whose length and characters blob index tags cannot hold.
pub fn hash_hex(parts: &[&str]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            ctx.update(b"\n");
        }
        ctx.update(part.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// Lower-case hex SHA-256 of raw bytes (the local ledger's record versions).
pub fn hash_bytes_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_id_is_the_same_for_the_same_key_and_differs_for_another() {
        let a = IdempotencyKey::parse("purview:run-1").unwrap();
        let b = IdempotencyKey::parse("purview:run-2").unwrap();
        assert_eq!(GrantId::for_key(&a), GrantId::for_key(&a));
        assert_ne!(GrantId::for_key(&a), GrantId::for_key(&b));
        assert_eq!(GrantId::for_key(&a).as_uuid().get_version_num(), 8);
    }

    #[test]
    fn grant_ids_round_trip_through_their_text_form() {
        let id = GrantId::for_key(&IdempotencyKey::parse("k").unwrap());
        assert_eq!(GrantId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn empty_overlong_and_control_character_keys_are_refused() {
        assert_eq!(IdempotencyKey::parse(""), Err(KeyError::Empty));
        assert_eq!(
            IdempotencyKey::parse(&"x".repeat(MAX_KEY_LEN + 1)),
            Err(KeyError::TooLong)
        );
        assert_eq!(
            IdempotencyKey::parse("a\nb"),
            Err(KeyError::ControlCharacter)
        );
    }

    #[test]
    fn hashes_are_64_hex_characters_and_separate_their_parts() {
        let h = hash_hex(&["user", "alice@contoso.com"]);
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(hash_hex(&["ab", "c"]), hash_hex(&["a", "bc"]));
    }
}
