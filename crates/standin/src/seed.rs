//! Seed data: the account, workspace, identities, Entra directory, securables and grants a stand-in starts with.

use std::collections::BTreeMap;

use serde::Serialize;

use super::graph::{GraphGroup, GraphServicePrincipal, GraphTenant, GraphUser};
use super::privileges::SecurableKind;

/// Well-known values of [`Seed::demo`], for tests, the local run and docs/standin.md.
pub mod demo {
    pub const ACCOUNT_ID: &str = "7f3c1a52-9d4e-4b6a-8c21-5e0f9a7b3d10";
    pub const WORKSPACE_ID: u64 = 1_234_567_890_123_456;
    pub const METASTORE_ID: &str = "0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40";
    /// The product's own service principal: OAuth client id (= applicationId) and secret.
    pub const PRODUCT_CLIENT_ID: &str = "3e5a7c91-2b4d-4f60-9a8e-1c2d3e4f5a6b";
    pub const PRODUCT_CLIENT_SECRET: &str = "standin-secret-uc-access";
    /// A static token (like a PAT) for the product's service principal.
    pub const PRODUCT_TOKEN: &str = "dapi-standin-uc-access";
    /// A static token for Carol, owner of every catalog and metastore admin.
    pub const ADMIN_TOKEN: &str = "dapi-standin-carol";
    /// A static token for Alice, who holds no MANAGE anywhere.
    pub const ALICE_TOKEN: &str = "dapi-standin-alice";
    pub const ETL_CLIENT_ID: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
    pub const ETL_CLIENT_SECRET: &str = "standin-secret-etl";
    pub const ALICE: &str = "alice.analyst@contoso.com";
    pub const ALICE_ENTRA_ID: &str = "5b1f2e3d-4c5b-4a69-8e7f-0a1b2c3d4e5f";
    pub const BOB: &str = "bob.engineer@contoso.com";
    pub const BOB_ENTRA_ID: &str = "6c2a3f4e-5d6c-4b7a-9f80-1b2c3d4e5f60";
    pub const CAROL: &str = "carol.owner@contoso.com";
    pub const CAROL_ENTRA_ID: &str = "7d3b4a5f-6e7d-4c8b-8a91-2c3d4e5f6071";
    pub const DAVE_INACTIVE: &str = "dave.departed@contoso.com";
    pub const DAVE_ENTRA_ID: &str = "8e4c5b6a-7f8e-4d9c-9ba2-3d4e5f607182";
    /// In the Entra directory only: resolving her external id creates her in the account.
    pub const ERIN_ENTRA_ONLY: &str = "erin.newhire@contoso.com";
    pub const ERIN_ENTRA_ID: &str = "9f5d6c7b-8a9f-4ead-8cb3-4e5f60718293";
    pub const ANALYSTS_GROUP: &str = "data-analysts";
    pub const ANALYSTS_ENTRA_ID: &str = "a06e7d8c-9b0a-4fbe-9dc4-5f6071829304";
    pub const FINANCE_GROUP: &str = "Finance Readers";
    pub const FINANCE_ENTRA_ID: &str = "b17f8e9d-0c1b-40cf-8ed5-607182930415";
    /// In the Entra directory only.
    pub const MARKETING_GROUP_ENTRA_ONLY: &str = "marketing-team";
    pub const MARKETING_ENTRA_ID: &str = "c2809fae-1d2c-41d0-9fe6-718293041526";
    pub const WORKSPACE_LOCAL_GROUP: &str = "ws-local-analysts";
    pub const PRODUCT_SP_ENTRA_ID: &str = "d391a0bf-2e3d-42e1-80f7-829304152637";
    /// A service principal in the Entra directory only.
    pub const REPORTING_SP_ENTRA_ONLY_APP_ID: &str = "e4a2b1c0-3f4e-43f2-91a8-930415263748";
    pub const REPORTING_SP_ENTRA_ID: &str = "f5b3c2d1-4a5f-4403-a2b9-041526374859";

    // Identities Databricks holds no Entra object id for (no `externalId`), found through Microsoft
    // Graph; see docs/standin.md.
    /// Added to the account by e-mail: user principal name and mail are both this.
    pub const HEIDI_BY_EMAIL: &str = "heidi.byemail@contoso.com";
    pub const HEIDI_ENTRA_ID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c01";
    /// Created by Terraform under her mail address, which differs from her user principal name.
    pub const IVAN_MAIL: &str = "ivan.petrov@contoso.com";
    pub const IVAN_UPN: &str = "ivan@contoso.onmicrosoft.com";
    pub const IVAN_ENTRA_ID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c02";
    /// A B2B guest: Databricks knows her by the address she was invited with.
    pub const JUDY_GUEST: &str = "judy@fabrikam.com";
    pub const JUDY_GUEST_UPN: &str = "judy_fabrikam.com#EXT#@contoso.onmicrosoft.com";
    pub const JUDY_ENTRA_ID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c03";
    /// Active in Databricks, disabled in Entra ID (`accountEnabled: false`).
    pub const MALLORY_DISABLED: &str = "mallory.left@contoso.com";
    pub const MALLORY_ENTRA_ID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c04";
    /// The ETL service principal's object id in Entra (Databricks holds none for it).
    pub const ETL_SP_ENTRA_ID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c05";
    /// An Entra group the data owners' approvals are assigned to: Carol, and the deputies group.
    pub const DATA_OWNERS_GROUP: &str = "data-owners";
    pub const DATA_OWNERS_ENTRA_ID: &str = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d01";
    /// Nested in the data owners: Alice.
    pub const OWNER_DEPUTIES_GROUP: &str = "owner-deputies";
    pub const OWNER_DEPUTIES_ENTRA_ID: &str = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d02";
    /// The bearer token the stand-in's Graph accepts (the local run's `GRAPH_TOKEN`).
    pub const GRAPH_TOKEN: &str = super::super::graph::GRAPH_TOKEN;
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedUser {
    pub id: String,
    pub user_name: String,
    pub display_name: String,
    pub active: bool,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedGroup {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    /// Ids of member users and service principals.
    pub member_ids: Vec<String>,
    /// A workspace-local group: visible in workspace SCIM, never a valid grant principal.
    pub workspace_local: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedServicePrincipal {
    pub id: String,
    pub application_id: String,
    pub display_name: String,
    pub active: bool,
    pub external_id: Option<String>,
    /// An OAuth secret; `None` means the principal cannot use M2M.
    #[serde(skip)]
    pub client_secret: Option<String>,
}

/// An identity that exists in Entra ID but not (yet) in the Databricks account.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntraIdentity {
    User {
        external_id: String,
        user_name: String,
        display_name: String,
    },
    Group {
        external_id: String,
        display_name: String,
    },
    ServicePrincipal {
        external_id: String,
        application_id: String,
        display_name: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedSecurable {
    pub kind: SecurableKind,
    pub full_name: String,
    pub owner: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedGrant {
    /// `catalog`, `schema` or `table`.
    pub securable_type: String,
    pub full_name: String,
    pub principal: String,
    pub privileges: Vec<String>,
}

/// Everything a stand-in starts with. Build with [`Seed::demo`] and adjust with the `with_*`/`without_*` methods.
#[derive(Debug, Clone)]
pub struct Seed {
    pub account_id: String,
    pub workspace_id: u64,
    pub metastore_id: String,
    /// Users (by userName) or groups (by displayName) that administer the metastore.
    pub metastore_admins: Vec<String>,
    pub users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
    pub service_principals: Vec<SeedServicePrincipal>,
    pub entra_directory: Vec<EntraIdentity>,
    pub securables: Vec<SeedSecurable>,
    pub grants: Vec<SeedGrant>,
    /// Static bearer tokens (like PATs) → principal name (userName or applicationId).
    pub static_tokens: BTreeMap<String, String>,
    /// The page length the server uses when a client asks for `max_results=0`.
    pub page_size: usize,
    /// Paged permission reads start with an empty page that carries a token, as the real API may.
    pub empty_first_page: bool,
    /// Whether account SCIM filters on `externalId`. Databricks' own API models call the attribute
    /// "reserved for future use", so whether the account API accepts the filter is unconfirmed; `false`
    /// answers such a filter with `400 invalidFilter`, as an API that does not support it would.
    pub account_external_id_filter: bool,
    /// The Entra tenant the stand-in's Microsoft Graph serves.
    pub graph: GraphTenant,
}

fn user(id: &str, user_name: &str, display_name: &str, active: bool, ext: &str) -> SeedUser {
    SeedUser {
        id: id.into(),
        user_name: user_name.into(),
        display_name: display_name.into(),
        active,
        external_id: Some(ext.into()),
    }
}

/// A Databricks user with no Entra object id (added by e-mail, by Terraform or just in time).
fn user_without_external_id(id: &str, user_name: &str, display_name: &str) -> SeedUser {
    SeedUser {
        external_id: None,
        ..user(id, user_name, display_name, true, "")
    }
}

fn entra_user(id: &str, upn: &str, mail: Option<&str>, name: &str, enabled: bool) -> GraphUser {
    GraphUser {
        id: id.into(),
        user_principal_name: upn.into(),
        mail: mail.map(Into::into),
        display_name: name.into(),
        account_enabled: enabled,
        user_type: if upn.contains("#EXT#") {
            "Guest"
        } else {
            "Member"
        }
        .into(),
    }
}

fn entra_group(id: &str, name: &str, members: &[&str]) -> GraphGroup {
    GraphGroup {
        id: id.into(),
        display_name: name.into(),
        member_ids: members.iter().map(|m| (*m).into()).collect(),
    }
}

fn entra_sp(id: &str, app_id: &str, name: &str) -> GraphServicePrincipal {
    GraphServicePrincipal {
        id: id.into(),
        app_id: app_id.into(),
        display_name: name.into(),
        account_enabled: true,
    }
}

/// The demo tenant: everyone the Databricks account knows, the Entra-only identities, the users
/// Databricks holds no object id for, and the data owners' groups.
fn demo_tenant() -> GraphTenant {
    use demo::*;
    let member = |id, upn: &str, name| entra_user(id, upn, Some(upn), name, true);
    GraphTenant {
        users: vec![
            member(ALICE_ENTRA_ID, ALICE, "Alice Analyst"),
            member(BOB_ENTRA_ID, BOB, "Bob Engineer"),
            member(CAROL_ENTRA_ID, CAROL, "Carol Owner"),
            // Inactive in Databricks (as a just-in-time user is until first login), enabled in Entra.
            member(DAVE_ENTRA_ID, DAVE_INACTIVE, "Dave Departed"),
            member(ERIN_ENTRA_ID, ERIN_ENTRA_ONLY, "Erin Newhire"),
            member(HEIDI_ENTRA_ID, HEIDI_BY_EMAIL, "Heidi Byemail"),
            entra_user(
                IVAN_ENTRA_ID,
                IVAN_UPN,
                Some("Ivan.Petrov@contoso.com"),
                "Ivan Petrov",
                true,
            ),
            entra_user(
                JUDY_ENTRA_ID,
                JUDY_GUEST_UPN,
                Some(JUDY_GUEST),
                "Judy (Fabrikam)",
                true,
            ),
            entra_user(
                MALLORY_ENTRA_ID,
                MALLORY_DISABLED,
                Some(MALLORY_DISABLED),
                "Mallory Left",
                false,
            ),
        ],
        service_principals: vec![
            entra_sp(PRODUCT_SP_ENTRA_ID, PRODUCT_CLIENT_ID, "uc-access"),
            entra_sp(ETL_SP_ENTRA_ID, ETL_CLIENT_ID, "etl-pipeline"),
            entra_sp(
                REPORTING_SP_ENTRA_ID,
                REPORTING_SP_ENTRA_ONLY_APP_ID,
                "reporting-app",
            ),
        ],
        groups: vec![
            entra_group(ANALYSTS_ENTRA_ID, ANALYSTS_GROUP, &[ALICE_ENTRA_ID]),
            entra_group(FINANCE_ENTRA_ID, FINANCE_GROUP, &[BOB_ENTRA_ID]),
            entra_group(
                MARKETING_ENTRA_ID,
                MARKETING_GROUP_ENTRA_ONLY,
                &[ERIN_ENTRA_ID],
            ),
            entra_group(
                DATA_OWNERS_ENTRA_ID,
                DATA_OWNERS_GROUP,
                &[CAROL_ENTRA_ID, OWNER_DEPUTIES_ENTRA_ID],
            ),
            entra_group(
                OWNER_DEPUTIES_ENTRA_ID,
                OWNER_DEPUTIES_GROUP,
                &[ALICE_ENTRA_ID],
            ),
        ],
        denied: Vec::new(),
    }
}

fn group(id: &str, name: &str, ext: Option<&str>, members: &[&str], local: bool) -> SeedGroup {
    SeedGroup {
        id: id.into(),
        display_name: name.into(),
        external_id: ext.map(Into::into),
        member_ids: members.iter().map(|m| (*m).into()).collect(),
        workspace_local: local,
    }
}

fn securable(kind: SecurableKind, full_name: &str) -> SeedSecurable {
    SeedSecurable {
        kind,
        full_name: full_name.into(),
        owner: demo::CAROL.into(),
    }
}

impl Seed {
    /// The demo account: see docs/standin.md for the full picture.
    pub fn demo() -> Self {
        use SecurableKind::{Catalog, MaterializedView, Schema, Table, View};
        let users = vec![
            user(
                "1001",
                demo::ALICE,
                "Alice Analyst",
                true,
                demo::ALICE_ENTRA_ID,
            ),
            user("1002", demo::BOB, "Bob Engineer", true, demo::BOB_ENTRA_ID),
            user(
                "1003",
                demo::CAROL,
                "Carol Owner",
                true,
                demo::CAROL_ENTRA_ID,
            ),
            user(
                "1004",
                demo::DAVE_INACTIVE,
                "Dave Departed",
                false,
                demo::DAVE_ENTRA_ID,
            ),
            user_without_external_id("1005", demo::HEIDI_BY_EMAIL, "Heidi Byemail"),
            user_without_external_id("1006", demo::IVAN_MAIL, "Ivan Petrov"),
            user_without_external_id("1007", demo::JUDY_GUEST, "Judy (Fabrikam)"),
            user_without_external_id("1008", demo::MALLORY_DISABLED, "Mallory Left"),
        ];
        let service_principals = vec![
            SeedServicePrincipal {
                id: "2001".into(),
                application_id: demo::PRODUCT_CLIENT_ID.into(),
                display_name: "uc-access".into(),
                active: true,
                external_id: Some(demo::PRODUCT_SP_ENTRA_ID.into()),
                client_secret: Some(demo::PRODUCT_CLIENT_SECRET.into()),
            },
            SeedServicePrincipal {
                id: "2002".into(),
                application_id: demo::ETL_CLIENT_ID.into(),
                display_name: "etl-pipeline".into(),
                active: true,
                external_id: None,
                client_secret: Some(demo::ETL_CLIENT_SECRET.into()),
            },
        ];
        let groups = vec![
            group(
                "3001",
                demo::ANALYSTS_GROUP,
                Some(demo::ANALYSTS_ENTRA_ID),
                &["1001"],
                false,
            ),
            group(
                "3002",
                demo::FINANCE_GROUP,
                Some(demo::FINANCE_ENTRA_ID),
                &["1002"],
                false,
            ),
            group("3003", "uc-metastore-admins", None, &["1003"], false),
            group("4001", "users", None, &["1001", "1002", "1003"], true),
            group("4002", "admins", None, &["1003"], true),
            group("4003", demo::WORKSPACE_LOCAL_GROUP, None, &["1001"], true),
        ];
        let entra_directory = vec![
            EntraIdentity::User {
                external_id: demo::ERIN_ENTRA_ID.into(),
                user_name: demo::ERIN_ENTRA_ONLY.into(),
                display_name: "Erin Newhire".into(),
            },
            EntraIdentity::Group {
                external_id: demo::MARKETING_ENTRA_ID.into(),
                display_name: demo::MARKETING_GROUP_ENTRA_ONLY.into(),
            },
            EntraIdentity::ServicePrincipal {
                external_id: demo::REPORTING_SP_ENTRA_ID.into(),
                application_id: demo::REPORTING_SP_ENTRA_ONLY_APP_ID.into(),
                display_name: "reporting-app".into(),
            },
        ];
        let securables = vec![
            securable(Catalog, "main"),
            securable(Schema, "main.default"),
            securable(Table, "main.default.demo"),
            securable(Catalog, "sales"),
            securable(Schema, "sales.reporting"),
            securable(Table, "sales.reporting.orders"),
            securable(Table, "sales.reporting.customers"),
            securable(View, "sales.reporting.orders_summary"),
            securable(MaterializedView, "sales.reporting.daily_totals"),
            // Names as Unity Catalog allows them: anything but '.', spaces, '/' and control characters.
            securable(Schema, "sales.intl"),
            securable(Table, "sales.intl.kunden_ä"),
            securable(Table, "sales.intl.sales$2024"),
            securable(Table, "sales.intl.o'neil"),
            securable(Table, "sales.intl.q?a#b"),
            securable(Table, "sales.intl.100%_real"),
            securable(Schema, "sales.raw"),
            securable(Table, "sales.raw.events"),
            securable(Catalog, "hr"),
            securable(Schema, "hr.people"),
            securable(Table, "hr.people.employees"),
            securable(Table, "hr.people.salaries"),
        ];
        let mut seed = Self {
            account_id: demo::ACCOUNT_ID.into(),
            workspace_id: demo::WORKSPACE_ID,
            metastore_id: demo::METASTORE_ID.into(),
            metastore_admins: vec!["uc-metastore-admins".into()],
            users,
            groups,
            service_principals,
            entra_directory,
            securables,
            grants: Vec::new(),
            static_tokens: BTreeMap::from([
                (demo::PRODUCT_TOKEN.into(), demo::PRODUCT_CLIENT_ID.into()),
                (demo::ADMIN_TOKEN.into(), demo::CAROL.into()),
                (demo::ALICE_TOKEN.into(), demo::ALICE.into()),
            ]),
            page_size: 2,
            empty_first_page: true,
            account_external_id_filter: true,
            graph: demo_tenant(),
        };
        // The product governs `sales` and `hr`.
        seed = seed
            .with_grant("catalog", "sales", demo::PRODUCT_CLIENT_ID, &["MANAGE"])
            .with_grant("catalog", "hr", demo::PRODUCT_CLIENT_ID, &["MANAGE"])
            // Pre-existing access the product must never remove.
            .with_grant("catalog", "sales", demo::BOB, &["USE_CATALOG"])
            .with_grant("schema", "sales.reporting", demo::BOB, &["USE_SCHEMA"])
            .with_grant("table", "sales.reporting.orders", demo::BOB, &["SELECT"])
            .with_grant("catalog", "sales", demo::ANALYSTS_GROUP, &["USE_CATALOG"])
            .with_grant("catalog", "main", "account users", &["USE_CATALOG"]);
        seed
    }

    /// Adds privileges for a principal on a securable (merging with what the seed already grants).
    pub fn with_grant(
        mut self,
        securable_type: &str,
        full_name: &str,
        principal: &str,
        privileges: &[&str],
    ) -> Self {
        self.grants.push(SeedGrant {
            securable_type: securable_type.into(),
            full_name: full_name.into(),
            principal: principal.into(),
            privileges: privileges.iter().map(|p| (*p).into()).collect(),
        });
        self
    }

    /// Removes one privilege of a principal on a securable, e.g. to drop the product's MANAGE for a test.
    pub fn without_grant(
        mut self,
        securable_type: &str,
        full_name: &str,
        principal: &str,
        privilege: &str,
    ) -> Self {
        for grant in &mut self.grants {
            if grant.securable_type == securable_type
                && grant.full_name == full_name
                && grant.principal.eq_ignore_ascii_case(principal)
            {
                grant.privileges.retain(|p| p != privilege);
            }
        }
        self.grants.retain(|g| !g.privileges.is_empty());
        self
    }

    /// Sets the page length used for `max_results=0`.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Account SCIM refuses filters on `externalId` (`400 invalidFilter`), as the real API may.
    pub fn without_external_id_filter(mut self) -> Self {
        self.account_external_id_filter = false;
        self
    }

    /// Turns the leading empty page of paged permission reads on or off.
    pub fn with_empty_first_page(mut self, on: bool) -> Self {
        self.empty_first_page = on;
        self
    }
}
