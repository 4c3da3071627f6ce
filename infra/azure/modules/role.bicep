// linkguard's custom role, assigned at the governed subscription.
//
// Deployed by ../main.bicep for the Functions host. On its own it grants the role to any principal,
// e.g. the service principal of the app registration the AWS Lambda host signs in as:
//   az deployment sub create --location <region> --template-file infra/azure/modules/role.bicep \
//     --parameters principalId=<service principal object id>
targetScope = 'subscription'

@description('Object id of the principal that receives the role (a managed identity or a service principal).')
param principalId string

@description('Grant Microsoft.Network/privateEndpoints/read. Needed only when the policy uses match.subnets (endpoints must be resolved to learn their subnet).')
param includePrivateEndpointRead bool = false

// The ARM actions linkguard performs: the permissions of the operations the ARM client issues
// (src/arm/client.rs CLIENT_OPERATIONS, looked up in src/arm/operations.rs; permissions()).
// tests/infra_role.rs holds these two lists against permissions(false) and permissions(true).
var linkguardRequiredActions = [
  // GET /subscriptions, for a policy whose scope.subscriptions is empty (every visible subscription).
  'Microsoft.Resources/subscriptions/read'
  'Microsoft.ContainerRegistry/registries/read'
  'Microsoft.ContainerRegistry/registries/write'
  'Microsoft.ContainerRegistry/registries/operationStatuses/read'
  'Microsoft.ContainerRegistry/registries/privateEndpointConnections/read'
  'Microsoft.ContainerRegistry/registries/privateEndpointConnections/write'
  'Microsoft.ContainerRegistry/registries/privateEndpointConnections/delete'
  'Microsoft.ContainerRegistry/registries/privateEndpointConnections/operationStatuses/read'
]
var linkguardOptionalActions = [
  'Microsoft.Network/privateEndpoints/read'
]

resource linkguardRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'linkguard-role')
  properties: {
    roleName: 'linkguard registry network governor (${subscription().subscriptionId})'
    description: 'Exactly the ARM actions linkguard performs (src/arm/operations.rs): read registries and their private endpoint connections, approve/reject/delete connections, patch network posture, poll long-running operations, list subscriptions.'
    type: 'CustomRole'
    permissions: [
      {
        actions: includePrivateEndpointRead ? concat(linkguardRequiredActions, linkguardOptionalActions) : linkguardRequiredActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// No `scope`: the assignment sits at the deployment's scope, the governed subscription.
resource linkguardRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, linkguardRole.id, principalId)
  properties: {
    roleDefinitionId: linkguardRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'linkguard: govern ACR private endpoint connections and network posture'
  }
}

output roleDefinitionId string = linkguardRole.id
