// Monitoring: Log Analytics + workspace-based Application Insights (Entra-only ingestion), and
// the alerting: three log alert rules on Application Insights over the relay's own log lines
// (shared/entry/queues.py, shared/entry/signl4_webhook.py) and request telemetry, and an action
// group when a receiver is given.
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
param logRetentionDays int
param alertsEnabled bool
param alertEmailAddress string
@secure()
param alertSignl4WebhookUrl string
param alertEvaluationFrequency string
param alertServerErrorPercent int
param alertServerErrorMinRequests int
param alertBacklogMinutes int
param haloSilenceHours int

var logAnalyticsName = 'log-${environmentName}-${resourceToken}'
var appInsightsName = 'appi-${environmentName}-${resourceToken}'

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

// Halo's calls are request telemetry (never sampled) of the two HTTP functions Halo calls:
// `halopsa` and `webhook`. count() over no rows is one row of 0: the query returns a row, and
// the rule fires, when none arrived in the last haloSilenceHours (a webhook Halo disabled).
var haloSilenceQuery = format('''
let silence = {0}h;
requests
| where timestamp > ago(silence)
| where name in ("halopsa", "webhook")
| summarize calls = count()
| where calls == 0
''', haloSilenceHours)

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

resource haloSilenceAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertsEnabled && haloSilenceHours > 0) {
  name: 'alert-halo-silent-${environmentName}-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'HaloPSA relay ${environmentName}: HaloPSA stopped calling'
    description: 'No HaloPSA request reached the relay in haloSilenceHours: HaloPSA may have disabled its webhook after failed deliveries (check --live names it). Looks back two days.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alertEvaluationFrequency
    windowSize: alertEvaluationFrequency
    // The query looks back haloSilenceHours itself, past the evaluation window.
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: haloSilenceQuery
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

output appInsightsName string = appInsightsName
