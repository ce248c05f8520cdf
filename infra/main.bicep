// HaloPSA -> SIGNL4 relay: everything the function app needs, in one resource group.
//   azd up   (azure.yaml at the repo root; parameters from infra/main.parameters.json)
//   az deployment group create -g <rg> -f infra/main.bicep -p environmentName=<name> signl4TeamSecret=<secret>
// This file takes the parameters and composes infra/modules/*.bicep, which declare every resource
// directly (no registry modules), so the offline checks (.ci/checkov.sh, tests/infra) see all of
// it. Keep to syntax pycep (checkov's parser) reads: no nullable types, user-defined functions or
// types, imports, union(), `?.` or `??`; write `!(a && b)`, not `!a || !b` (pycep: `!(a || !b)`).

targetScope = 'resourceGroup'

@description('Short name of this deployment (azd environment name); used in resource names.')
@minLength(1)
@maxLength(30)
param environmentName string
@description('Azure region; defaults to the resource group region. Must offer Flex Consumption.')
param location string = resourceGroup().location
@description('Python version of the Flex Consumption runtime. 3.10 is not offered: end of life since October 2026.')
@allowed(['3.11', '3.12'])
param pythonVersion string = '3.11'
@description('Memory per instance in MB (Flex Consumption sizes). 512 was rejected by ARM in some regions until March 2026 (Azure/azure-rest-api-specs#40898); 2048 is accepted everywhere.')
@allowed([512, 2048, 4096])
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

// Alerting (infra only, not app settings): log alert rules on Application Insights for the
// relay's own failures, sent to an action group (e-mail and/or a SIGNL4 webhook).
@description('Create the alert rules: an event that never reached SIGNL4 (poison), 5xx answers, and events queued longer than alertBacklogMinutes. Alerts show in Azure Monitor; they notify someone when alertEmailAddress or alertSignl4WebhookUrl is set.')
param alertsEnabled bool = true
@description('E-mail address the alerts are sent to; empty: no e-mail.')
param alertEmailAddress string = ''
@description('SIGNL4 webhook URL the alerts are sent to (https://connect.signl4.com/webhook/<team secret>), so the on-call team hears when the relay itself fails; empty: none. Secure because it contains a team secret; Azure keeps it in the action group, readable by anyone with read access to that resource. https:// only (the deployment fails otherwise).')
@secure()
param alertSignl4WebhookUrl string = ''
@description('How often each alert rule runs, and the window it looks at (ISO 8601). PT1M costs more per rule.')
@allowed(['PT1M', 'PT5M', 'PT10M', 'PT15M', 'PT30M', 'PT1H'])
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
@description('Silence alert: hours with no HaloPSA request reaching the relay (POST /api/halopsa or /api/webhook) before it fires (1-48); 0 (the default): no rule. Turn it on for a desk that always has traffic: HaloPSA stops calling when it disables a failing webhook.')
@minValue(0)
@maxValue(48)
param haloSilenceHours int = 0

// Secrets: stored in Key Vault, handed to the app as Key Vault references, never output.
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

// Relay settings (shared/settings.py RelaySettings). Defaults are the code's defaults; the
// template must provide every setting the code reads (tests/infra/test_infra.py checks both).
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
@description('Comma-separated Halo event names (SLA warnings) that page an open ticket without an open alert.')
param relayPageOnEvents string = ''
@description('true: a paged ticket whose priority or team no longer passes the paging filters resolves its alert.')
@allowed(['true', 'false'])
param relayResolveOnDowngrade string = 'false'
@description('Routing rules (JSON array): which SIGNL4 team each ticket pages, with its category, quiet hours and maintenance windows (README.md, Routing). Empty: every ticket pages the default team. Each named target needs its secret in signl4TeamSecrets.')
param relayRoutes string = ''
@description('true: build and log the SIGNL4 payload but do not send it.')
@allowed(['true', 'false'])
param relayDryRun string = 'false'
@description('Seconds a claim or sending mark counts as a live sender; must exceed host.json functionTimeout (120 s).')
param relayInflightSeconds string = '150'
@description('Most events one request (a HaloPSA batch) may carry; a longer array is refused whole with 413 batch_too_large. 1 to 150.')
param relayMaxBatch string = '100'
@description('Seconds `python -m shared send-test` waits before resolving its test alert (0-3600).')
param relayTestResolveSeconds string = '60'
@description('Public URL of the relay as HaloPSA calls it (a custom domain or a proxy); its host picks out the webhook of the relay among those in Halo (check --live, the heartbeat). Empty: the host name of the app (WEBSITE_HOSTNAME).')
param relayPublicUrl string = ''
@description('SIGNL4 heartbeat URL (Integrations > Gallery > Heartbeat, https://connect.signl4.com/apps/<id>); the heartbeat function calls it while the relay is healthy. Empty: no heartbeat. Empty or https:// (the deployment fails otherwise).')
param signl4HeartbeatUrl string = ''
@description('NCRONTAB schedule of the heartbeat function (six fields, seconds first).')
param relayHeartbeatSchedule string = '0 */5 * * * *'

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  app: 'halopsa-signl4-relay'
}
// The optional secrets exist only when given: the app settings build their Key Vault references
// from the vault and these names instead of reading a conditional resource (BCP318). No
// 'secret'/'password' in a module parameter's name: the linter (bicepconfig.json) wants those secure.
var haloWebhookCredentialName = 'halo-webhook-password'
var haloClientCredentialName = 'halo-client-secret'
// URL parameters are https only (the app enforces the same, shared/settings.py). pycep cannot read
// fail(), so the wrong branch calls int() on a sentence: ARM evaluates only the branch the condition
// picks, and fails the deployment before it deploys anything, naming the parameter.
var signl4WebhookUrlHttps = startsWith(toLower(signl4WebhookUrl), 'https://') ? signl4WebhookUrl : string(int('signl4WebhookUrl must start with https://'))
var signl4HeartbeatUrlHttps = (empty(signl4HeartbeatUrl) || startsWith(toLower(signl4HeartbeatUrl), 'https://')) ? signl4HeartbeatUrl : string(int('signl4HeartbeatUrl must be empty or start with https://'))
var haloBaseUrlHttps = (empty(haloBaseUrl) || startsWith(toLower(haloBaseUrl), 'https://')) ? haloBaseUrl : string(int('haloBaseUrl must be empty or start with https://'))

// Order: storage, vault and monitoring at once; the app after storage; its roles after all four;
// its settings last, so the host's first start can read storage and resolve Key Vault references.
module monitoring './modules/monitoring.bicep' = {
  name: '${environmentName}-monitoring'
  params: {
    location: location
    tags: tags
    environmentName: environmentName
    resourceToken: resourceToken
    logRetentionDays: logRetentionDays
    alertsEnabled: alertsEnabled
    alertEmailAddress: alertEmailAddress
    alertSignl4WebhookUrl: alertSignl4WebhookUrl
    alertEvaluationFrequency: alertEvaluationFrequency
    alertServerErrorPercent: alertServerErrorPercent
    alertServerErrorMinRequests: alertServerErrorMinRequests
    alertBacklogMinutes: alertBacklogMinutes
    haloSilenceHours: haloSilenceHours
  }
}
module storage './modules/storage.bicep' = {
  name: '${environmentName}-storage'
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}
module vault './modules/keyvault.bicep' = {
  name: '${environmentName}-keyvault'
  params: {
    location: location
    tags: tags
    environmentName: environmentName
    resourceToken: resourceToken
    keyVaultSoftDeleteRetentionDays: keyVaultSoftDeleteRetentionDays
    haloWebhookCredentialName: haloWebhookCredentialName
    haloClientCredentialName: haloClientCredentialName
    signl4TeamSecret: signl4TeamSecret
    haloWebhookPassword: haloWebhookPassword
    relayInboundToken: relayInboundToken
    haloClientSecret: haloClientSecret
    signl4TeamSecrets: signl4TeamSecrets
  }
}
module app './modules/functionapp.bicep' = {
  name: '${environmentName}-functionapp'
  params: {
    location: location
    tags: tags
    environmentName: environmentName
    resourceToken: resourceToken
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    storageAccountName: storage.outputs.storageAccountName
    deploymentContainerName: storage.outputs.deploymentContainerName
  }
}
module roles './modules/roles.bicep' = {
  name: '${environmentName}-roles'
  params: {
    functionAppName: app.outputs.functionAppName
    storageAccountName: storage.outputs.storageAccountName
    keyVaultName: vault.outputs.keyVaultName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}
module settings './modules/appsettings.bicep' = {
  name: '${environmentName}-appsettings'
  params: {
    functionAppName: app.outputs.functionAppName
    storageAccountName: storage.outputs.storageAccountName
    keyVaultName: vault.outputs.keyVaultName
    appInsightsName: monitoring.outputs.appInsightsName
    haloWebhookCredentialName: haloWebhookCredentialName
    haloClientCredentialName: haloClientCredentialName
    haloWebhookPassword: haloWebhookPassword
    haloClientSecret: haloClientSecret
    signl4WebhookUrlHttps: signl4WebhookUrlHttps
    haloBaseUrlHttps: haloBaseUrlHttps
    signl4HeartbeatUrlHttps: signl4HeartbeatUrlHttps
    signl4TimeoutSeconds: signl4TimeoutSeconds
    signl4MaxAttempts: signl4MaxAttempts
    signl4RetryBudgetSeconds: signl4RetryBudgetSeconds
    signl4BackoffSeconds: signl4BackoffSeconds
    haloWebhookUsername: haloWebhookUsername
    haloClientId: haloClientId
    haloAuthUrl: haloAuthUrl
    haloTenant: haloTenant
    haloScope: haloScope
    haloNoteOutcome: haloNoteOutcome
    haloNoteOutcomeId: haloNoteOutcomeId
    haloAckStatusId: haloAckStatusId
    haloCloseStatusId: haloCloseStatusId
    haloAssignOnAck: haloAssignOnAck
    haloTimeoutSeconds: haloTimeoutSeconds
    haloMaxAttempts: haloMaxAttempts
    haloRetryBudgetSeconds: haloRetryBudgetSeconds
    haloBackoffSeconds: haloBackoffSeconds
    relayResolvedStatuses: relayResolvedStatuses
    relayAckStatuses: relayAckStatuses
    relayPagePriorities: relayPagePriorities
    relayPageTeams: relayPageTeams
    relayPageOnEvents: relayPageOnEvents
    relayResolveOnDowngrade: relayResolveOnDowngrade
    relayEmergencyPriorities: relayEmergencyPriorities
    relayRoutes: relayRoutes
    relayDryRun: relayDryRun
    relayInflightSeconds: relayInflightSeconds
    relayMaxBatch: relayMaxBatch
    relayTestResolveSeconds: relayTestResolveSeconds
    relayPublicUrl: relayPublicUrl
    relayHeartbeatSchedule: relayHeartbeatSchedule
  }
  dependsOn: [roles]
}

// Outputs: names and URLs only. No key, secret, connection string or list*() result: outputs are
// stored in the deployment history, readable by anyone with Reader. The URL commands print a URL
// carrying a function's own key (never the host key, which opens every function): run them after
// the code is published (the keys exist only then), do not log their output.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output FUNCTION_APP_HOSTNAME string = app.outputs.defaultHostName
output KEY_VAULT_NAME string = vault.outputs.keyVaultName
output STORAGE_ACCOUNT_NAME string = storage.outputs.storageAccountName
@description('HaloPSA\'s webhook URL without a key: HALO_WEBHOOK_URL_COMMAND prints it with the halopsa function\'s own key.')
output HALOPSA_WEBHOOK_URL string = 'https://${app.outputs.defaultHostName}/api/halopsa'
@description('SIGNL4 guide migration: the custom integration\'s base URL (replaces https://connect.signl4.com/webhook/); the method path keeps its query string, with the inbound token in place of the team secret.')
output SIGNL4_GUIDE_BASE_URL string = 'https://${app.outputs.defaultHostName}/api/webhook/'
@description('Prints the inbound token for the method path (needs Key Vault Secrets User or Officer on the vault).')
output FETCH_RELAY_INBOUND_TOKEN_COMMAND string = 'az keyvault secret show --vault-name ${vault.outputs.keyVaultName} --name relay-inbound-token --query value -o tsv'
@description('Prints HaloPSA\'s webhook URL with the halopsa function\'s own key (?code=...), which opens /api/halopsa only. Run it after the code is published.')
output HALO_WEBHOOK_URL_COMMAND string = 'az functionapp function keys list -g ${resourceGroup().name} -n ${app.outputs.functionAppName} --function-name halopsa --query "join(\'\', [\'https://${app.outputs.defaultHostName}/api/halopsa?code=\', default])" -o tsv'
@description('Prints SIGNL4\'s outbound webhook URL (two-way sync) with the signl4 function\'s own key (?code=...), which opens /api/signl4 only. Run it after the code is published.')
output SIGNL4_WEBHOOK_URL_COMMAND string = 'az functionapp function keys list -g ${resourceGroup().name} -n ${app.outputs.functionAppName} --function-name signl4 --query "join(\'\', [\'https://${app.outputs.defaultHostName}/api/signl4?code=\', default])" -o tsv'
@description('Deprecated, use HALO_WEBHOOK_URL_COMMAND. Prints the halopsa function\'s own key (no longer the host key, which opens every function).')
output FETCH_FUNCTION_CODE_COMMAND string = 'az functionapp function keys list -g ${resourceGroup().name} -n ${app.outputs.functionAppName} --function-name halopsa --query default -o tsv'
