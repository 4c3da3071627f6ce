//! The one table of every ARM operation linkguard knows, with the RBAC permission it needs.
//!
//! Two readers: the ARM client issues the operations it lists in
//! [`CLIENT_OPERATIONS`](super::client::CLIENT_OPERATIONS), and the sandbox (`src/sim/routing.rs`)
//! serves every operation here, a few more than the client issues (the list calls SDK clients make).
//! The custom role in `infra/azure` is [`permissions`], derived from the client's operations only
//! and tested against the role (tests/infra_role.rs): every permission the client needs is granted,
//! nothing more.

/// api-version for Microsoft.ContainerRegistry calls.
pub const ACR_API_VERSION: &str = "2025-11-01";
/// api-version for Microsoft.Network private endpoint reads.
pub const NETWORK_API_VERSION: &str = "2025-07-01";
/// api-version for `GET /subscriptions`.
pub const SUBSCRIPTIONS_API_VERSION: &str = "2022-12-01";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    pub name: &'static str,
    pub method: &'static str,
    /// Path template; `{R}` stands for `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}`.
    pub path: &'static str,
    /// The RBAC action the caller needs.
    pub permission: &'static str,
    /// Needed only when the policy uses `match.subnets` (endpoints must be resolved).
    pub optional: bool,
}

macro_rules! op {
    ($name:literal, $method:literal, $path:expr, $perm:literal) => {
        Operation {
            name: $name,
            method: $method,
            path: $path,
            permission: $perm,
            optional: false,
        }
    };
    ($name:literal, $method:literal, $path:expr, $perm:literal, optional) => {
        Operation {
            name: $name,
            method: $method,
            path: $path,
            permission: $perm,
            optional: true,
        }
    };
}

pub const OPERATIONS: &[Operation] = &[
    // DESIGN 3.0: an empty `scope.subscriptions` means every subscription the identity can list,
    // which takes GET /subscriptions and so Microsoft.Resources/subscriptions/read.
    op!(
        "list-subscriptions",
        "GET",
        "/subscriptions",
        "Microsoft.Resources/subscriptions/read"
    ),
    op!(
        "list-registries",
        "GET",
        "/subscriptions/{s}/providers/Microsoft.ContainerRegistry/registries",
        "Microsoft.ContainerRegistry/registries/read"
    ),
    op!(
        "list-registries-by-group",
        "GET",
        "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries",
        "Microsoft.ContainerRegistry/registries/read"
    ),
    op!(
        "get-registry",
        "GET",
        "{R}",
        "Microsoft.ContainerRegistry/registries/read"
    ),
    op!(
        "patch-registry",
        "PATCH",
        "{R}",
        "Microsoft.ContainerRegistry/registries/write"
    ),
    op!(
        "registry-operation-status",
        "GET",
        "{R}/operationStatuses/{id}",
        "Microsoft.ContainerRegistry/registries/operationStatuses/read"
    ),
    // `ArmClient::list_connections`; audits read a registry's connections from the registry
    // (get-registry) instead, one call fewer.
    op!(
        "list-connections",
        "GET",
        "{R}/privateEndpointConnections",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/read"
    ),
    op!(
        "get-connection",
        "GET",
        "{R}/privateEndpointConnections/{c}",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/read"
    ),
    op!(
        "put-connection",
        "PUT",
        "{R}/privateEndpointConnections/{c}",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write"
    ),
    op!(
        "delete-connection",
        "DELETE",
        "{R}/privateEndpointConnections/{c}",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/delete"
    ),
    op!(
        "connection-operation-status",
        "GET",
        "{R}/privateEndpointConnections/{c}/operationStatuses/{id}",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/operationStatuses/read"
    ),
    // Served by the sandbox for SDK clients; linkguard's client never issues it, so the role does
    // not grant privateLinkResources/read.
    op!(
        "list-private-link-resources",
        "GET",
        "{R}/privateLinkResources",
        "Microsoft.ContainerRegistry/registries/privateLinkResources/read"
    ),
    op!(
        "get-private-endpoint",
        "GET",
        "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/privateEndpoints/{pe}",
        "Microsoft.Network/privateEndpoints/read",
        optional
    ),
];

/// The operations the ARM client issues ([`CLIENT_OPERATIONS`](super::client::CLIENT_OPERATIONS)),
/// in table order.
pub fn client_operations() -> impl Iterator<Item = &'static Operation> {
    OPERATIONS.iter().filter(|o| {
        super::client::CLIENT_OPERATIONS
            .iter()
            .any(|(name, method)| o.name == *name && o.method == *method)
    })
}

/// Distinct permissions of the client's operations, required ones first: what the custom role
/// grants (optional ones only with `includePrivateEndpointRead`).
pub fn permissions(include_optional: bool) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for op in client_operations().filter(|o| include_optional || !o.optional) {
        if !out.contains(&op.permission) {
            out.push(op.permission);
        }
    }
    out
}
