// Role assignments for the app's identity: least privilege, each on the narrowest scope that
// works: the relay's queues and table themselves; blobs on the account (see below). The
// resources are declared in storage.bicep, keyvault.bicep, monitoring.bicep and
// functionapp.bicep, deployed before this module; each is named here as `existing` under the
// same symbolic name (tests/infra/bicep_template.py checks both declarations agree).
// Parameters are main.bicep's names.

param functionAppName string
param storageAccountName string
param keyVaultName string
param appInsightsName string

// Built-in role definition ids (pinned by tests/infra/test_infra.py).
var roleStorageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var roleStorageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var roleStorageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var roleKeyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var roleMonitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource outboxQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'signl4-outbox'
}

resource outboxPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'signl4-outbox-poison'
}

resource haloOutboxQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'halo-outbox'
}

resource haloOutboxPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'halo-outbox-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: 'relayledger'
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Blob Data Owner (not Contributor) on the whole account, not one container: the Functions
// host creates its own containers (azure-webjobs-hosts, azure-webjobs-secrets) and takes blob
// leases there for its state and keys, and reads the deployment package container. Container
// creation needs the account (blob service) scope.
resource blobOwnerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roleStorageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Queue Data Contributor on each of the relay's two queues, not on the account: the queue
// triggers read and delete there, the output bindings add messages, and the host moves a
// message past maxDequeueCount to signl4-outbox-poison (it creates that queue when missing;
// the template declares both, so no account-wide create right is needed). Nothing in the app
// uses other queues (a blob trigger would: its receipts queue is account-wide). GET /api/health
// counts signl4-outbox and its poison queue with Get Queue Metadata, which needs the action
// queueServices/queues/read: this role has it (Storage Queue Data Reader, the least role with
// it, would add nothing here). tests/infra/test_queue_roles.py.
resource queueContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outboxQueue.id, functionApp.id, roleStorageQueueDataContributor)
  scope: outboxQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageQueueDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource poisonQueueContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outboxPoisonQueue.id, functionApp.id, roleStorageQueueDataContributor)
  scope: outboxPoisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageQueueDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The same on the two-way sync's queues (halo-outbox and its poison queue).
resource haloQueueContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(haloOutboxQueue.id, functionApp.id, roleStorageQueueDataContributor)
  scope: haloOutboxQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageQueueDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource haloPoisonQueueContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(haloOutboxPoisonQueue.id, functionApp.id, roleStorageQueueDataContributor)
  scope: haloOutboxPoisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageQueueDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Table Data Contributor on the ledger table only: in Azure the app reads and writes entities
// there and never creates a table (shared/delivery/ledger.py; the template declares it). The host's
// optional diagnostic events (a table per month that it creates itself) would need this role
// on the account; without it the host logs that it cannot write them, and runs on.
resource tableContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(ledgerTable.id, functionApp.id, roleStorageTableDataContributor)
  scope: ledgerTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageTableDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource keyVaultSecretsUserAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, functionApp.id, roleKeyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsUser)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisherAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionApp.id, roleMonitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleMonitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}
