// Key Vault for uc-access secrets (Purview's Basic password, a Databricks OAuth secret): RBAC
// authorization only (no access policies), soft delete with purge protection, audit logs to Log Analytics.
// Secret values are not written by this template unless passed as secure parameters; operators set them
// with `az keyvault secret set` (docs/deploy.md).

@description('Azure region of the vault.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Key Vault name: 3 to 24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('Principal id of the Function app\'s managed identity (gets Key Vault Secrets User).')
param readerPrincipalId string

@description('Optional principal id (a person, group or deployment identity) that may write secrets (gets Key Vault Secrets Officer). Empty: nobody is granted it here.')
param secretsOfficerPrincipalId string

@description('Kind of principal in secretsOfficerPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param secretsOfficerPrincipalType string

@description('Resource id of the Log Analytics workspace that receives the vault\'s audit events.')
param logAnalyticsId string

@description('Secrets to create, as an object of name to value; empty creates none. Secure: values never appear in deployment history.')
@secure()
param secrets object

// Built-in roles.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_109: the Function app has no VNet integration, so it resolves Key Vault references and reads secrets over the public endpoint; every request needs an Entra token and an RBAC role. Close it with VNet integration and a private endpoint (docs/deploy.md, Hardening).
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109.
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secretValues 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secret in items(secrets): {
  parent: vault
  // checkov:skip=CKV_AZURE_41: these secrets mirror credentials whose lifetime is set elsewhere (a Databricks OAuth secret's own expiry, Purview's credential); a fixed expiry in the template would cut the app off on a date nobody chose. Rotation is in docs/deploy.md.
  name: secret.key
  properties: {
    value: secret.value
    contentType: 'text/plain'
  }
}]

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(vault.id, secretsOfficerPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: secretsOfficerPrincipalId
    principalType: secretsOfficerPrincipalType
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('Vault URI, ending with a slash (https://<name>.vault.azure.net/).')
output uri string = vault.properties.vaultUri
