"""Offline checks of infra/*.bicep that checkov does not make, on pycep's parse tree.

Run by scripts/check-infra with the Python that has pycep-parser installed:
    python infra/checks/lint_bicep.py <repository root>
Prints one line per problem and exits 1 if there is any. What it holds the template to:

- every .bicep file parses with pycep (the parser checkov uses: what pycep cannot read, checkov skips);
- every parameter of every file has a @description;
- the Function app is Flex Consumption with runtime `custom` 1.0, its package read with the user-assigned
  identity, HTTPS only, TLS 1.2, FTP off;
- storage is identity-only (shared keys off), TLS 1.2, no public blobs; the ledger's default replication is
  geo-redundant (checkov cannot see it through the module parameter);
- Key Vault uses RBAC (no access policies), soft delete and purge protection;
- the app settings carry what the Functions host needs through the identity, nothing Flex refuses, no
  storage key, every %SETTING% a function.json names, and only settings the docs describe;
- docs/deploy.md's parameter table names every parameter of main.bicep, and no parameter that is gone.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

from pycep import BicepParser

# Valid Bicep that pycep-parser (0.5.1, pinned by checkov) cannot read: write around it.
PYCEP_GAPS = (
    "has no lambdas (reduce/map/filter), no ternary whose '?' starts a new line, and no more than four "
    "consecutive comment lines inside an object"
)

GEO_REDUNDANT = {"Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"}

# Read by the Functions host or the platform, not by uc-access (so not in README.md).
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
REQUIRED_SETTINGS = HOST_SETTINGS | {
    "AUTH_TENANT_ID",
    "AUTH_AUDIENCE",
    "DATABRICKS_HOST",
    "DATABRICKS_ACCOUNT_ID",
    "DATABRICKS_AUTH_TYPE",
    "LEDGER_BACKEND",
    "LEDGER_BLOB_ACCOUNT_URL",
    "LEDGER_CONTAINER",
    "REVOKE_SCHEDULE",
}
# Flex Consumption takes the runtime from functionAppConfig and refuses these; a connection string would
# need the shared keys that the storage account switches off.
FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "AzureWebJobsStorage",
}
# Read by the Key Vault secrets store being written on its own branch; not in README.md yet.
PENDING_DOC_SETTINGS = {"KEY_VAULT_URL"}
ALLOW_LIST_SETTING = re.compile(r"^([A-Z][A-Z0-9_]*)_(ALLOWED_APP_IDS|ALLOWED_ROLES|BASIC_USERNAME|BASIC_PASSWORD)$")


class Lint:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[str] = []
        self.trees: dict[Path, dict[str, Any]] = {}

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # ------------------------------------------------------------------ parsing and parameters

    def parse_all(self) -> None:
        files = sorted((self.root / "infra").rglob("*.bicep"))
        if not files:
            self.fail("infra/", "no .bicep file found")
        for path in files:
            rel = path.relative_to(self.root)
            try:
                self.trees[rel] = BicepParser().parse(file_path=path)
            except Exception as error:  # pycep raises lark errors of several kinds
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                self.fail(
                    str(rel),
                    f"pycep cannot parse it, so checkov would skip it: {first} (pycep {PYCEP_GAPS})",
                )

    def parameters_are_described(self) -> None:
        for rel, tree in self.trees.items():
            for name, param in (tree.get("parameters") or {}).items():
                kinds = {d.get("type") for d in param.get("decorators") or []}
                if "description" not in kinds:
                    self.fail(str(rel), f"parameter {name} has no @description")

    # ------------------------------------------------------------------ resources

    def resource(self, rel: str, type_prefix: str) -> dict[str, Any] | None:
        tree = self.trees.get(Path(rel))
        if tree is None:
            self.fail(rel, "missing or unparsed")
            return None
        for resource in (tree.get("resources") or {}).values():
            if resource.get("type") == type_prefix:
                return resource.get("config") or {}
        self.fail(rel, f"no {type_prefix} resource")
        return None

    def expect(self, rel: str, config: dict[str, Any], path: str, wanted: Any) -> None:
        value: Any = config
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value != wanted:
            self.fail(rel, f"{path} is {json.dumps(value)}, expected {json.dumps(wanted)}")

    def function_app(self) -> None:
        rel = "infra/modules/functionapp.bicep"
        plan = self.resource(rel, "Microsoft.Web/serverfarms")
        if plan is not None:
            self.expect(rel, plan, "sku.tier", "FlexConsumption")
            self.expect(rel, plan, "sku.name", "FC1")
        app = self.resource(rel, "Microsoft.Web/sites")
        if app is None:
            return
        for path, wanted in [
            ("kind", "functionapp,linux"),
            ("identity.type", "UserAssigned"),
            ("properties.httpsOnly", True),
            ("properties.siteConfig.minTlsVersion", "1.2"),
            ("properties.siteConfig.ftpsState", "Disabled"),
            ("properties.functionAppConfig.runtime.name", "custom"),
            ("properties.functionAppConfig.runtime.version", "1.0"),
            ("properties.functionAppConfig.deployment.storage.type", "blobContainer"),
            ("properties.functionAppConfig.deployment.storage.authentication.type", "UserAssignedIdentity"),
            ("properties.keyVaultReferenceIdentity", "identityId"),
        ]:
            self.expect(rel, app, path, wanted)
        site_config = (app.get("properties") or {}).get("siteConfig") or {}
        if "linuxFxVersion" in site_config:
            self.fail(rel, "siteConfig.linuxFxVersion is set; Flex Consumption takes the runtime from functionAppConfig")

    def storage(self) -> None:
        rel = "infra/modules/storage.bicep"
        account = self.resource(rel, "Microsoft.Storage/storageAccounts")
        if account is not None:
            for path, wanted in [
                ("properties.allowSharedKeyAccess", False),
                ("properties.minimumTlsVersion", "TLS1_2"),
                ("properties.allowBlobPublicAccess", False),
                ("properties.supportsHttpsTrafficOnly", True),
            ]:
                self.expect(rel, account, path, wanted)
        main = self.trees.get(Path("infra/main.bicep"), {})
        sku = ((main.get("parameters") or {}).get("storageSkuName") or {}).get("default")
        if sku not in GEO_REDUNDANT:
            self.fail("infra/main.bicep", f"storageSkuName defaults to {sku!r}; the ledger's account must default to geo-redundant ({', '.join(sorted(GEO_REDUNDANT))})")

    def key_vault(self) -> None:
        rel = "infra/modules/keyvault.bicep"
        vault = self.resource(rel, "Microsoft.KeyVault/vaults")
        if vault is None:
            return
        for path, wanted in [
            ("properties.enableRbacAuthorization", True),
            ("properties.enableSoftDelete", True),
            ("properties.enablePurgeProtection", True),
        ]:
            self.expect(rel, vault, path, wanted)
        if (vault.get("properties") or {}).get("accessPolicies"):
            self.fail(rel, "the vault has access policies; use RBAC role assignments only")

    # ------------------------------------------------------------------ app settings

    def app_settings(self) -> dict[str, Any]:
        """Every name in the objects main.bicep merges into the app settings (variables named *Settings)."""
        main = self.trees.get(Path("infra/main.bicep"), {})
        found: dict[str, Any] = {}
        for name, variable in (main.get("variables") or {}).items():
            if name.endswith("Settings"):
                for key, value in setting_pairs(variable.get("value")):
                    found[key] = value
        return found

    def settings(self) -> None:
        where = "infra/main.bicep"
        settings = self.app_settings()
        if not settings:
            self.fail(where, "no app settings found (variables named *Settings)")
            return
        for key in sorted(REQUIRED_SETTINGS - settings.keys()):
            self.fail(where, f"app setting {key} is not set")
        for key in sorted(FORBIDDEN_SETTINGS & settings.keys()):
            self.fail(where, f"app setting {key} must not be set on Flex Consumption with identity-based storage")
        for key, value in settings.items():
            if isinstance(value, str) and re.search(r"AccountKey=|SharedAccessSignature=", value):
                self.fail(where, f"app setting {key} carries a storage key")
        expected = {"AzureWebJobsStorage__credential": "managedidentity", "LEDGER_BACKEND": "blob"}
        for key, wanted in expected.items():
            if key in settings and settings[key] != wanted:
                self.fail(where, f"app setting {key} is {settings[key]!r}, expected {wanted!r}")

        # The host expands %SETTING% in function.json; a missing one stops the function from loading.
        for function_json in sorted((self.root / "functions").glob("*/function.json")):
            for name in re.findall(r"%([A-Za-z0-9_]+)%", function_json.read_text()):
                if name not in settings:
                    self.fail(where, f"{function_json.relative_to(self.root)} needs app setting {name}, which is not set")

        # Every uc-access setting must be one the docs describe (catches typos nobody would notice).
        docs = "\n".join(p.read_text() for p in [self.root / "README.md", *sorted((self.root / "docs").glob("*.md"))] if p.exists())
        documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", docs))
        functions = {p.name.upper().replace("-", "_") for p in (self.root / "functions").iterdir() if p.is_dir()}
        for key in sorted(settings):
            if key in HOST_SETTINGS or key in documented or key in PENDING_DOC_SETTINGS:
                continue
            match = ALLOW_LIST_SETTING.match(key)
            if match and match.group(1) in functions:
                continue
            if match:
                self.fail(where, f"app setting {key} names no function folder under functions/")
            else:
                self.fail(where, f"app setting {key} is not described in README.md or docs/")

    def parameters_documented(self) -> None:
        main = self.trees.get(Path("infra/main.bicep"), {})
        params = set((main.get("parameters") or {}).keys())
        guide = self.root / "docs" / "deploy.md"
        if not guide.exists():
            self.fail("docs/deploy.md", "missing (it documents every parameter of main.bicep)")
            return
        listed = set(re.findall(r"^\| `([A-Za-z][A-Za-z0-9]*)` \|", guide.read_text(), re.MULTILINE))
        for name in sorted(params - listed):
            self.fail("docs/deploy.md", f"parameter {name} of main.bicep is not in the parameter table")
        for name in sorted(listed - params):
            self.fail("docs/deploy.md", f"the parameter table lists {name}, which main.bicep does not have")

    def run(self) -> int:
        self.parse_all()
        self.parameters_are_described()
        if Path("infra/main.bicep") in self.trees:
            self.function_app()
            self.storage()
            self.key_vault()
            self.settings()
            self.parameters_documented()
        for problem in self.problems:
            print(f"  {problem}")
        return 1 if self.problems else 0


def setting_pairs(node: Any) -> Iterator[tuple[str, Any]]:
    """Keys of the object literals in a variable's value, through conditionals (pycep's operator nodes)."""
    if isinstance(node, dict):
        if "operator" in node and isinstance(node["operator"], dict):
            yield from setting_pairs(node["operator"].get("operands"))
            return
        for key, value in node.items():
            if key in {"operand_1", "operand_2", "condition", "true_value", "false_value"}:
                yield from setting_pairs(value)
            elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key) and ("__" in key or key.isupper()):
                yield key, value
    elif isinstance(node, list):
        for item in node:
            yield from setting_pairs(item)


if __name__ == "__main__":
    sys.exit(Lint(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()).run())
