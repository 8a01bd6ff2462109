//! Delta Sharing planning, pure: from what exists (recipient, share, share permissions) to the steps
//! that give a recipient `SELECT` on a share holding the table, and, when grants end, to the steps that
//! take it away again — only on shares and recipients uc-access created, recognised by the marks it
//! leaves on them (a share's comment names the table; a recipient's properties name the object id).

use std::collections::BTreeMap;

/// The property on a recipient that marks it as uc-access's.
pub const MANAGED_PROPERTY: &str = "uc_access_managed";
/// The property naming the Entra object id the recipient stands for.
pub const OBJECT_ID_PROPERTY: &str = "uc_access_object_id";
/// Properties recording who asked, who approved and why (from the request that created the recipient).
pub const REQUESTED_BY_PROPERTY: &str = "uc_access_requested_by";
pub const APPROVED_BY_PROPERTY: &str = "uc_access_approved_by";
pub const REASON_PROPERTY: &str = "uc_access_reason";
pub const FIRST_GRANT_PROPERTY: &str = "uc_access_first_grant";

/// The comment uc-access puts on a share it creates for `table`.
pub fn share_comment(table: &str) -> String {
    format!(
        "Managed by uc-access for table {table}. uc-access adds and removes this table and its recipients' SELECT; do not reuse this share."
    )
}

/// Whether a share's comment is uc-access's mark for `table`.
pub fn share_is_ours(comment: Option<&str>, table: &str) -> bool {
    comment.is_some_and(|c| c.starts_with(&format!("Managed by uc-access for table {table}.")))
}

/// Whether a recipient's authentication type and properties are uc-access's mark for `object_id`.
pub fn recipient_is_ours(
    authentication_type: Option<&str>,
    properties: &BTreeMap<String, String>,
    object_id: &str,
) -> bool {
    authentication_type.is_none_or(|t| t.eq_ignore_ascii_case("TOKEN"))
        && properties.get(MANAGED_PROPERTY).map(String::as_str) == Some("true")
        && properties
            .get(OBJECT_ID_PROPERTY)
            .is_some_and(|id| id.eq_ignore_ascii_case(object_id))
}

/// What exists, read before a sharing grant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareFacts {
    /// `None`: no recipient by that name.
    pub recipient: Option<RecipientFacts>,
    /// `None`: no share by that name.
    pub share: Option<SharedFacts>,
    /// The recipient already holds `SELECT` on the share.
    pub recipient_has_select: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientFacts {
    pub ours: bool,
    /// Token expiry, epoch milliseconds.
    pub expires_ms: Option<i64>,
    /// The person already downloaded the credential (it reads every share the recipient gets).
    pub activated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFacts {
    pub ours: bool,
    pub has_table: bool,
}

/// One change, in the order they must happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShareStep {
    /// A TOKEN recipient whose token expires with the grant.
    CreateRecipient,
    /// The recipient exists but its credential was never downloaded: a new token, so that the link this
    /// approval hands out is its own (the unused link of an earlier approval stops working).
    RotateToken,
    /// The recipient exists but its token ends before this grant: move the expiry later.
    ExtendToken,
    CreateShare,
    AddTable,
    GrantSelect,
}

/// A name uc-access would use is taken by something it did not create.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameTaken {
    #[error(
        "a Delta Sharing recipient named {0} already exists and was not created by uc-access for this person; it was left as it was"
    )]
    Recipient(String),
    #[error(
        "a share named {0} already exists and was not created by uc-access for this table; it was left as it was"
    )]
    Share(String),
}

impl NameTaken {
    /// The stable error code for answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Recipient(_) => "recipient_name_taken",
            Self::Share(_) => "share_name_taken",
        }
    }
}

/// The steps that give the recipient `SELECT` on the share holding the table until `expires_ms`.
/// A name taken by something uc-access did not create stops the plan before any step. `hands_out_link`:
/// this approval gives the activation link to the person (then an existing recipient whose credential
/// was never downloaded gets a new token, so that no link issued for an earlier approval is handed out).
pub fn plan_share(
    facts: &ShareFacts,
    recipient: &str,
    share: &str,
    expires_ms: i64,
    hands_out_link: bool,
) -> Result<Vec<ShareStep>, NameTaken> {
    let mut steps = Vec::new();
    match &facts.recipient {
        None => steps.push(ShareStep::CreateRecipient),
        Some(r) if !r.ours => return Err(NameTaken::Recipient(recipient.to_owned())),
        Some(r) => {
            if hands_out_link && !r.activated {
                steps.push(ShareStep::RotateToken);
            }
            if r.expires_ms.is_some_and(|t| t < expires_ms) {
                steps.push(ShareStep::ExtendToken);
            }
        }
    }
    match &facts.share {
        None => steps.extend([ShareStep::CreateShare, ShareStep::AddTable]),
        Some(s) if !s.ours => return Err(NameTaken::Share(share.to_owned())),
        Some(s) if !s.has_table => steps.push(ShareStep::AddTable),
        Some(_) => {}
    }
    if !facts.recipient_has_select || facts.recipient.is_none() {
        steps.push(ShareStep::GrantSelect);
    }
    Ok(steps)
}

/// What exists, read when sharing grants end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnshareFacts {
    pub recipient_ours: bool,
    pub share_ours: bool,
    pub share_has_table: bool,
}

/// What other live (pending or active) grants still need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StillNeeded {
    /// Another live grant gives the same recipient this share.
    pub by_recipient: bool,
    /// Another live grant (any recipient) uses this share.
    pub by_anyone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnshareStep {
    RemoveSelect,
    RemoveTable,
}

/// The steps that end one sharing grant: `SELECT` goes when no other live grant gives it to the same
/// recipient; the table leaves the share when no live grant uses the share. Nothing is touched on a share
/// or recipient uc-access did not create (a `SELECT` for a recipient it did not create was never its own).
pub fn plan_unshare(facts: UnshareFacts, needed: StillNeeded) -> Vec<UnshareStep> {
    let mut steps = Vec::new();
    if facts.share_ours && facts.recipient_ours && !needed.by_recipient {
        steps.push(UnshareStep::RemoveSelect);
    }
    if facts.share_ours && facts.share_has_table && !needed.by_anyone {
        steps.push(UnshareStep::RemoveTable);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use ShareStep::*;

    const OID: &str = "5b1f2e3d-4c5b-4a69-8e7f-0a1b2c3d4e5f";

    fn ours_recipient(expires_ms: i64) -> Option<RecipientFacts> {
        Some(RecipientFacts {
            ours: true,
            expires_ms: Some(expires_ms),
            activated: true,
        })
    }
    fn ours_share(has_table: bool) -> Option<SharedFacts> {
        Some(SharedFacts {
            ours: true,
            has_table,
        })
    }

    #[test]
    fn nothing_there_plans_every_step_in_order() {
        let steps = plan_share(&ShareFacts::default(), "r", "s", 10, true).unwrap();
        assert_eq!(
            steps,
            vec![CreateRecipient, CreateShare, AddTable, GrantSelect]
        );
    }

    #[test]
    fn everything_in_place_plans_nothing() {
        let facts = ShareFacts {
            recipient: ours_recipient(20),
            share: ours_share(true),
            recipient_has_select: true,
        };
        assert_eq!(plan_share(&facts, "r", "s", 10, true).unwrap(), vec![]);
    }

    #[test]
    fn an_own_recipient_whose_token_ends_earlier_is_extended() {
        let facts = ShareFacts {
            recipient: ours_recipient(5),
            share: ours_share(false),
            recipient_has_select: false,
        };
        assert_eq!(
            plan_share(&facts, "r", "s", 10, true).unwrap(),
            vec![ExtendToken, AddTable, GrantSelect]
        );
    }

    #[test]
    fn a_foreign_recipient_or_share_stops_the_plan() {
        let foreign = ShareFacts {
            recipient: Some(RecipientFacts {
                ours: false,
                expires_ms: None,
                activated: false,
            }),
            ..ShareFacts::default()
        };
        assert_eq!(
            plan_share(&foreign, "r", "s", 10, true),
            Err(NameTaken::Recipient("r".into()))
        );
        let foreign_share = ShareFacts {
            recipient: ours_recipient(20),
            share: Some(SharedFacts {
                ours: false,
                has_table: true,
            }),
            recipient_has_select: true,
        };
        let err = plan_share(&foreign_share, "r", "s", 10, true).unwrap_err();
        assert_eq!(err.code(), "share_name_taken");
    }

    #[test]
    fn marks_are_recognised_only_for_their_own_table_and_person() {
        let comment = share_comment("sales.reporting.orders");
        assert!(share_is_ours(Some(&comment), "sales.reporting.orders"));
        assert!(!share_is_ours(Some(&comment), "sales.reporting.order"));
        assert!(!share_is_ours(Some("team share"), "sales.reporting.orders"));
        assert!(!share_is_ours(None, "sales.reporting.orders"));
        let props = BTreeMap::from([
            (MANAGED_PROPERTY.to_owned(), "true".to_owned()),
            (OBJECT_ID_PROPERTY.to_owned(), OID.to_owned()),
        ]);
        assert!(recipient_is_ours(Some("TOKEN"), &props, OID));
        assert!(!recipient_is_ours(Some("DATABRICKS"), &props, OID));
        assert!(!recipient_is_ours(
            Some("TOKEN"),
            &props,
            "6c2a3f4e-5d6c-4b7a-9f80-1b2c3d4e5f60"
        ));
        assert!(!recipient_is_ours(Some("TOKEN"), &BTreeMap::new(), OID));
    }

    #[test]
    fn ending_the_last_grant_removes_select_and_the_table() {
        let facts = UnshareFacts {
            recipient_ours: true,
            share_ours: true,
            share_has_table: true,
        };
        let none = StillNeeded {
            by_recipient: false,
            by_anyone: false,
        };
        assert_eq!(
            plan_unshare(facts, none),
            vec![UnshareStep::RemoveSelect, UnshareStep::RemoveTable]
        );
    }

    #[test]
    fn another_recipients_grant_keeps_the_table_and_a_sibling_keeps_select() {
        let facts = UnshareFacts {
            recipient_ours: true,
            share_ours: true,
            share_has_table: true,
        };
        let other_person = StillNeeded {
            by_recipient: false,
            by_anyone: true,
        };
        assert_eq!(
            plan_unshare(facts, other_person),
            vec![UnshareStep::RemoveSelect]
        );
        let sibling = StillNeeded {
            by_recipient: true,
            by_anyone: true,
        };
        assert_eq!(plan_unshare(facts, sibling), vec![]);
    }

    #[test]
    fn foreign_shares_and_recipients_are_never_touched() {
        let none = StillNeeded {
            by_recipient: false,
            by_anyone: false,
        };
        let foreign_share = UnshareFacts {
            recipient_ours: true,
            share_ours: false,
            share_has_table: true,
        };
        assert_eq!(plan_unshare(foreign_share, none), vec![]);
        let foreign_recipient = UnshareFacts {
            recipient_ours: false,
            share_ours: true,
            share_has_table: true,
        };
        assert_eq!(
            plan_unshare(foreign_recipient, none),
            vec![UnshareStep::RemoveTable]
        );
    }

    #[test]
    fn a_recipient_that_never_downloaded_its_credential_gets_a_new_token_only_for_an_approval_that_hands_out_the_link()
     {
        let facts = ShareFacts {
            recipient: Some(RecipientFacts {
                ours: true,
                expires_ms: Some(20),
                activated: false,
            }),
            share: ours_share(true),
            recipient_has_select: false,
        };
        assert_eq!(
            plan_share(&facts, "r", "s", 10, true).unwrap(),
            vec![RotateToken, GrantSelect]
        );
        assert_eq!(
            plan_share(&facts, "r", "s", 10, false).unwrap(),
            vec![GrantSelect]
        );
    }
}
