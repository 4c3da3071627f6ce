// Resource-group part of the linkguard deployment: identities, storage (host + reports + dead
// letters + deployment package + fan-out queues), monitoring, the Flex Consumption plan and the
// function app.
// Deployed by ../main.bicep; every choice is explained in infra/README.md.

param location string
param baseName string
param identityName string
param tags object
param policyLocation string
param armEndpoint string
param auditSchedule string
@description('LINKGUARD_EVENT_TOPICS: the topic ids Event Grid stamps on events (for a subscription system topic: /subscriptions/{id}).')
param eventTopics string
@allowed([
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'
param customRuntimeVersion string
param maximumInstanceCount int
param instanceMemoryMB int
param logRetentionDays int

var suffix = uniqueString(resourceGroup().id)
var storageAccountName = take(toLower('${baseName}${suffix}'), 24)
var functionAppName = toLower('${baseName}-${suffix}')
var reportsContainerName = 'linkguard-reports'
var deadLetterContainerName = 'linkguard-deadletter'
var deploymentContainerName = 'app-package'
// The fan-out queue (docs/fanout.md): SubscriptionAudit's queue trigger listens on it
// (function/SubscriptionAudit/function.json), and the host moves failed messages to '<name>-poison'.
var fanOutQueueName = 'linkguard-audits'
var fanOutPoisonQueueName = '${fanOutQueueName}-poison'

// Built-in role definition ids.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

// linkguard's identity (AZURE_CLIENT_ID): ARM (custom role, assigned in main.bicep), the reports
// container and the fan-out queues. Nothing account-wide.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

// The Functions host's identity (AzureWebJobsStorage__clientId): its storage account (leases, keys,
// the deployment package), the queue trigger, telemetry. linkguard never signs in with it.
resource hostIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${baseName}-host-id'
  location: location
  tags: tags
}

// Event Grid's identity: writes dead letters, nothing else.
resource eventGridIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${baseName}-eventgrid-id'
  location: location
  tags: tags
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${baseName}-logs-${suffix}'
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
  name: '${baseName}-ai-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: The Flex Consumption app is not VNet-integrated in this template, so a Deny firewall would lock the Functions host out of its own storage. Access is identity-only instead: shared keys are off (allowSharedKeyAccess false), blob public access is off, and every principal is granted a data role explicitly.
  // checkov:skip=CKV_AZURE_43: The name is computed at deployment (lower-case baseName + uniqueString, cut to 24 characters), which checkov cannot evaluate; baseName is documented as 3-11 letters and digits and is lower-cased here, so the result is 3-24 lower-case letters and digits.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the public endpoint stays reachable for the non-VNet-integrated Functions host and for Event Grid dead-lettering; with shared-key and anonymous access disabled, only Entra principals holding a data role get in.
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
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

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: reportsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
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

resource fanOutQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: fanOutQueueName
}

resource fanOutPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: fanOutPoisonQueueName
}

// linkguard writes reports: Storage Blob Data Contributor on the reports container only.
resource reportsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportsContainer.id, identity.id, storageBlobDataContributor)
  scope: reportsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'linkguard: write health reports'
  }
}

// Fan-out enqueuer (linkguard, with its own credential): creates both queues when missing (Create
// Queue needs queues/write, which of the built-in queue data roles only Contributor holds), sends
// one message per subscription, peeks the poison queue when closing a run. Scoped to each queue.
resource fanOutQueueWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(fanOutQueue.id, identity.id, storageQueueDataContributor)
  scope: fanOutQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'linkguard: enqueue one audit per subscription (fan-out)'
  }
}

resource fanOutPoisonReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(fanOutPoisonQueue.id, identity.id, storageQueueDataContributor)
  scope: fanOutPoisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'linkguard: create and peek the fan-out poison queue'
  }
}

// Functions host requirement (identity-based AzureWebJobsStorage: timer leases, host keys; the Flex
// deployment package): blob owner on the account, held by the host's identity only.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostIdentity.id, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host: AzureWebJobsStorage blobs (leases, secrets) and the deployment package'
  }
}

// The host's queue trigger (SubscriptionAudit) reads and deletes messages and moves poisoned ones:
// Contributor on the two queues it touches, not the account.
resource hostQueueProcessor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(fanOutQueue.id, hostIdentity.id, storageQueueDataContributor)
  scope: fanOutQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host: SubscriptionAudit queue trigger'
  }
}

resource hostPoisonQueueWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(fanOutPoisonQueue.id, hostIdentity.id, storageQueueDataContributor)
  scope: fanOutPoisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host: move poisoned SubscriptionAudit messages'
  }
}

// Application Insights with local auth off takes telemetry from Entra principals with this role.
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, hostIdentity.id, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host: send telemetry with Entra auth'
  }
}

// Event Grid writes undeliverable events here.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventGridIdentity.id, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: eventGridIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Event Grid: dead-letter undeliverable connection events'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy on Flex Consumption is a regional opt-in; linkguard tolerates a zone outage (Event Grid retries, the next audit reconciles), so it is left off to keep every Flex region deployable.
  name: '${baseName}-plan-${suffix}'
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

// App settings: every setting of DESIGN 3.0 is either set below or listed on the next line, with
// the reason it is not set on Azure (tests/infra_functions.rs reads both).
// linkguard-settings-not-set: LINKGUARD_STATIC_TOKEN LINKGUARD_ARM_CA_CERT LINKGUARD_WEBHOOK_SECRET
// - LINKGUARD_STATIC_TOKEN and LINKGUARD_ARM_CA_CERT exist for the sandbox only: on Azure the managed
//   identity gets real tokens and ARM presents a publicly trusted certificate.
// - LINKGUARD_WEBHOOK_SECRET protects raw webhooks (Lambda, serve reached directly); here the
//   Functions host authenticates every caller with function keys before linkguard sees a request.
// FUNCTIONS_WORKER_RUNTIME is not an app setting on Flex Consumption: functionAppConfig.runtime.name
// ('custom') replaces it.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the function over its public endpoint and operators call ManualAudit; both are authenticated by function keys (Event Grid uses the eventgrid_extension system key), and nothing else is exposed.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per function; a minimum would mean paid always-ready instances for a job that runs every few hours. Missed events are covered by Event Grid retries and the scheduled audit.
  // checkov:skip=CKV_AZURE_17: Client certificates cannot be presented by Event Grid deliveries; function keys authenticate callers.
  // checkov:skip=CKV_AZURE_213: The Functions host has no app-level health endpoint to configure on Flex Consumption; the host probes the custom handler itself (GET / on the handler port).
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
      '${hostIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      cors: {
        allowedOrigins: []
      }
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: hostIdentity.properties.clientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${hostIdentity.properties.clientId};Authorization=AAD'
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identity.properties.clientId
        }
        {
          name: 'LINKGUARD_POLICY'
          value: policyLocation
        }
        {
          name: 'LINKGUARD_ARM_ENDPOINT'
          value: armEndpoint
        }
        {
          name: 'LINKGUARD_CREDENTIAL'
          value: 'managed-identity'
        }
        {
          name: 'LINKGUARD_REPORTS'
          value: '${storage.properties.primaryEndpoints.blob}${reportsContainerName}'
        }
        {
          name: 'LINKGUARD_EVENT_TOPICS'
          value: eventTopics
        }
        {
          name: 'LINKGUARD_AUDIT_SCHEDULE'
          value: auditSchedule
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: hostIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: customRuntimeVersion
      }
    }
  }
  dependsOn: [
    hostBlobOwner
    hostQueueProcessor
    hostPoisonQueueWriter
    telemetryPublisher
    deploymentContainer
  ]
}

// No publishing with user names and passwords: deployments go through Entra (az / func CLI).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output functionAppName string = functionApp.name
output functionAppId string = functionApp.id
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output hostIdentityPrincipalId string = hostIdentity.properties.principalId
output eventGridIdentityId string = eventGridIdentity.id
output storageAccountId string = storage.id
output deadLetterContainerName string = deadLetterContainerName
output reportsContainerUrl string = '${storage.properties.primaryEndpoints.blob}${reportsContainerName}'
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
