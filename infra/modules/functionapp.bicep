// Function app: Flex Consumption (FC1, Linux), system-assigned identity, package from blob.
// Its role assignments (roles.bicep) and app settings (appsettings.bicep) follow in that order.
// Parameters are main.bicep's (described there).

param location string
param tags object
// Lengths as in main.bicep (uniqueString() gives 13 characters), so Bicep can check the
// lengths of the resource names built from them.
@minLength(1)
@maxLength(30)
param environmentName string
@minLength(13)
@maxLength(13)
param resourceToken string
param storageAccountName string
param deploymentContainerName string
param pythonVersion string
param instanceMemoryMB int
param maximumInstanceCount int

var functionAppName = 'func-${environmentName}-${resourceToken}'
var planName = 'plan-${environmentName}-${resourceToken}'

// azd finds the app to deploy the `relay` service to by this tag (no union() in pycep).
var appTags = {
  'azd-env-name': environmentName
  app: 'halopsa-signl4-relay'
  'azd-service-name': 'relay'
}

// Declared in storage.bicep, deployed before this module.
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy for Flex Consumption is only offered in some regions; a zone outage delays paging for minutes and loses no state (queues/ledger live in storage). Set properties.zoneRedundant where the region supports it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP publishing and rejects siteConfig.ftpsState (ARM 51021), so it cannot be set; FTP and SCM basic-auth publishing credentials are off (basicPublishingCredentialsPolicies ftp/scm, allow: false), deployments use Entra tokens.
  // checkov:skip=CKV_AZURE_17: HaloPSA webhooks cannot present client certificates; callers authenticate with the function key (and optional Basic auth).
  // checkov:skip=CKV_AZURE_222: the webhook endpoint must be reachable from HaloPSA's cloud, so public network access stays on; HTTPS only, function key required.
  // checkov:skip=CKV_AZURE_212: siteConfig.numberOfWorkers (a fixed instance count) belongs to dedicated plans; Flex Consumption places instances itself, up to maximumInstanceCount, and scales to zero when idle.
  // checkov:skip=CKV_AZURE_213: deliberate, not for want of an endpoint: health check takes instances that fail its probe out of rotation and replaces them, but /api/health (anonymous) answers 503 for a configuration error, which every instance shares, so probing it would cycle instances and fix nothing; Flex Consumption places and replaces instances itself. Watch /api/health from outside (e.g. an Application Insights availability test).
  name: functionAppName
  location: location
  tags: appTags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      // No ftpsState: Flex Consumption rejects it (ARM 51021, "site configuration property
      // FtpsState for Flex Consumption sites is invalid"); it has no FTP publishing, and the
      // basic-auth publishing policies below are off.
      remoteDebuggingEnabled: false
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Deployments authenticate with the deployer's Entra token (az/azd/func); no FTP or
// SCM basic-auth publishing credentials.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output functionAppName string = functionAppName
output defaultHostName string = functionApp.properties.defaultHostName
