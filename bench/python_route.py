"""The route most teams write today, for the start-up comparison in scripts/bench.

A Python Functions app that turns an approval into a grant: the Functions worker library and the official
Databricks SDK are imported, the requester is looked up in the account (SCIM, by Entra object id), and
USE_CATALOG, USE_SCHEMA and SELECT are granted with one update per securable, against the same Databricks
stand-in uc-access talks to. Prints "granted" when Unity Catalog accepted the last update; the benchmark
times from process start to that line.

Environment: STANDIN_URL, STANDIN_ACCOUNT_ID, STANDIN_CLIENT_ID, STANDIN_CLIENT_SECRET, REQUESTER_ID
(Entra object id) and TABLE (catalog.schema.table).
"""

import os
import sys

import azure.functions  # noqa: F401  (a Python Functions app always loads it)
from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service.catalog import PermissionsChange, Privilege

ENV = os.environ
URL = ENV["STANDIN_URL"]
ACCOUNT = ENV["STANDIN_ACCOUNT_ID"]


def main():
    # The stand-in answers 404 to /.well-known/databricks-config, so the discovery URL is named.
    account = AccountClient(config=Config(
        host=URL, account_id=ACCOUNT, client_id=ENV["STANDIN_CLIENT_ID"],
        client_secret=ENV["STANDIN_CLIENT_SECRET"], auth_type="oauth-m2m",
        discovery_url=f"{URL}/oidc/accounts/{ACCOUNT}/.well-known/oauth-authorization-server",
    ))
    workspace = WorkspaceClient(config=Config(
        host=URL, client_id=ENV["STANDIN_CLIENT_ID"], client_secret=ENV["STANDIN_CLIENT_SECRET"],
        auth_type="oauth-m2m", discovery_url=f"{URL}/oidc/.well-known/oauth-authorization-server",
    ))
    users = list(account.users.list(filter=f'externalId eq "{ENV["REQUESTER_ID"]}"'))
    if not users:
        sys.exit("requester not found")
    who = users[0].user_name
    catalog, schema, table = ENV["TABLE"].split(".")
    for kind, name, privilege in (
        ("catalog", catalog, Privilege.USE_CATALOG),
        ("schema", f"{catalog}.{schema}", Privilege.USE_SCHEMA),
        ("table", f"{catalog}.{schema}.{table}", Privilege.SELECT),
    ):
        workspace.grants.update(kind, name, changes=[PermissionsChange(principal=who, add=[privilege])])
    print("granted", flush=True)


if __name__ == "__main__":
    main()
