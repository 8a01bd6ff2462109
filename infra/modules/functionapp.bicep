// The Flex Consumption plan and the Function app that runs the uc-access custom handler (runtime
// `custom`). The package comes from a blob container read with the user-assigned identity; app
// settings are passed in whole by main.bicep and replace whatever the app had (set extra ones through
// main.bicep's extraAppSettings, not the portal, or the next deployment removes them).

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to every resource; the app also gets azd-service-name.')
param tags object

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the Function app (its default host name is <name>.azurewebsites.net).')
param appName string

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Blob endpoint of the storage account, no trailing slash.')
param blobEndpoint string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Most instances the app may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Always-ready instances for the HTTP functions (0 = scale to zero, with cold starts).')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int

@description('Spread the plan\'s instances across availability zones (regions with zones only; keeps at least two always-ready instances, billed).')
param zoneRedundant bool

@description('App settings, as an object of name to value.')
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  // checkov:skip=CKV_AZURE_225: zone redundancy is the zoneRedundant parameter (off by default): on Flex Consumption it is offered only in regions with zones and keeps at least two always-ready instances billed.
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'uc-access' })
  kind: 'functionapp,linux'
  // checkov:skip=CKV_AZURE_212: Flex Consumption has no fixed instance count to raise: the platform adds instances per event and replaces failed ones; alwaysReadyHttpInstances keeps warm capacity.
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  // No App Service Authentication (Easy Auth): uc-access validates Entra ID tokens itself (signature,
  // issuer, audience, tenant, per-function allow-lists) and Purview's Basic option must reach it too.
  // checkov:skip=CKV_AZURE_222: Purview and Power Automate call the app from Microsoft's shared service addresses, so the app must be public; every HTTP function needs the function key and an Entra token or Basic credential.
  // checkov:skip=CKV_AZURE_17: client certificates: Purview's HTTP action cannot present one (its options are None, Basic or Service Principal).
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    // Key Vault references in app settings are resolved with this identity (there is no system identity).
    keyVaultReferenceIdentity: identityId
    // checkov:skip=CKV_AZURE_213: App Service health check (instance replacement behind a plan's load balancer) is not used on Flex Consumption; the Functions host itself polls the handler's readiness (GET /) before it routes any call.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: (alwaysReadyHttpInstances > 0) ? [
          {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ] : []
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

// Publishing with user name and password (FTP, and basic auth on the deployment endpoint) is off:
// deployments authenticate with Entra ID (azd, az functionapp deploy).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Name of the Function app.')
output name string = app.name

@description('Default host name of the Function app.')
output defaultHostName string = app.properties.defaultHostName
