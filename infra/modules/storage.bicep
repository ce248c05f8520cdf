// Storage: host storage, deployment package, outbox queues and ledger table. Entra only.
// Parameters are main.bicep's (described there).

param location string
param tags object
// Lengths as in main.bicep (uniqueString() gives 13 characters), so Bicep can check the
// lengths of the resource names built from them.
@minLength(13)
@maxLength(13)
param resourceToken string

var storageAccountName = 'st${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is 'st' + uniqueString() (15 lowercase alphanumerics, valid); checkov cannot evaluate uniqueString(), tests/test_infra.py checks the pattern.
  // checkov:skip=CKV_AZURE_59: Flex Consumption without VNet integration reaches its host storage over the public endpoint; access is Entra-only (shared keys off), HTTPS and TLS 1.2 only.
  // checkov:skip=CKV_AZURE_35: default-deny network rules would lock out the function host, which has no VNet integration or private endpoint in this cost-minimal deployment.
  // checkov:skip=CKV_AZURE_206: locally redundant storage is enough for the relay's package, queues and ledger; geo-replication roughly doubles the storage cost for a recovery the relay does not need.
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
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
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
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

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource outboxQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'signl4-outbox'
}

resource outboxPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'signl4-outbox-poison'
}

// Two-way sync: write-backs Halo could not take inline, and those given up.
resource haloOutboxQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'halo-outbox'
}

resource haloOutboxPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'halo-outbox-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'relayledger'
}

output storageAccountName string = storageAccountName
output deploymentContainerName string = deploymentContainerName
