// HaloPSA -> SIGNL4 relay: everything the function app needs, in one resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p environmentName=<name> signl4TeamSecret=<secret>
//   azd up                      (azure.yaml at the repo root; parameters from infra/main.parameters.json)
//
// Every resource is declared here directly (no registry or local modules) so the offline
// checks (.ci/checkov.sh, tests/test_infra.py, and tests/test_infra_types.py against the
// Bicep compiler's type data) see all of it. Keep to syntax pycep parses: no nullable types,
// user-defined functions/types, imports, union(), `?.` or `??`; and write `!(a && b)`, not
// `!a || !b` (pycep reads that as `!(a || !b)`).

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Deployment parameters
// ---------------------------------------------------------------------------------------------

@description('Short name of this deployment (azd environment name); used in resource names.')
@minLength(1)
@maxLength(30)
param environmentName string

@description('Azure region; defaults to the resource group region. Must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Python version of the Flex Consumption runtime. 3.10 is not offered: end of life since October 2026.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Memory per instance in MB (Flex Consumption sizes). 512 was rejected by ARM in some regions until March 2026 (Azure/azure-rest-api-specs#40898); 2048 is accepted everywhere.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on scale-out; a cap on cost and on the request rate sent to SIGNL4. 40 to 1000: 40 is Flex Consumption\'s documented floor (lower values are a preview in a few regions and fail elsewhere).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Soft-delete retention for the Key Vault, in days (7-90). Purge protection is always on.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 90

@description('Days of Log Analytics retention (30 is included in the ingestion price).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// ---------------------------------------------------------------------------------------------
// Alerting (infra only, not app settings): log alert rules on Application Insights for the
// relay's own failures, sent to an action group (e-mail and/or a SIGNL4 webhook).
// ---------------------------------------------------------------------------------------------

@description('Create the alert rules: an event that never reached SIGNL4 (poison), 5xx answers, and events queued longer than alertBacklogMinutes. Alerts show in Azure Monitor; they notify someone when alertEmailAddress or alertSignl4WebhookUrl is set.')
param alertsEnabled bool = true

@description('E-mail address the alerts are sent to; empty: no e-mail.')
param alertEmailAddress string = ''

@description('SIGNL4 webhook URL the alerts are sent to (https://connect.signl4.com/webhook/<team secret>), so the on-call team hears when the relay itself fails; empty: none. Secure because it contains a team secret; Azure keeps it in the action group, readable by anyone with read access to that resource. https:// only (the deployment fails otherwise).')
@secure()
param alertSignl4WebhookUrl string = ''

@description('How often each alert rule runs, and the window it looks at (ISO 8601). PT1M costs more per rule.')
@allowed([
  'PT1M'
  'PT5M'
  'PT10M'
  'PT15M'
  'PT30M'
  'PT1H'
])
param alertEvaluationFrequency string = 'PT5M'

@description('5xx alert: the share of HTTP answers in one window that are 5xx, in percent, at which it fires (1-100).')
@minValue(1)
@maxValue(100)
param alertServerErrorPercent int = 10

@description('5xx alert: the fewest HTTP requests in one window for the share to count (one failure out of two requests is no trend).')
@minValue(1)
@maxValue(100000)
param alertServerErrorMinRequests int = 5

@description('Backlog alert: minutes an event may stay queued (answered 202 queued) without the outbox sending it or giving it up, before it fires (5-720). The outbox retries for about 4 minutes (host.json) before giving up.')
@minValue(5)
@maxValue(720)
param alertBacklogMinutes int = 15

// ---------------------------------------------------------------------------------------------
// Secrets: stored in Key Vault, handed to the app as Key Vault references, never output.
// ---------------------------------------------------------------------------------------------

@description('SIGNL4 team secret (the last part of the SIGNL4 webhook URL). Stored in Key Vault.')
@secure()
@minLength(1)
param signl4TeamSecret string

@description('Password HaloPSA sends with Basic auth on the webhook; empty disables the check. Stored in Key Vault when set.')
@secure()
param haloWebhookPassword string = ''

@description('Token of POST /api/webhook/{token} (SIGNL4\'s URL shape; it stands where Halo had the SIGNL4 team secret). Empty: derived from the team secret, the same on every redeploy. Stored in Key Vault.')
@secure()
param relayInboundToken string = ''

@description('Two-way sync: client secret of the HaloPSA API application (client credentials). Empty: two-way sync off. Stored in Key Vault when set.')
@secure()
param haloClientSecret string = ''

@description('Routing (relayRoutes): the SIGNL4 team secret of each named target, a JSON object such as {"network": "<secret>", "contoso": "<secret>"} (a string: azd environment values are text). Stored in Key Vault as one secret, signl4-team-secrets, and handed to the app as SIGNL4_TEAM_SECRETS, a Key Vault reference. Empty: only the default team.')
@secure()
param signl4TeamSecrets string = ''

// ---------------------------------------------------------------------------------------------
// Relay settings (shared/settings.py RelaySettings). Defaults are the code's defaults; the
// template must provide every setting the code reads (tests/test_infra.py checks both).
// ---------------------------------------------------------------------------------------------

@description('SIGNL4 webhook base URL; the team secret is appended. https:// only (the deployment fails otherwise).')
param signl4WebhookUrl string = 'https://connect.signl4.com/webhook/'

@description('Timeout of one call to SIGNL4, in seconds (0 < x <= 60).')
param signl4TimeoutSeconds string = '4'

@description('Attempts per SIGNL4 call (1-10).')
param signl4MaxAttempts string = '3'

@description('Total time budget for retries of one SIGNL4 call, in seconds (0 < x <= 120).')
param signl4RetryBudgetSeconds string = '10'

@description('Base backoff between SIGNL4 attempts, in seconds (0-30).')
param signl4BackoffSeconds string = '0.5'

@description('HaloPSA base URL, e.g. https://yourcompany.halopsa.com (used for ticket links). Empty or https:// (the deployment fails otherwise).')
param haloBaseUrl string = ''

@description('User name HaloPSA sends with Basic auth on the webhook; empty disables the check.')
param haloWebhookUsername string = ''

@description('Two-way sync: client id of the HaloPSA API application. Empty: off. Needs haloBaseUrl and haloClientSecret.')
param haloClientId string = ''

@description('Two-way sync: Halo authorisation server (the token is at /token). Empty: what {haloBaseUrl}/api/authinfo names, else {haloBaseUrl}/auth.')
param haloAuthUrl string = ''

@description('Two-way sync: Halo tenant (hosted instances only).')
param haloTenant string = ''

@description('Two-way sync: scopes of the token (space-separated; least privilege).')
param haloScope string = 'read:tickets edit:tickets'

@description('Two-way sync: outcome (by name) of the notes the relay writes.')
param haloNoteOutcome string = 'Private Note'

@description('Two-way sync: outcome id of the notes (wins over haloNoteOutcome). Empty: by name.')
param haloNoteOutcomeId string = ''

@description('Two-way sync: Halo status id set when SIGNL4 acknowledges. Empty: status unchanged.')
param haloAckStatusId string = ''

@description('Two-way sync: Halo status id set when SIGNL4 closes the alert. Empty (default): unchanged; closing tickets from a pager is a policy choice.')
param haloCloseStatusId string = ''

@description('Two-way sync: assign the ticket to the Halo agent whose e-mail is the responder\'s (true/false).')
param haloAssignOnAck string = 'false'

@description('Two-way sync: timeout of one call to Halo, in seconds (0 < x <= 60). Empty: signl4TimeoutSeconds.')
param haloTimeoutSeconds string = ''

@description('Two-way sync: attempts per Halo call (1-10). Empty: signl4MaxAttempts.')
param haloMaxAttempts string = ''

@description('Two-way sync: total time budget for retries of one Halo call, in seconds (0 < x <= 120). Empty: signl4RetryBudgetSeconds.')
param haloRetryBudgetSeconds string = ''

@description('Two-way sync: base backoff between Halo attempts, in seconds (0-30). Empty: signl4BackoffSeconds.')
param haloBackoffSeconds string = ''

@description('Comma-separated Halo status ids/names that resolve the SIGNL4 alert.')
param relayResolvedStatuses string = '9,Closed,Resolved,Cancelled'

@description('Comma-separated Halo status ids/names that acknowledge the SIGNL4 alert.')
param relayAckStatuses string = ''

@description('Comma-separated priorities that page; empty pages for every priority.')
param relayPagePriorities string = ''

@description('Comma-separated Halo teams that page; empty pages for every team.')
param relayPageTeams string = ''

@description('Comma-separated priorities sent to SIGNL4 as emergencies.')
param relayEmergencyPriorities string = ''

@description('Routing rules (JSON array): which SIGNL4 team each ticket pages, with its category, quiet hours and maintenance windows (README.md, Routing). Empty: every ticket pages the default team. Each named target needs its secret in signl4TeamSecrets.')
param relayRoutes string = ''

@description('true: build and log the SIGNL4 payload but do not send it.')
@allowed([
  'true'
  'false'
])
param relayDryRun string = 'false'

@description('Seconds a claim or sending mark counts as a live sender; must exceed host.json functionTimeout (120 s).')
param relayInflightSeconds string = '150'

@description('Most events one request (a HaloPSA batch) may carry; a longer array is refused whole with 413 batch_too_large. 1 to 150.')
param relayMaxBatch string = '100'

@description('Seconds `python -m shared send-test` waits before resolving its test alert (0-3600).')
param relayTestResolveSeconds string = '60'

@description('SIGNL4 heartbeat URL (Integrations > Gallery > Heartbeat, https://connect.signl4.com/apps/<id>); the heartbeat function calls it while the relay is healthy. Empty: no heartbeat. Empty or https:// (the deployment fails otherwise).')
param signl4HeartbeatUrl string = ''

@description('NCRONTAB schedule of the heartbeat function (six fields, seconds first).')
param relayHeartbeatSchedule string = '0 */5 * * * *'

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  app: 'halopsa-signl4-relay'
}
// azd finds the app to deploy the `relay` service to by this tag (no union() in pycep).
var appTags = {
  'azd-env-name': environmentName
  app: 'halopsa-signl4-relay'
  'azd-service-name': 'relay'
}
var functionAppName = 'func-${environmentName}-${resourceToken}'
var planName = 'plan-${environmentName}-${resourceToken}'
var storageAccountName = 'st${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var logAnalyticsName = 'log-${environmentName}-${resourceToken}'
var appInsightsName = 'appi-${environmentName}-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'

// The inbound token when none is given: a name-based hash (guid()) of the team secret, so nobody
// computes it without that secret and every redeploy writes the same value. A newGuid() default
// would store a new token on each deployment and lock Halo out (README: Moving from SIGNL4's guide).
// The Halo password's secret exists only when a password is given, so the app setting builds
// its Key Vault reference from the vault and this name instead of reading the conditional
// resource (Bicep >= 0.36 warns BCP318 on that read; ARM fails it when the secret is absent).
var haloWebhookPasswordSecretName = 'halo-webhook-password'
var haloClientSecretSecretName = 'halo-client-secret'

var relayInboundTokenValue = empty(relayInboundToken) ? guid(signl4TeamSecret, resourceGroup().id, environmentName, 'relay-inbound-token') : relayInboundToken

// Built-in role definition ids (pinned by tests/test_infra.py).
var roleStorageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var roleStorageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var roleStorageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var roleKeyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var roleMonitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

// URL parameters are https only: the SIGNL4 URL carries the team secret in its path, and the
// Halo link is opened with a Halo session (the app enforces the same, shared/settings.py).
// Bicep has no pattern decorator and checkov's parser (pycep) cannot read fail(), so the
// wrong branch calls int() on a sentence: ARM evaluates only the branch the condition picks
// (startsWith is case-insensitive there), and that one fails the deployment, naming the
// parameter. tests/test_infra.py evaluates both expressions.
var signl4WebhookUrlHttps = startsWith(toLower(signl4WebhookUrl), 'https://') ? signl4WebhookUrl : string(int('signl4WebhookUrl must start with https://'))
var signl4HeartbeatUrlHttps = (empty(signl4HeartbeatUrl) || startsWith(toLower(signl4HeartbeatUrl), 'https://')) ? signl4HeartbeatUrl : string(int('signl4HeartbeatUrl must be empty or start with https://'))
var haloBaseUrlHttps = (empty(haloBaseUrl) || startsWith(toLower(haloBaseUrl), 'https://')) ? haloBaseUrl : string(int('haloBaseUrl must be empty or start with https://'))

// ---------------------------------------------------------------------------------------------
// Monitoring: Log Analytics + workspace-based Application Insights, Entra-only ingestion.
// ---------------------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Only Entra-authenticated telemetry (the app's identity, Monitoring Metrics Publisher).
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------------------------
// Storage: host storage, deployment package, outbox queues and ledger table. Entra only.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Key Vault: RBAC only, soft delete + purge protection; holds the relay's secrets.
// ---------------------------------------------------------------------------------------------

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the app resolves Key Vault references over the public endpoint (no VNet integration; App Service is not a trusted service that bypasses the firewall); access is Entra RBAC only.
  // checkov:skip=CKV_AZURE_189: as CKV_AZURE_109: disabling public access needs VNet integration and a private endpoint.
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
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

resource signl4TeamSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expiry date would silently stop paging when it passes; the secret is rotated by SIGNL4 team changes (see README.md, Deploy), not on a timer.
  parent: keyVault
  name: 'signl4-team-secret'
  properties: {
    value: signl4TeamSecret
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

// Always stored (an empty object when no target is named), so its reference always resolves.
var signl4TeamSecretsValue = empty(signl4TeamSecrets) ? '{}' : signl4TeamSecrets

resource signl4TeamSecretsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expiry date would silently stop paging when it passes; the secrets are rotated by SIGNL4 team changes (see README.md, Deploy), not on a timer.
  parent: keyVault
  name: 'signl4-team-secrets'
  properties: {
    value: signl4TeamSecretsValue
    contentType: 'application/json'
    attributes: {
      enabled: true
    }
  }
}

resource haloWebhookPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(haloWebhookPassword)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would silently reject every HaloPSA webhook when it passes; rotate together with the HaloPSA webhook configuration instead.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not look inside the body of a conditional (`if`) resource.
  parent: keyVault
  name: haloWebhookPasswordSecretName
  properties: {
    value: haloWebhookPassword
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

resource haloClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(haloClientSecret)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would silently stop two-way sync when it passes; rotate together with the HaloPSA API application instead.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not look inside the body of a conditional (`if`) resource.
  parent: keyVault
  name: haloClientSecretSecretName
  properties: {
    value: haloClientSecret
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

resource relayInboundTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expiry date would silently lock HaloPSA out of the webhook route when it passes; rotate together with the HaloPSA method path instead (README.md, Security).
  parent: keyVault
  name: 'relay-inbound-token'
  properties: {
    value: relayInboundTokenValue
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Function app: Flex Consumption (FC1, Linux), system-assigned identity, package from blob.
// ---------------------------------------------------------------------------------------------

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

// App settings in their own resource, after the role assignments, so the host's first start
// can already read storage and resolve the Key Vault references.
// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION /
// WEBSITE_RUN_FROM_PACKAGE here: runtime and package live in functionAppConfig above.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov treats every Microsoft.Web/sites/config as the `web` site config; this one is the
  // `appsettings` dictionary, so its site-config checks inspect app setting names:
  // checkov:skip=CKV_AZURE_13: App Service Authentication (Easy Auth) would reject HaloPSA's calls, which carry a function key, not an Entra token; checked here only because checkov reads any sites/config as site config.
  // checkov:skip=CKV_AZURE_63: not site config (appsettings); web-server HTTP logs are not a Flex Consumption feature, requests go to Application Insights.
  // checkov:skip=CKV_AZURE_65: not site config (appsettings); detailed IIS error pages do not apply to a Linux Flex Consumption app, errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66: not site config (appsettings); IIS failed-request tracing does not apply to a Linux Flex Consumption app, failures go to Application Insights.
  // checkov:skip=CKV_AZURE_80: not site config (appsettings); the app is Python, no .NET Framework.
  // checkov:skip=CKV_AZURE_88: not site config (appsettings); Flex Consumption has no Azure Files content share, the package is in a blob container reached by managed identity.
  // checkov:skip=CKV_AZURE_222: not site config (appsettings); public access is set (and skipped with its reason) on the site itself.
  parent: functionApp
  name: 'appsettings'
  properties: {
    // Host storage over the system-assigned identity (no connection string, no key).
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    // Application Insights: local auth is off, so telemetry is sent with Entra auth.
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
    // Relay settings (shared/settings.py). Secrets are Key Vault references without a
    // version, so a new secret version is picked up without redeploying.
    SIGNL4_TEAM_SECRET: '@Microsoft.KeyVault(SecretUri=${signl4TeamSecretSecret.properties.secretUri})'
    SIGNL4_WEBHOOK_URL: signl4WebhookUrlHttps
    SIGNL4_TIMEOUT_SECONDS: signl4TimeoutSeconds
    SIGNL4_MAX_ATTEMPTS: signl4MaxAttempts
    SIGNL4_RETRY_BUDGET_SECONDS: signl4RetryBudgetSeconds
    SIGNL4_BACKOFF_SECONDS: signl4BackoffSeconds
    HALO_BASE_URL: haloBaseUrlHttps
    HALO_WEBHOOK_USERNAME: haloWebhookUsername
    HALO_WEBHOOK_PASSWORD: empty(haloWebhookPassword) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${haloWebhookPasswordSecretName}/)'
    RELAY_INBOUND_TOKEN: '@Microsoft.KeyVault(SecretUri=${relayInboundTokenSecret.properties.secretUri})'
    HALO_CLIENT_ID: haloClientId
    HALO_CLIENT_SECRET: empty(haloClientSecret) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${haloClientSecretSecretName}/)'
    HALO_AUTH_URL: haloAuthUrl
    HALO_TENANT: haloTenant
    HALO_SCOPE: haloScope
    HALO_NOTE_OUTCOME: haloNoteOutcome
    HALO_NOTE_OUTCOME_ID: haloNoteOutcomeId
    HALO_ACK_STATUS_ID: haloAckStatusId
    HALO_CLOSE_STATUS_ID: haloCloseStatusId
    HALO_ASSIGN_ON_ACK: haloAssignOnAck
    HALO_TIMEOUT_SECONDS: haloTimeoutSeconds
    HALO_MAX_ATTEMPTS: haloMaxAttempts
    HALO_RETRY_BUDGET_SECONDS: haloRetryBudgetSeconds
    HALO_BACKOFF_SECONDS: haloBackoffSeconds
    RELAY_RESOLVED_STATUSES: relayResolvedStatuses
    RELAY_ACK_STATUSES: relayAckStatuses
    RELAY_PAGE_PRIORITIES: relayPagePriorities
    RELAY_PAGE_TEAMS: relayPageTeams
    RELAY_EMERGENCY_PRIORITIES: relayEmergencyPriorities
    RELAY_DRY_RUN: relayDryRun
    RELAY_ROUTES: relayRoutes
    SIGNL4_TEAM_SECRETS: '@Microsoft.KeyVault(SecretUri=${signl4TeamSecretsSecret.properties.secretUri})'
    RELAY_INFLIGHT_SECONDS: relayInflightSeconds
    RELAY_MAX_BATCH: relayMaxBatch
    RELAY_TEST_RESOLVE_SECONDS: relayTestResolveSeconds
    SIGNL4_HEARTBEAT_URL: signl4HeartbeatUrlHttps
    RELAY_HEARTBEAT_SCHEDULE: relayHeartbeatSchedule
  }
  dependsOn: [
    blobOwnerAssignment
    queueContributorAssignment
    poisonQueueContributorAssignment
    haloQueueContributorAssignment
    haloPoisonQueueContributorAssignment
    tableContributorAssignment
    keyVaultSecretsUserAssignment
    metricsPublisherAssignment
    // Named, not read (see haloWebhookPasswordSecretName); skipped when the secret is not deployed.
    haloWebhookPasswordSecret
    haloClientSecretSecret
    deploymentContainer
    outboxQueue
    outboxPoisonQueue
    haloOutboxQueue
    haloOutboxPoisonQueue
    ledgerTable
  ]
}

// ---------------------------------------------------------------------------------------------
// Role assignments for the app's identity: least privilege, each on the narrowest scope that
// works: the relay's queues and table themselves; blobs on the account (see below).
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Alerting: three log alert rules on Application Insights over the relay's own log lines
// (shared/entry/queues.py, shared/entry/signl4_webhook.py) and request telemetry, and an action
// group when a receiver is given.
// ---------------------------------------------------------------------------------------------

// Written as !(a && b): pycep (checkov's parser) reads `!x || !y` as `!(x || !y)`.
var alertReceiversGiven = !(empty(alertEmailAddress) && empty(alertSignl4WebhookUrl))
var alertActionGroupName = 'ag-${environmentName}-${resourceToken}'

// One row per event given up, counted on request telemetry, which host.json keeps out of
// sampling (excludedTypes Request): each invocation of a poison-queue function, and each
// POST /api/signl4 Halo refused for good (502 halo_rejected). The ERROR line the relay logs
// then (`poison externalId=HaloPSA-<id> reason=...`) names the ticket, but it is a trace:
// the Python worker sends every log record as one (logger.exception too), and traces are
// sampled under a burst. It is joined on the invocation and may be empty; the row counts anyway.
var alertPoisonQuery = '''
requests
| where name in ("signl4_outbox_poison", "halo_outbox_poison") or (name == "signl4" and resultCode == "502")
| join kind=leftouter (
    traces
    | where message startswith "poison externalId="
    | project operation_Id, message
  ) on operation_Id
| project timestamp, name, message
'''

// HTTP answers only (queue-trigger invocations have no url; their failures are retries, which
// the backlog and poison rules cover). One row when the window has enough requests and the 5xx
// share reaches the threshold: failed / total >= percent / 100, in integers.
var alertServerErrorQuery = format('''
requests
| where isnotempty(url)
| summarize total = count(), failed = countif(toint(resultCode) >= 500)
| where total >= {0} and failed * 100 >= total * {1}
''', alertServerErrorMinRequests, alertServerErrorPercent)

// An event answered `202 queued` logs `relay externalId=<id> ... decision=... (queued) ...`;
// the outbox logs `outbox externalId=<id> result=...` when it sends (or refuses) it, and the
// poison function `poison externalId=<id> ...` when it gives up. A ticket whose latest queued
// line is older than alertBacklogMinutes with no outbox or poison line after it is overdue:
// the outbox is not running (host down, trigger or storage access broken) or is stuck. Log
// lines, not the storage queue's metric: that one is hourly and counts, it has no age.
var alertBacklogQuery = format('''
let overdue = {0}m;
let handled = traces
| where message startswith "outbox externalId=" or message startswith "poison externalId="
| parse message with * "externalId=" externalId " " *
| summarize handledAt = max(timestamp) by externalId;
traces
| where timestamp < ago(overdue)
| where message startswith "relay externalId=" and message contains "(queued)"
| parse message with "relay externalId=" externalId " " *
| summarize queuedAt = max(timestamp) by externalId
| join kind=leftouter handled on externalId
| where isnull(handledAt) or handledAt < queuedAt
| project externalId, queuedAt
''', alertBacklogMinutes)

resource alertActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (alertsEnabled && alertReceiversGiven) {
  name: alertActionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'halo-relay'
    enabled: true
    emailReceivers: empty(alertEmailAddress) ? [] : [
      {
        name: 'email'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
    // The secure URL goes here only (an action group cannot read Key Vault); plain http would
    // send the team secret in clear, so the wrong branch fails the deployment, naming the
    // parameter (same device as signl4WebhookUrlHttps; a variable would carry the secret).
    webhookReceivers: empty(alertSignl4WebhookUrl) ? [] : [
      {
        name: 'signl4'
        serviceUri: startsWith(toLower(alertSignl4WebhookUrl), 'https://') ? alertSignl4WebhookUrl : string(int('alertSignl4WebhookUrl must start with https://'))
        useCommonAlertSchema: true
      }
    ]
  }
}

resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertsEnabled) {
  name: 'alert-poison-${environmentName}-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'HaloPSA relay ${environmentName}: an event never reached SIGNL4'
    description: 'The relay gave up an event or a write-back: SIGNL4 (or Halo) refused it for good or stayed unavailable through every retry. Counted on request telemetry, never sampled; the poison line names the ticket when sampling kept it. See README.md, Alerts.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alertEvaluationFrequency
    windowSize: alertEvaluationFrequency
    criteria: {
      allOf: [
        {
          query: alertPoisonQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    // Every poison line is news: fire for each window that has one, resolve nothing.
    autoMitigate: false
    actions: {
      actionGroups: alertReceiversGiven ? [
        alertActionGroup.id
      ] : []
    }
  }
}

resource serverErrorAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertsEnabled) {
  name: 'alert-5xx-${environmentName}-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'HaloPSA relay ${environmentName}: 5xx answers'
    description: 'At least alertServerErrorPercent % of the relay\'s HTTP answers in one window were 5xx (with at least alertServerErrorMinRequests requests): HaloPSA may be retrying or giving up.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alertEvaluationFrequency
    windowSize: alertEvaluationFrequency
    criteria: {
      allOf: [
        {
          query: alertServerErrorQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: alertReceiversGiven ? [
        alertActionGroup.id
      ] : []
    }
  }
}

resource backlogAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertsEnabled) {
  name: 'alert-backlog-${environmentName}-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'HaloPSA relay ${environmentName}: queued events not sent'
    description: 'An event answered 202 queued was neither sent nor given up within alertBacklogMinutes: the outbox function is not running or is stuck. Looks back one day.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alertEvaluationFrequency
    windowSize: alertEvaluationFrequency
    // The query ages events itself; it needs the lines from before the evaluation window.
    overrideQueryTimeRange: 'P1D'
    criteria: {
      allOf: [
        {
          query: alertBacklogQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: alertReceiversGiven ? [
        alertActionGroup.id
      ] : []
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs: names and URLs only. No key, secret, connection string or list*() result:
// outputs are stored in the deployment history, readable by anyone with Reader.
// ---------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.name
output FUNCTION_APP_HOSTNAME string = functionApp.properties.defaultHostName
output KEY_VAULT_NAME string = keyVault.name
output STORAGE_ACCOUNT_NAME string = storage.name
@description('HaloPSA\'s webhook URL without a key: HALO_WEBHOOK_URL_COMMAND prints it with the halopsa function\'s own key.')
output HALOPSA_WEBHOOK_URL string = 'https://${functionApp.properties.defaultHostName}/api/halopsa'
@description('SIGNL4 guide migration: the custom integration\'s base URL (replaces https://connect.signl4.com/webhook/); the method path keeps its query string, with the inbound token in place of the team secret.')
output SIGNL4_GUIDE_BASE_URL string = 'https://${functionApp.properties.defaultHostName}/api/webhook/'
@description('Prints the inbound token for the method path (needs Key Vault Secrets User or Officer on the vault).')
output FETCH_RELAY_INBOUND_TOKEN_COMMAND string = 'az keyvault secret show --vault-name ${keyVault.name} --name relay-inbound-token --query value -o tsv'
// One key per route. A function key opens its own function only; a host key (`az functionapp
// keys`) opens every function, so none of these commands reads one.
// The keys are not created here: a function, and so its keys, exists only once the code is
// published, after this template. The commands print a URL carrying a key: run them, do not log
// their output.
@description('Prints HaloPSA\'s webhook URL with the halopsa function\'s own key (?code=...), which opens /api/halopsa only. Run it after the code is published.')
output HALO_WEBHOOK_URL_COMMAND string = 'az functionapp function keys list -g ${resourceGroup().name} -n ${functionApp.name} --function-name halopsa --query "join(\'\', [\'https://${functionApp.properties.defaultHostName}/api/halopsa?code=\', default])" -o tsv'
@description('Prints SIGNL4\'s outbound webhook URL (two-way sync) with the signl4 function\'s own key (?code=...), which opens /api/signl4 only. Run it after the code is published.')
output SIGNL4_WEBHOOK_URL_COMMAND string = 'az functionapp function keys list -g ${resourceGroup().name} -n ${functionApp.name} --function-name signl4 --query "join(\'\', [\'https://${functionApp.properties.defaultHostName}/api/signl4?code=\', default])" -o tsv'
@description('Deprecated, use HALO_WEBHOOK_URL_COMMAND. Prints the halopsa function\'s own key (no longer the host key, which opens every function).')
output FETCH_FUNCTION_CODE_COMMAND string = 'az functionapp function keys list -g ${resourceGroup().name} -n ${functionApp.name} --function-name halopsa --query default -o tsv'
