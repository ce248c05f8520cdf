// Key Vault: RBAC only, soft delete + purge protection; holds the relay's secrets, which the
// app reads as Key Vault references (appsettings.bicep). Secrets are never output.

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
param keyVaultSoftDeleteRetentionDays int
// Names of the optional secrets (main.bicep): the app settings build their references from them.
param haloWebhookCredentialName string
param haloClientCredentialName string
@secure()
param signl4TeamSecret string
@secure()
param haloWebhookPassword string
@secure()
param relayInboundToken string
@secure()
param haloClientSecret string
@secure()
param signl4TeamSecrets string

var keyVaultName = 'kv-${resourceToken}'

// The inbound token when none is given: a name-based hash (guid()) of the team secret, so nobody
// computes it without that secret and every redeploy writes the same value. A newGuid() default
// would store a new token on each deployment and lock Halo out (README: Moving from SIGNL4's guide).
var relayInboundTokenValue = empty(relayInboundToken) ? guid(signl4TeamSecret, resourceGroup().id, environmentName, 'relay-inbound-token') : relayInboundToken

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
  name: haloWebhookCredentialName
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
  name: haloClientCredentialName
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

output keyVaultName string = keyVaultName
