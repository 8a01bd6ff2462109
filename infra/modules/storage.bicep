// The Function app's own storage account: host storage (AzureWebJobsStorage: timer locks and schedule
// monitor, host keys), the Flex Consumption deployment container, and the grant ledger container.
// Every client reaches it with the user-assigned managed identity, so shared keys are switched off.

@description('Azure region of the storage account.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Storage account name: 3 to 24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param storageAccountName string

@description('Replication of the storage account. It holds the grant ledger: losing it means expired grants are never revoked.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string

@description('Blob container that holds the deployment package (Flex Consumption).')
param deploymentContainerName string

@description('Blob container that holds the grant ledger (LEDGER_CONTAINER).')
param ledgerContainerName string

@description('Days deleted blobs and containers can be restored (1 to 365).')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Principal id of the Function app\'s managed identity.')
param principalId string

@description('Resource id of the Log Analytics workspace that receives blob read, write and delete logs.')
param logAnalyticsId string

// Built-in roles.
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  // checkov:skip=CKV_AZURE_206: replication is main.bicep's storageSkuName (default Standard_GRS); scripts/check-infra asserts that default is geo-redundant, which checkov cannot see through a module parameter.
  // checkov:skip=CKV_AZURE_43: the name is built in main.bicep ('stucaccess' + uniqueString: 23 lower-case letters and digits); checkov cannot see through a module parameter.
  sku: {
    name: skuName
  }
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its host storage over the public endpoint; every request must carry an Entra token (shared keys are disabled). Private endpoints need a VNet this template does not create (docs/deploy.md, Hardening).
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: the public endpoint stays reachable, but only Entra-authenticated callers with a data role get in.
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource ledgerContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: ledgerContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Who read, wrote or deleted a ledger record, for audits.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

// Host storage through an identity needs Storage Blob Data Owner on the account: the host creates its
// own containers (azure-webjobs-hosts, azure-webjobs-secrets), takes the timer's singleton lock as a blob
// lease and reads the deployment package. No queue role: uc-access has no queue or blob triggers.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Diagnostic events of the Functions host are written to Table storage through AzureWebJobsStorage.
resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageTableDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The ledger writes blobs with index tags and finds them by tag: tags/write, tags/read and filter need
// Storage Blob Data Owner (Contributor lacks the tag permissions). The account-level assignment above
// already covers it; this one states the ledger's own need so it survives if host storage is narrowed
// or moved to another account.
resource ledgerBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(ledgerContainer.id, principalId, storageBlobDataOwnerRoleId)
  scope: ledgerContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Name of the storage account.')
output name string = storage.name

@description('Blob endpoint with no trailing slash (the ledger client refuses a double slash).')
output blobEndpoint string = 'https://${storage.name}.blob.${environment().suffixes.storage}'

@description('Resource id of the storage account.')
output id string = storage.id
