"""Cross-checks the Databricks stand-in with the official Python SDK (databricks-sdk 0.162.0).

Run by tests/standin_sdk.rs against a freshly started stand-in seeded with Seed::demo(). Reads the base URL
from STANDIN_URL and the demo identities from the environment, prints one JSON object of observations on
stdout; the Rust test asserts on it and on the requests the stand-in recorded.
"""

import json
import os
import sys
import time
import urllib.request

from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.catalog import PermissionsChange, Privilege
from databricks.sdk.service import sharing

URL = os.environ["STANDIN_URL"]
ENV = os.environ


def workspace_token_client():
    return WorkspaceClient(
        config=Config(host=URL, token=ENV["STANDIN_PRODUCT_TOKEN"], auth_type="pat", retry_timeout_seconds=20)
    )


def workspace_m2m_client():
    return WorkspaceClient(config=Config(
        host=URL,
        client_id=ENV["STANDIN_CLIENT_ID"],
        client_secret=ENV["STANDIN_CLIENT_SECRET"],
        auth_type="oauth-m2m",
        # The stand-in answers 404 to /.well-known/databricks-config, so the SDK cannot learn where the
        # OIDC discovery document lives; name it explicitly.
        discovery_url=f"{URL}/oidc/.well-known/oauth-authorization-server",
        retry_timeout_seconds=20,
    ))


def account_m2m_client():
    account_id = ENV["STANDIN_ACCOUNT_ID"]
    return AccountClient(config=Config(
        host=URL,
        account_id=account_id,
        client_id=ENV["STANDIN_CLIENT_ID"],
        client_secret=ENV["STANDIN_CLIENT_SECRET"],
        auth_type="oauth-m2m",
        discovery_url=f"{URL}/oidc/accounts/{account_id}/.well-known/oauth-authorization-server",
        retry_timeout_seconds=20,
    ))


def assignments(response):
    """{principal: sorted privileges} from a get/update response (privileges as plain strings)."""
    found = {}
    for a in response.privilege_assignments or []:
        found[a.principal] = sorted(p.value if hasattr(p, "value") else str(p) for p in a.privileges or [])
    return found


def error_of(call):
    try:
        call()
    except DatabricksError as e:
        return {"type": type(e).__name__, "error_code": e.error_code, "message": str(e)}
    return None


def admin(path, body):
    request = urllib.request.Request(
        f"{URL}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request) as response:
        return response.status


def main():
    out = {}
    alice = ENV["STANDIN_ALICE"]
    table = "sales.reporting.customers"

    w = workspace_token_client()
    out["token_auth_empty_get"] = {
        "assignments": assignments(w.grants.get("table", table)),
        # The typed response turns an absent key into []; the raw body shows the key is absent.
        "raw": w.api_client.do("GET", f"/api/2.1/unity-catalog/permissions/table/{table}"),
    }

    m = workspace_m2m_client()
    added = m.grants.update("table", table, changes=[PermissionsChange(principal=alice.upper(), add=[Privilege.SELECT])])
    out["m2m_update_add"] = assignments(added)
    again = m.grants.update("table", table, changes=[PermissionsChange(principal=alice, add=[Privilege.SELECT])])
    out["m2m_update_readd"] = assignments(again)
    out["get_after_update"] = assignments(m.grants.get("table", table))
    out["get_for_principal"] = assignments(m.grants.get("table", table, principal=alice))

    out["add_and_remove_same"] = error_of(
        lambda: m.grants.update(
            "table", table, changes=[PermissionsChange(principal=alice, add=[Privilege.MODIFY], remove=[Privilege.MODIFY])]
        )
    )
    out["missing_table"] = error_of(lambda: m.grants.get("table", "sales.reporting.nope"))
    out["workspace_local_group"] = error_of(
        lambda: m.grants.update("table", table, changes=[PermissionsChange(principal="users", add=[Privilege.SELECT])])
    )

    out.update(names_and_table_kinds(m, alice))

    effective = m.grants.get_effective("table", "sales.reporting.orders", principal=ENV["STANDIN_BOB"])
    out["effective_bob"] = [
        {
            "principal": a.principal,
            "privileges": sorted(
                [
                    p.privilege.value if p.privilege else None,
                    p.inherited_from_type.value if p.inherited_from_type else None,
                    p.inherited_from_name,
                ]
                for p in a.privileges or []
            ),
        }
        for a in effective.privilege_assignments or []
    ]

    a = account_m2m_client()
    users = list(a.users.list(filter=f'userName eq "{alice.upper()}"'))
    out["account_users_filtered"] = [
        {"userName": u.user_name, "active": u.active, "externalId": u.external_id} for u in users
    ]
    out["account_groups"] = sorted(g.display_name for g in a.groups.list())

    admin(
        "/__standin/faults",
        {
            "kind": "too_many_requests",
            "retry_after_secs": 1,
            "count": 2,
            "method": "GET",
            "path_prefix": "/api/2.1/unity-catalog/permissions",
        },
    )
    started = time.monotonic()
    after_429 = m.grants.get("table", table)
    out["retried_through_429"] = {
        "assignments": assignments(after_429),
        "elapsed_seconds": round(time.monotonic() - started, 2),
    }

    out.update(delta_sharing(m))
    json.dump(out, sys.stdout, indent=2, sort_keys=True)


def names_and_table_kinds(m, alice):
    """Names as Unity Catalog allows them, and what each kind of table takes, through the SDK's own paths.

    The SDK pastes the full name into the path unencoded; its HTTP library then encodes non-ASCII bytes
    (UTF-8) and leaves `$` and `'` as they are, which RFC 3986 allows in a path. (`?` and `#` would cut its
    URL short: uc-access encodes every byte outside the unreserved set, the SDK is not asked to try.)
    """
    out = {}
    out["unicode_update"] = assignments(
        m.grants.update("table", "sales.intl.kunden_ä", changes=[PermissionsChange(principal=alice, add=[Privilege.SELECT])])
    )
    # Names compare without case, the Unicode way.
    out["unicode_get_upper"] = assignments(m.grants.get("table", "sales.intl.KUNDEN_Ä"))
    out["punctuation_update"] = assignments(
        m.grants.update("table", "sales.intl.o'neil", changes=[PermissionsChange(principal=alice, add=[Privilege.SELECT])])
    )
    out["dollar_get"] = assignments(m.grants.get("table", "sales.intl.sales$2024"))
    out["table_types"] = {
        name: m.tables.get(name).table_type.value
        for name in [
            "sales.reporting.orders",
            "sales.reporting.orders_summary",
            "sales.reporting.daily_totals",
            "sales.intl.kunden_ä",
        ]
    }
    out["modify_on_view"] = error_of(
        lambda: m.grants.update(
            "table", "sales.reporting.orders_summary", changes=[PermissionsChange(principal=alice, add=[Privilege.MODIFY])]
        )
    )
    out["refresh_on_table"] = error_of(
        lambda: m.grants.update(
            "table", "sales.reporting.orders", changes=[PermissionsChange(principal=alice, add=[Privilege.REFRESH])]
        )
    )
    out["refresh_on_materialized_view"] = assignments(
        m.grants.update(
            "table", "sales.reporting.daily_totals", changes=[PermissionsChange(principal=alice, add=[Privilege.REFRESH])]
        )
    )
    return out


def delta_sharing(m):
    """Shares, recipients and share permissions through the SDK's own sharing service."""
    out = {}
    expiry = int(time.time() * 1000) + 3_600_000
    recipient = m.recipients.create(
        "sdk_recipient",
        sharing.AuthenticationType.TOKEN,
        comment="made by the SDK",
        properties_kvpairs=sharing.SecurablePropertiesKvPairs(properties={"uc_access_managed": "true"}),
        expiration_time=expiry,
    )
    out["recipient_created"] = {
        "name": recipient.name,
        "authentication_type": recipient.authentication_type.value,
        "properties": recipient.properties_kvpairs.properties,
        "token_expiry_matches": [t.expiration_time == expiry for t in recipient.tokens or []],
        "has_activation_url": bool(recipient.tokens and recipient.tokens[0].activation_url),
    }
    out["recipient_again"] = error_of(
        lambda: m.recipients.create("sdk_recipient", sharing.AuthenticationType.TOKEN)
    )
    share = m.shares.create("sdk_share", comment="a share")
    out["share_created"] = {"name": share.name, "comment": share.comment}
    out["share_again"] = error_of(lambda: m.shares.create("sdk_share"))
    add = sharing.SharedDataObjectUpdate(
        action=sharing.SharedDataObjectUpdateAction.ADD,
        data_object=sharing.SharedDataObject(
            name="sales.reporting.orders", data_object_type=sharing.SharedDataObjectDataObjectType.TABLE
        ),
    )
    updated = m.shares.update("sdk_share", updates=[add])
    out["share_objects"] = [o.name for o in updated.objects or []]
    out["table_again"] = error_of(lambda: m.shares.update("sdk_share", updates=[add]))
    read = m.shares.get("sdk_share", include_shared_data=True)
    out["share_read"] = [o.name for o in read.objects or []]
    granted = m.shares.update_permissions(
        "sdk_share", changes=[sharing.PermissionsChange(principal="sdk_recipient", add=["SELECT"])]
    )
    out["share_permissions_after_add"] = assignments(granted)
    out["share_permissions_read"] = assignments(m.shares.share_permissions("sdk_share"))
    out["grant_to_missing_recipient"] = error_of(
        lambda: m.shares.update_permissions(
            "sdk_share", changes=[sharing.PermissionsChange(principal="nobody", add=["SELECT"])]
        )
    )
    removed = m.shares.update_permissions(
        "sdk_share", changes=[sharing.PermissionsChange(principal="sdk_recipient", remove=["SELECT"])]
    )
    out["share_permissions_after_remove"] = assignments(removed)
    out["missing_share"] = error_of(lambda: m.shares.get("no_such_share"))
    out["missing_recipient"] = error_of(lambda: m.recipients.get("no_such_recipient"))
    later = expiry + 60_000
    m.recipients.update("sdk_recipient", expiration_time=later)
    out["recipient_expiry_moved"] = m.recipients.get("sdk_recipient").expiration_time == later
    rotated = m.recipients.rotate_token("sdk_recipient", existing_token_expire_in_seconds=0)
    out["tokens_after_rotate"] = len(rotated.tokens or [])
    return out


if __name__ == "__main__":
    main()
