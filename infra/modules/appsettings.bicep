// The function app's settings, in their own resource and module, deployed after the role
// assignments (roles.bicep), so the host's first start can already read storage and resolve
// the Key Vault references. Parameters are main.bicep's (described there).

param functionAppName string
param storageAccountName string
param keyVaultName string
param appInsightsName string
param haloWebhookCredentialName string
param haloClientCredentialName string
// Only tested for emptiness: the values live in Key Vault (keyvault.bicep).
@secure()
param haloWebhookPassword string
@secure()
param haloClientSecret string
// The URLs come checked (https) from main.bicep, which fails before anything is deployed.
param signl4WebhookUrlHttps string
param signl4TimeoutSeconds string
param signl4MaxAttempts string
param signl4RetryBudgetSeconds string
param signl4BackoffSeconds string
param haloBaseUrlHttps string
param haloWebhookUsername string
param haloClientId string
param haloAuthUrl string
param haloTenant string
param haloScope string
param haloNoteOutcome string
param haloNoteOutcomeId string
param haloAckStatusId string
param haloCloseStatusId string
param haloAssignOnAck string
param haloTimeoutSeconds string
param haloMaxAttempts string
param haloRetryBudgetSeconds string
param haloBackoffSeconds string
param relayResolvedStatuses string
param relayAckStatuses string
param relayPagePriorities string
param relayPageTeams string
param relayPageOnEvents string
param relayResolveOnDowngrade string
param relayEmergencyPriorities string
param relayRoutes string
param relayDryRun string
param relayInflightSeconds string
param relayMaxBatch string
param relayTestResolveSeconds string
param relayPublicUrl string
param signl4HeartbeatUrlHttps string
param relayHeartbeatSchedule string

// Declared in functionapp.bicep, storage.bicep, monitoring.bicep and keyvault.bicep.
resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource signl4TeamSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: keyVault
  name: 'signl4-team-secret'
}

resource signl4TeamSecretsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: keyVault
  name: 'signl4-team-secrets'
}

resource relayInboundTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: keyVault
  name: 'relay-inbound-token'
}

// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION /
// WEBSITE_RUN_FROM_PACKAGE here: runtime and package live in functionAppConfig (functionapp.bicep).
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
    HALO_WEBHOOK_PASSWORD: empty(haloWebhookPassword) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${haloWebhookCredentialName}/)'
    RELAY_INBOUND_TOKEN: '@Microsoft.KeyVault(SecretUri=${relayInboundTokenSecret.properties.secretUri})'
    HALO_CLIENT_ID: haloClientId
    HALO_CLIENT_SECRET: empty(haloClientSecret) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${haloClientCredentialName}/)'
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
    RELAY_PAGE_ON_EVENTS: relayPageOnEvents
    RELAY_RESOLVE_ON_DOWNGRADE: relayResolveOnDowngrade
    RELAY_EMERGENCY_PRIORITIES: relayEmergencyPriorities
    RELAY_DRY_RUN: relayDryRun
    RELAY_ROUTES: relayRoutes
    SIGNL4_TEAM_SECRETS: '@Microsoft.KeyVault(SecretUri=${signl4TeamSecretsSecret.properties.secretUri})'
    RELAY_INFLIGHT_SECONDS: relayInflightSeconds
    RELAY_MAX_BATCH: relayMaxBatch
    RELAY_TEST_RESOLVE_SECONDS: relayTestResolveSeconds
    RELAY_PUBLIC_URL: relayPublicUrl
    SIGNL4_HEARTBEAT_URL: signl4HeartbeatUrlHttps
    RELAY_HEARTBEAT_SCHEDULE: relayHeartbeatSchedule
  }
}
