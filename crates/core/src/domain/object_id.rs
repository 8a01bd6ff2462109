//! Entra ID object ids (users, groups, service principals) and application (client) ids: GUIDs.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a GUID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a GUID like 00000000-0000-0000-0000-000000000000")]
pub struct GuidError;

fn parse_guid(raw: &str) -> Result<Uuid, GuidError> {
    // Only the canonical hyphenated form: Purview and Entra send it, and accepting braces, URNs or
    // bare hex would let two spellings of one id reach the ledger as different keys.
    let raw = raw.trim();
    if raw.len() != 36 {
        return Err(GuidError);
    }
    Uuid::try_parse(raw).map_err(|_| GuidError)
}

macro_rules! guid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, GuidError> {
                parse_guid(raw).map(Self)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.hyphenated())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

guid_newtype!(
    /// The object id of an Entra ID user, group or service principal (Purview's `Workflow.Requestor`).
    EntraObjectId
);
guid_newtype!(
    /// The application (client) id of an Entra ID app registration or managed identity.
    ApplicationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_canonical_lower_case_guids() {
        let id = EntraObjectId::parse("A1B2C3D4-0000-4000-8000-00000000000F").unwrap();
        assert_eq!(id.to_string(), "a1b2c3d4-0000-4000-8000-00000000000f");
    }

    #[test]
    fn other_spellings_of_a_guid_are_refused() {
        for raw in [
            "{a1b2c3d4-0000-4000-8000-00000000000f}",
            "a1b2c3d40000400080000000000000 0f",
            "a1b2c3d4000040008000000000000000f",
            "urn:uuid:a1b2c3d4-0000-4000-8000-00000000000f",
            "alice@contoso.com",
            "",
        ] {
            assert_eq!(EntraObjectId::parse(raw), Err(GuidError), "{raw:?}");
        }
    }
}
