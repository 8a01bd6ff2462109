//! How an approved request becomes access: a direct Unity Catalog grant to an account principal, or an
//! open Delta Sharing recipient (for people with no Databricks workspace, e.g. Power BI users).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvisioningMode {
    /// Privileges on the securable (and `USE_*` on its parents) to the account principal.
    Direct,
    /// A TOKEN recipient, a share holding the table, `SELECT` on the share for the recipient.
    DeltaSharing,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a provisioning mode (expected \"direct\" or \"delta-sharing\")")]
pub struct UnknownMode;

impl ProvisioningMode {
    pub const ALL: [ProvisioningMode; 2] = [Self::Direct, Self::DeltaSharing];

    /// The spelling used in bodies, answers and the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::DeltaSharing => "delta-sharing",
        }
    }

    /// `direct` or `delta-sharing`, in any case, with `_` accepted for `-`.
    pub fn parse(raw: &str) -> Result<Self, UnknownMode> {
        match raw.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "direct" => Ok(Self::Direct),
            "delta-sharing" => Ok(Self::DeltaSharing),
            _ => Err(UnknownMode),
        }
    }
}

impl fmt::Display for ProvisioningMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_any_case_and_round_trip() {
        for mode in ProvisioningMode::ALL {
            assert_eq!(ProvisioningMode::parse(mode.as_str()), Ok(mode));
        }
        assert_eq!(
            ProvisioningMode::parse(" Delta_Sharing "),
            Ok(ProvisioningMode::DeltaSharing)
        );
        assert_eq!(ProvisioningMode::parse("share"), Err(UnknownMode));
        assert_eq!(ProvisioningMode::parse(""), Err(UnknownMode));
    }
}
