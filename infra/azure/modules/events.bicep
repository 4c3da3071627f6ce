// The registry subscription's Event Grid system topic and the subscription that hands connection
// events to the ConnectionEvents function (DESIGN 7.2). Deployed by ../main.bicep.

param tags object
param systemTopicName string
@description('The system topic source: the registry subscription, /subscriptions/{id}.')
param topicSource string
param deployEventSubscription bool
param functionAppId string
param storageAccountId string
param deadLetterContainerName string
param eventGridIdentityId string
param maxDeliveryAttempts int
param eventTimeToLiveInMinutes int
@description('Whether linkguard\'s role grants Microsoft.Network/privateEndpoints/read (main.bicep passes its own parameter).')
param includePrivateEndpointRead bool = false

// Events are hints: they name a registry to re-read; the scheduled audit is the path that never
// misses. These are the operations DESIGN 7.2 acts on. Values inside one advanced filter are OR-ed
// (separate filters would be AND-ed), so they share one StringBeginsWith filter; the comparison is
// case-insensitive. 'privateEndpointConnection' (no trailing s) also matches the
// privateEndpointConnectionProxies operations the network provider performs.
var registryOperationPrefixes = [
  'Microsoft.ContainerRegistry/registries/privateEndpointConnection'
  'Microsoft.ContainerRegistry/registries/write'
]
// A private endpoint's write is acted on by reading the endpoint (to learn which registries it
// targets), which needs Microsoft.Network/privateEndpoints/read. Without that permission every
// endpoint written anywhere in the subscription would cost an invocation and a 403, so the
// filter forwards these events only when the role grants the read.
var privateEndpointOperationPrefixes = [
  'Microsoft.Network/privateEndpoints/write'
]
var actedOnOperationPrefixes = includePrivateEndpointRead ? concat(registryOperationPrefixes, privateEndpointOperationPrefixes) : registryOperationPrefixes

// Subscription system topics are global resources.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${eventGridIdentityId}': {}
    }
  }
  properties: {
    source: topicSource
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource connectionEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deployEventSubscription) {
  parent: systemTopic
  name: 'linkguard-connection-events'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/ConnectionEvents'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
        'Microsoft.Resources.ResourceActionSuccess'
      ]
      enableAdvancedFilteringOnArrays: true
      advancedFilters: [
        {
          operatorType: 'StringBeginsWith'
          key: 'data.operationName'
          values: actedOnOperationPrefixes
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: eventGridIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output systemTopicId string = systemTopic.id
