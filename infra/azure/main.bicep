// linkguard on Azure Functions (Flex Consumption, Linux, custom handler).
//
// Subscription-scope deployment: the custom role, its assignment and the Event Grid system topic's
// source are subscription-level things; everything else lives in one resource group (module app.bicep).
// The subscription this is deployed to is the governed subscription and the registry subscription.
//
//   az deployment sub create --location <region> --template-file infra/azure/main.bicep \
//     --parameters infra/azure/main.parameters.example.json
//
// See infra/README.md for the deployment order (deploy, publish the package, deploy again with
// deployEventSubscription=true) and for every choice made here.
targetScope = 'subscription'

@description('Azure region for every regional resource.')
param location string

@description('Resource group that holds linkguard. Created when missing.')
param resourceGroupName string = 'rg-linkguard'

@minLength(3)
@maxLength(11)
@description('Letters and digits (lower-cased); prefixes every resource name.')
param baseName string = 'linkguard'

@description('Grant Microsoft.Network/privateEndpoints/read and forward Microsoft.Network/privateEndpoints/write events. Needed when the policy uses match.subnets (endpoints must be resolved to learn their subnet); without it, connection events still arrive and the scheduled audit covers the rest.')
param includePrivateEndpointRead bool = false

@description('LINKGUARD_POLICY: policy file path inside the package, or a blob URL.')
param policyLocation string = 'linkguard.toml'

@description('LINKGUARD_ARM_ENDPOINT: ARM base URL (change for sovereign clouds).')
param armEndpoint string = 'https://management.azure.com'

@description('LINKGUARD_AUDIT_SCHEDULE: six-field NCRONTAB schedule of ScheduledAudit.')
param auditSchedule string = '0 0 */6 * * *'

@description('Create the Event Grid subscription to the ConnectionEvents function. Event Grid checks that the function exists, so the first deployment (before the package is published) sets this to false.')
param deployEventSubscription bool = false

@description('Resource group of the subscription system topic. Azure allows one system topic per source: when the subscription already has one, name its resource group and name here; the deployment then updates it (adds the dead-letter identity and tags) instead of failing.')
param systemTopicResourceGroup string = resourceGroupName

@description('Name of the subscription system topic (new, or the existing one).')
param systemTopicName string = '${baseName}-subscription-events'

@description('Storage redundancy of the host and reports account (geo-redundant: the reports are the audit trail).')
@allowed([
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('Flex Consumption runtime version of the custom handler stack (az functionapp list-flexconsumption-runtimes --location <region> --runtime custom).')
param customRuntimeVersion string = '1.0'

@minValue(40)
@maxValue(1000)
@description('Flex Consumption scale-out ceiling.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption instance memory (MB).')
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(30)
@description('Event Grid delivery attempts before dead-lettering.')
param maxDeliveryAttempts int = 10

@minValue(1)
@maxValue(1440)
@description('Event Grid event time to live (minutes); after it the next ScheduledAudit covers the change anyway.')
param eventTimeToLiveInMinutes int = 360

@minValue(30)
@maxValue(730)
@description('Log Analytics retention (days).')
param logRetentionDays int = 90

param tags object = {
  application: 'linkguard'
}

var identityName = '${baseName}-id'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module app 'modules/app.bicep' = {
  name: 'linkguard-app'
  scope: rg
  params: {
    location: location
    baseName: baseName
    identityName: identityName
    tags: tags
    policyLocation: policyLocation
    armEndpoint: armEndpoint
    auditSchedule: auditSchedule
    eventTopics: subscription().id
    storageSku: storageSku
    customRuntimeVersion: customRuntimeVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    logRetentionDays: logRetentionDays
  }
}

module events 'modules/events.bicep' = {
  name: 'linkguard-events'
  scope: resourceGroup(systemTopicResourceGroup)
  params: {
    tags: tags
    systemTopicName: systemTopicName
    topicSource: subscription().id
    deployEventSubscription: deployEventSubscription
    functionAppId: app.outputs.functionAppId
    storageAccountId: app.outputs.storageAccountId
    deadLetterContainerName: app.outputs.deadLetterContainerName
    eventGridIdentityId: app.outputs.eventGridIdentityId
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    // The same switch as the role's: endpoint events are forwarded only when they can be read.
    includePrivateEndpointRead: includePrivateEndpointRead
  }
}

// The governed scope is this subscription: linkguard's identity holds the custom role here.
module role 'modules/role.bicep' = {
  name: 'linkguard-role'
  params: {
    principalId: app.outputs.identityPrincipalId
    includePrivateEndpointRead: includePrivateEndpointRead
  }
}

output functionAppName string = app.outputs.functionAppName
output functionAppId string = app.outputs.functionAppId
output identityClientId string = app.outputs.identityClientId
output reportsContainerUrl string = app.outputs.reportsContainerUrl
output deploymentContainerUrl string = app.outputs.deploymentContainerUrl
output roleDefinitionId string = role.outputs.roleDefinitionId
