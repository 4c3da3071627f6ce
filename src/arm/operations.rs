//! The one table of every ARM operation linkguard can issue, with the RBAC permission it needs.
//! The custom role in `infra/azure` is tested against this table: every permission granted is used,
//! every permission used is granted.

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

/// Distinct permissions, required ones first.
pub fn permissions(include_optional: bool) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for op in OPERATIONS
        .iter()
        .filter(|o| include_optional || !o.optional)
    {
        if !out.contains(&op.permission) {
            out.push(op.permission);
        }
    }
    out
}
