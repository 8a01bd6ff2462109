"""Reads the Graph stand-in's answers with Microsoft's msgraph-sdk models (tests/standin_graph_sdk.rs).

Each answer is parsed by the SDK's own JSON parse node into the generated model for that call. A property
the models do not know lands in `additional_data`: any there but `@odata.context` fails the check. The
request body uc-access sends to checkMemberGroups is compared with the SDK's serialisation of it. Prints one
JSON object of what was seen; exits non-zero on the first mismatch.
"""

import json
import os
import sys
import urllib.error
import urllib.request

from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from kiota_serialization_json.json_serialization_writer_factory import (
    JsonSerializationWriterFactory,
)
from msgraph.generated.directory_objects.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.directory_objects.item.check_member_groups.check_member_groups_post_response import (
    CheckMemberGroupsPostResponse,
)
from msgraph.generated.models.directory_object_collection_response import (
    DirectoryObjectCollectionResponse,
)
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.user import User

BASE = os.environ["STANDIN_URL"].rstrip("/") + "/v1.0"
TOKEN = os.environ["STANDIN_GRAPH_TOKEN"]
seen = {}


def fail(message):
    print(json.dumps(seen, indent=1))
    sys.exit(f"graph crosscheck: {message}")


def call(method, path, body=None, token=TOKEN):
    request = urllib.request.Request(BASE + path, method=method, data=body)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def parse(raw, model):
    node = JsonParseNodeFactory().get_root_parse_node("application/json", raw)
    return node.get_object_value(model)


def only_known(name, parsed):
    extra = set((parsed.additional_data or {}).keys()) - {"@odata.context"}
    if extra:
        fail(f"{name}: properties msgraph-sdk does not know: {sorted(extra)}")


def error_code(name, status, raw, want_status, want_code):
    if status != want_status:
        fail(f"{name}: status {status}, want {want_status}: {raw!r}")
    err = parse(raw, ODataError)
    if err.error is None or err.error.code != want_code:
        fail(f"{name}: error {raw!r}, want code {want_code}")
    seen[name] = {"status": status, "code": err.error.code, "message": err.error.message}


# A user with the properties uc-access selects.
select = "id,userPrincipalName,mail,accountEnabled,userType"
status, raw = call("GET", f"/users/{os.environ['STANDIN_JUDY']}?$select={select}")
if status != 200:
    fail(f"user: {status} {raw!r}")
judy = parse(raw, User)
only_known("user", judy)
seen["user"] = {
    "id": judy.id,
    "userPrincipalName": judy.user_principal_name,
    "mail": judy.mail,
    "accountEnabled": judy.account_enabled,
    "userType": judy.user_type,
}

# Without $select, only the default properties.
status, raw = call("GET", f"/users/{os.environ['STANDIN_JUDY']}")
default = parse(raw, User)
only_known("user_default", default)
seen["user_default_has_account_enabled"] = default.account_enabled is not None

# A service principal and a group.
status, raw = call(
    "GET",
    f"/servicePrincipals/{os.environ['STANDIN_ETL_SP']}?$select=id,appId,accountEnabled,displayName",
)
sp = parse(raw, ServicePrincipal)
only_known("service_principal", sp)
seen["service_principal"] = {"id": sp.id, "appId": sp.app_id, "accountEnabled": sp.account_enabled}
status, raw = call("GET", f"/groups/{os.environ['STANDIN_OWNERS']}?$select=id,displayName")
group = parse(raw, Group)
only_known("group", group)
seen["group"] = {"id": group.id, "displayName": group.display_name}

# Transitive members, one per page, typed by @odata.type.
members, path, pages = [], f"/groups/{os.environ['STANDIN_OWNERS']}/transitiveMembers?$top=1&$select=id", 0
while path:
    status, raw = call("GET", path)
    if status != 200:
        fail(f"transitiveMembers: {status} {raw!r}")
    page = parse(raw, DirectoryObjectCollectionResponse)
    only_known("transitive_members", page)
    for m in page.value or []:
        only_known("transitive_member", m)
        members.append([type(m).__name__, m.id])
    pages += 1
    link = page.odata_next_link
    path = link[len(BASE):] if link else None
seen["transitive_members"] = sorted(members)
seen["transitive_pages"] = pages

# checkMemberGroups: the body as the SDK writes it, the answer as the SDK reads it.
body = CheckMemberGroupsPostRequestBody(
    group_ids=[os.environ["STANDIN_OWNERS"], os.environ["STANDIN_FINANCE"]]
)
writer = JsonSerializationWriterFactory().get_serialization_writer("application/json")
writer.write_object_value(None, body)
sdk_body = json.loads(writer.get_serialized_content())
seen["check_member_groups_sdk_body"] = sdk_body
status, raw = call(
    "POST",
    f"/directoryObjects/{os.environ['STANDIN_ALICE']}/checkMemberGroups",
    json.dumps(sdk_body).encode(),
)
answer = parse(raw, CheckMemberGroupsPostResponse)
only_known("check_member_groups", answer)
seen["check_member_groups"] = answer.value

# Graph's errors.
status, raw = call("GET", "/users/00000000-0000-0000-0000-000000000000?$select=id")
error_code("not_found", status, raw, 404, "Request_ResourceNotFound")
status, raw = call("GET", "/users/00000000-0000-0000-0000-000000000000", token=None)
error_code("no_token", status, raw, 401, "InvalidAuthenticationToken")
too_many = json.dumps({"groupIds": [str(i) for i in range(21)]}).encode()
status, raw = call("POST", f"/directoryObjects/{os.environ['STANDIN_ALICE']}/checkMemberGroups", too_many)
error_code("too_many_groups", status, raw, 400, "Request_BadRequest")

print(json.dumps(seen))
