// uc-access on Azure: a Flex Consumption Function app running the Rust custom handler, a user-assigned
// managed identity for everything it reaches (host storage, the grant ledger, Key Vault, Databricks),
// Key Vault with RBAC, Application Insights. Deploy to an existing resource group:
//   azd up                                         (azure.yaml, main.parameters.json)
//   az deployment group create -g <rg> -f infra/main.bicep -p @my.parameters.json
// Validated offline by scripts/check-infra (checkov, pycep); run `az bicep build` before deploying.
// Every parameter is described in docs/deploy.md.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------
// Naming and placement

@description('Environment name (the azd environment, e.g. "prod"): part of every resource name and the azd-env-name tag.')
@minLength(1)
@maxLength(32)
param environmentName string

@description('Azure region of every resource. Must offer Flex Consumption (`az functionapp list-flexconsumption-locations`).')
param location string = resourceGroup().location

@description('Extra tags for every resource.')
param tags object = {}

@description('Name of the Function app; globally unique (its host name is <name>.azurewebsites.net).')
@minLength(2)
@maxLength(60)
param functionAppName string = 'func-uc-access-${uniqueString(subscription().id, resourceGroup().id, environmentName)}'

// ---------------------------------------------------------------------------------------------------
// Who may call (docs/authentication.md)

@description('AUTH_TENANT_ID: the Entra tenant whose tokens are accepted. Default: the tenant of the subscription.')
param authTenantId string = tenant().tenantId

@description('AUTH_AUDIENCE: accepted token audiences, comma-separated: the uc-access app registration\'s application id URI (api://uc-access-…, the aud of v1.0 tokens) and its client id (the aud of v2.0 tokens); not the /.default scope Purview\'s Audience takes.')
@minLength(1)
param authAudience string

@description('PURVIEW_CALLBACK_ALLOWED_APP_IDS: application (client) ids allowed to call purview-callback, comma-separated: the service principal behind Purview\'s credential. Empty: no application.')
param purviewCallbackAllowedAppIds string = ''

@description('PURVIEW_CALLBACK_ALLOWED_ROLES: app roles that let a token call purview-callback, comma-separated. Empty: none.')
param purviewCallbackAllowedRoles string = ''

@description('App roles allowed on the operator functions (grant-access, resolve-principal, revoke-access, list-grants), comma-separated: *_ALLOWED_ROLES.')
param operatorAllowedRoles string = 'UcAccess.Operator'

@description('Application ids allowed on the operator functions, comma-separated: *_ALLOWED_APP_IDS. Empty: none (people come in through app roles).')
param operatorAllowedAppIds string = ''

@description('PURVIEW_CALLBACK_BASIC_USERNAME: enables HTTP Basic on purview-callback (Purview\'s Basic option). Empty: Basic off. Takes effect only with a password (purviewBasicPassword, or purviewBasicPasswordInVault).')
param purviewBasicUsername string = ''

@description('Purview\'s Basic password, stored as Key Vault secret purview-callback-basic-password, which the app reads itself. Empty: not written (see purviewBasicPasswordInVault).')
@secure()
param purviewBasicPassword string = ''

@description('True when the secret purview-callback-basic-password already exists in the vault (set by an operator). Without a password from either source Basic stays off (the app would answer 503 until the secret exists).')
param purviewBasicPasswordInVault bool = false

// ---------------------------------------------------------------------------------------------------
// Databricks (docs/databricks.md)

@description('DATABRICKS_HOST: the default workspace, https://adb-<id>.<n>.azuredatabricks.net.')
@minLength(1)
param databricksHost string

@description('DATABRICKS_ACCOUNT_ID: the Databricks account id (a GUID, from the account console).')
@minLength(1)
param databricksAccountId string

@description('DATABRICKS_ACCOUNT_HOST: the account API host. Empty: the app\'s default, https://accounts.azuredatabricks.net.')
param databricksAccountHost string = ''

@description('DATABRICKS_AUTH_TYPE: azure-msi (the managed identity, recommended) or oauth-m2m (a Databricks service principal\'s OAuth secret from Key Vault).')
@allowed([
  'azure-msi'
  'oauth-m2m'
])
param databricksAuthType string = 'azure-msi'

@description('DATABRICKS_CLIENT_ID for oauth-m2m: the Databricks service principal\'s application id. Ignored for azure-msi.')
param databricksClientId string = ''

@description('Databricks OAuth secret for oauth-m2m, stored as Key Vault secret databricks-client-secret, which the app reads itself. Empty: not written (set it with az keyvault secret set).')
@secure()
param databricksClientSecret string = ''

@description('UC_ACCESS_WORKSPACES: more workspaces, name=https://adb-…;other=https://adb-…. Empty: only DATABRICKS_HOST.')
param workspaces string = ''

@description('UC_ACCESS_WORKSPACE_AUTHORITIES: Purview qualified-name authority to workspace name, <metastore-id>=name;…. Empty: none mapped.')
param workspaceAuthorities string = ''

@description('UC_ACCESS_DEFAULT_WORKSPACE: the workspace for authorities not mapped. Empty: the app\'s default (DATABRICKS_HOST).')
param defaultWorkspace string = ''

@description('UC_ACCESS_RESOLVE_BY_EXTERNAL_ID: use Automatic Identity Management\'s resolve-by-external-id, which CREATES missing identities in the account.')
param resolveByExternalId bool = false

// ---------------------------------------------------------------------------------------------------
// Behaviour

@description('REVOKE_SCHEDULE: NCRONTAB schedule (six fields, UTC) of the revoke-expired timer. The host reads it from function.json, so it must be set in Azure.')
param revokeSchedule string = '0 */5 * * * *'

@description('UC_ACCESS_POLICY_FILE: path of the policy file inside the deployed package, relative to the app root (e.g. policy.toml). Empty: the built-in safe defaults (docs/policy.md).')
param policyFile string = ''

@description('RUST_LOG: log filter (e.g. info, uc_access=debug).')
param logLevel string = 'info'

@description('Other app settings, name to value (e.g. UC_ACCESS_TIME_BUDGET_SECONDS). Settings this template sets itself take precedence.')
param extraAppSettings object = {}

// ---------------------------------------------------------------------------------------------------
// Capacity and retention

@description('Most instances the app may scale out to (Flex Consumption).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance in MB. The handler needs a few MB; 2048 is the Flex default.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Always-ready instances for the HTTP functions. 0 scales to zero (a cold start of a few seconds on the first call); 1 keeps Purview\'s callback answering at once, billed while idle.')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int = 0

@description('Spread the Flex Consumption instances across availability zones (regions with zones only; keeps at least two always-ready instances, billed).')
param zoneRedundant bool = false

@description('Replication of the storage account holding the grant ledger. Geo-redundant by default: a lost ledger means expired grants are never revoked. Standard_GZRS where the region has zones.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('LEDGER_CONTAINER: blob container of the grant ledger.')
@minLength(3)
@maxLength(63)
param ledgerContainerName string = 'uc-access-grants'

@description('Blob container holding the deployment package (Flex Consumption).')
@minLength(3)
@maxLength(63)
param deploymentContainerName string = 'app-package'

@description('Days deleted blobs and containers (ledger records included) can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 14

@description('Days Log Analytics keeps logs and telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Optional principal (object) id given Key Vault Secrets Officer so it can set secrets, e.g. the deploying user (azd passes AZURE_PRINCIPAL_ID). Empty: none.')
param secretsOfficerPrincipalId string = ''

@description('Kind of principal in secretsOfficerPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param secretsOfficerPrincipalType string = 'User'

// ---------------------------------------------------------------------------------------------------

var token = uniqueString(subscription().id, resourceGroup().id, environmentName)
var allTags = union(tags, { 'azd-env-name': environmentName })

var purviewBasicSecretName = 'purview-callback-basic-password'
var databricksSecretName = 'databricks-client-secret'
var purviewBasicOn = !empty(purviewBasicUsername) && (!empty(purviewBasicPassword) || purviewBasicPasswordInVault)

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-uc-access-${token}'
  location: location
  tags: allTags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'uc-access-monitoring'
  params: {
    location: location
    tags: allTags
    logAnalyticsName: 'log-uc-access-${token}'
    applicationInsightsName: 'appi-uc-access-${token}'
    retentionInDays: logRetentionInDays
    publisherPrincipalId: identity.properties.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'uc-access-storage'
  params: {
    location: location
    tags: allTags
    storageAccountName: 'stucaccess${token}'
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    ledgerContainerName: ledgerContainerName
    softDeleteRetentionDays: softDeleteRetentionDays
    principalId: identity.properties.principalId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'uc-access-keyvault'
  params: {
    location: location
    tags: allTags
    keyVaultName: 'kv-ucaccess-${take(token, 12)}'
    readerPrincipalId: identity.properties.principalId
    secretsOfficerPrincipalId: secretsOfficerPrincipalId
    secretsOfficerPrincipalType: secretsOfficerPrincipalType
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    secrets: union(
      empty(purviewBasicPassword) ? {} : { '${purviewBasicSecretName}': purviewBasicPassword },
      empty(databricksClientSecret) ? {} : { '${databricksSecretName}': databricksClientSecret }
    )
  }
}

var vaultUri = keyVault.outputs.uri

// The operator functions share one allow-list (pycep, the offline parser, has no lambdas: spelled out).
var operatorSettings = {
  GRANT_ACCESS_ALLOWED_ROLES: operatorAllowedRoles
  GRANT_ACCESS_ALLOWED_APP_IDS: operatorAllowedAppIds
  RESOLVE_PRINCIPAL_ALLOWED_ROLES: operatorAllowedRoles
  RESOLVE_PRINCIPAL_ALLOWED_APP_IDS: operatorAllowedAppIds
  REVOKE_ACCESS_ALLOWED_ROLES: operatorAllowedRoles
  REVOKE_ACCESS_ALLOWED_APP_IDS: operatorAllowedAppIds
  LIST_GRANTS_ALLOWED_ROLES: operatorAllowedRoles
  LIST_GRANTS_ALLOWED_APP_IDS: operatorAllowedAppIds
  DOCTOR_ALLOWED_ROLES: operatorAllowedRoles
  DOCTOR_ALLOWED_APP_IDS: operatorAllowedAppIds
}

var databricksCredentialSettings = (databricksAuthType == 'azure-msi') ? {
  DATABRICKS_AUTH_TYPE: 'azure-msi'
  ARM_CLIENT_ID: identity.properties.clientId
} : {
  // No DATABRICKS_CLIENT_SECRET setting: the app reads databricks-client-secret from KEY_VAULT_URL itself,
  // through its cache, so a rotated secret is used without a restart.
  DATABRICKS_AUTH_TYPE: 'oauth-m2m'
  DATABRICKS_CLIENT_ID: databricksClientId
  UC_ACCESS_SECRET_DATABRICKS_CLIENT_SECRET: databricksSecretName
}

var purviewBasicSettings = purviewBasicOn ? {
  // The password is read from KEY_VAULT_URL by the app (no Key Vault reference): an unreadable secret
  // answers 503 naming it, and a rotation is picked up without a restart.
  PURVIEW_CALLBACK_BASIC_USERNAME: purviewBasicUsername
  UC_ACCESS_SECRET_PURVIEW_BASIC_PASSWORD: purviewBasicSecretName
} : {}

// Settings read by the Functions host. FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not
// set: Flex Consumption takes the runtime from functionAppConfig and refuses them.
var hostSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  REVOKE_SCHEDULE: revokeSchedule
}

// Settings read by uc-access (README.md, Configuration). Blank values count as unset there.
var appOwnSettings = {
  AUTH_TENANT_ID: authTenantId
  AUTH_AUDIENCE: authAudience
  PURVIEW_CALLBACK_ALLOWED_APP_IDS: purviewCallbackAllowedAppIds
  PURVIEW_CALLBACK_ALLOWED_ROLES: purviewCallbackAllowedRoles
  DATABRICKS_HOST: databricksHost
  DATABRICKS_ACCOUNT_ID: databricksAccountId
  DATABRICKS_ACCOUNT_HOST: databricksAccountHost
  UC_ACCESS_WORKSPACES: workspaces
  UC_ACCESS_WORKSPACE_AUTHORITIES: workspaceAuthorities
  UC_ACCESS_DEFAULT_WORKSPACE: defaultWorkspace
  UC_ACCESS_RESOLVE_BY_EXTERNAL_ID: resolveByExternalId ? 'true' : 'false'
  UC_ACCESS_POLICY_FILE: policyFile
  LEDGER_BACKEND: 'blob'
  LEDGER_BLOB_ACCOUNT_URL: storage.outputs.blobEndpoint
  LEDGER_CONTAINER: ledgerContainerName
  KEY_VAULT_URL: vaultUri
  // The user-assigned identity the app reads Key Vault with.
  AZURE_CLIENT_ID: identity.properties.clientId
  RUST_LOG: logLevel
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'uc-access-functionapp'
  params: {
    location: location
    tags: allTags
    planName: 'plan-uc-access-${token}'
    appName: functionAppName
    identityId: identity.id
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    zoneRedundant: zoneRedundant
    appSettings: union(
      extraAppSettings,
      appOwnSettings,
      operatorSettings,
      databricksCredentialSettings,
      purviewBasicSettings,
      hostSettings
    )
  }
  // Implicitly after the storage, Key Vault and monitoring modules (their outputs are used above), which
  // end with the identity's role assignments: the roles exist before the app reads its package, host
  // storage or a Key Vault reference.
}

@description('Name of the Function app.')
output FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Default host name of the Function app (https://<this>/api/purview-callback).')
output FUNCTION_APP_DEFAULT_HOST_NAME string = functionApp.outputs.defaultHostName

@description('Client (application) id of the managed identity: ARM_CLIENT_ID, and the application id to add to the Databricks account as a service principal.')
output IDENTITY_CLIENT_ID string = identity.properties.clientId

@description('Principal (object) id of the managed identity.')
output IDENTITY_PRINCIPAL_ID string = identity.properties.principalId

@description('Name of the Key Vault.')
output KEY_VAULT_NAME string = keyVault.outputs.name

@description('URI of the Key Vault.')
output KEY_VAULT_URI string = vaultUri

@description('Name of the storage account (host storage, deployment package, grant ledger).')
output STORAGE_ACCOUNT_NAME string = storage.outputs.name

@description('Name of the resource group.')
output AZURE_RESOURCE_GROUP string = resourceGroup().name
