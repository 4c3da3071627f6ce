#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The custom role in infra/azure/modules/role.bicep grants exactly the ARM actions linkguard
//! performs: the permissions (src/arm/operations.rs) of the operations the ARM client issues
//! (src/arm/client.rs `CLIENT_OPERATIONS`). Every permission the code needs is granted, nothing
//! more, in both branches of the `includePrivateEndpointRead` parameter.

#[path = "infra/bicep.rs"]
mod bicep;

use std::collections::BTreeSet;

use linkguard::arm::client::CLIENT_OPERATIONS;
use linkguard::arm::operations::{OPERATIONS, client_operations, permissions};

const ROLE: &str = "infra/azure/modules/role.bicep";
const MAIN: &str = "infra/azure/main.bicep";
const APP: &str = "infra/azure/modules/app.bicep";
const ROLE_DEFINITION: &str = "resource linkguardRole 'Microsoft.Authorization/roleDefinitions@";

/// The role's `actions` for one value of `includePrivateEndpointRead`, evaluated from the Bicep.
fn granted_actions(role_file: &str, include_private_endpoint_read: bool) -> Vec<String> {
    let required = bicep::string_list(bicep::block_after(
        role_file,
        "var linkguardRequiredActions =",
    ));
    let optional = bicep::string_list(bicep::block_after(
        role_file,
        "var linkguardOptionalActions =",
    ));
    let role = bicep::block_after(role_file, ROLE_DEFINITION);
    // The only expression shape this test knows how to evaluate; a different one must be taught here.
    assert_eq!(
        bicep::line_value(role, "actions"),
        "includePrivateEndpointRead ? concat(linkguardRequiredActions, linkguardOptionalActions) : linkguardRequiredActions",
        "{ROLE}: the role's actions expression changed"
    );
    if include_private_endpoint_read {
        required.into_iter().chain(optional).collect()
    } else {
        required
    }
}

fn assert_same_set(granted: &[String], needed: &[&str], branch: &str) {
    let granted_set: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    assert_eq!(
        granted_set.len(),
        granted.len(),
        "{ROLE} ({branch}): an action is listed twice: {granted:?}"
    );
    let needed_set: BTreeSet<&str> = needed.iter().copied().collect();
    let missing: Vec<_> = needed_set.difference(&granted_set).collect();
    let extra: Vec<_> = granted_set.difference(&needed_set).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{ROLE} ({branch}): role differs from src/arm/operations.rs; missing {missing:?}, not used by any operation {extra:?}"
    );
}

#[test]
fn role_grants_exactly_the_required_permissions_without_private_endpoint_read() {
    let granted = granted_actions(&bicep::read(ROLE), false);
    assert_same_set(
        &granted,
        &permissions(false),
        "includePrivateEndpointRead=false",
    );
}

#[test]
fn role_grants_exactly_all_permissions_with_private_endpoint_read() {
    let granted = granted_actions(&bicep::read(ROLE), true);
    assert_same_set(
        &granted,
        &permissions(true),
        "includePrivateEndpointRead=true",
    );
}

#[test]
fn optional_actions_are_exactly_the_optional_operations() {
    let role_file = bicep::read(ROLE);
    let optional = bicep::string_list(bicep::block_after(
        &role_file,
        "var linkguardOptionalActions =",
    ));
    let table: BTreeSet<&str> = client_operations()
        .filter(|o| o.optional)
        .map(|o| o.permission)
        .collect();
    let listed: BTreeSet<&str> = optional.iter().map(String::as_str).collect();
    assert_eq!(
        listed, table,
        "{ROLE}: linkguardOptionalActions must be the permissions of the optional operations"
    );
    // The optional grant is off unless asked for, and main.bicep passes its parameter through.
    for file in [ROLE, MAIN] {
        assert!(
            bicep::read(file)
                .lines()
                .any(|l| l.trim() == "param includePrivateEndpointRead bool = false"),
            "{file}: includePrivateEndpointRead must be a bool parameter defaulting to false"
        );
    }
    let main = bicep::read(MAIN);
    let module = bicep::block_after(&main, "module role 'modules/role.bicep'");
    assert_eq!(
        bicep::line_value(module, "includePrivateEndpointRead"),
        "includePrivateEndpointRead"
    );
}

#[test]
fn the_role_follows_the_clients_operations_not_the_whole_table() {
    // Every operation the client issues is in the table, with the same method.
    for (name, method) in CLIENT_OPERATIONS {
        assert!(
            client_operations().any(|o| o.name == *name && o.method == *method),
            "src/arm/client.rs issues {method} {name}, which src/arm/operations.rs does not list"
        );
    }
    assert_eq!(client_operations().count(), CLIENT_OPERATIONS.len());
    // Table entries only the sandbox serves grant nothing unless a client operation needs the
    // same permission.
    let needed = permissions(true);
    for op in OPERATIONS {
        let issued = client_operations().any(|c| c.name == op.name);
        assert_eq!(
            needed.contains(&op.permission),
            issued || client_operations().any(|c| c.permission == op.permission),
            "{}: {}",
            op.name,
            op.permission
        );
    }
    assert!(!needed.contains(&"Microsoft.ContainerRegistry/registries/privateLinkResources/read"));
    // An empty scope.subscriptions (DESIGN 3.0) lists subscriptions.
    assert!(permissions(false).contains(&"Microsoft.Resources/subscriptions/read"));
}

#[test]
fn private_endpoint_events_are_forwarded_only_when_private_endpoints_can_be_read() {
    const EVENTS: &str = "infra/azure/modules/events.bicep";
    let events = bicep::read(EVENTS);
    let role_file = bicep::read(ROLE);
    // The events module forwards these only under includePrivateEndpointRead
    // (tests/infra_functions.rs evaluates the filter in both branches) ...
    assert!(
        events.lines().any(|l| l.trim()
            == "var actedOnOperationPrefixes = includePrivateEndpointRead ? concat(registryOperationPrefixes, privateEndpointOperationPrefixes) : registryOperationPrefixes"),
        "{EVENTS}: privateEndpointOperationPrefixes must depend on includePrivateEndpointRead"
    );
    // ... and each of those events is handled by reading the endpoint, which the role grants
    // under the same switch, never unconditionally.
    let optional = bicep::string_list(bicep::block_after(
        &role_file,
        "var linkguardOptionalActions =",
    ));
    let required = bicep::string_list(bicep::block_after(
        &role_file,
        "var linkguardRequiredActions =",
    ));
    let forwarded = bicep::string_list(bicep::block_after(
        &events,
        "var privateEndpointOperationPrefixes =",
    ));
    assert!(!forwarded.is_empty());
    for operation in &forwarded {
        let read = operation
            .strip_suffix("/write")
            .map(|t| format!("{t}/read"))
            .unwrap_or_else(|| panic!("{EVENTS}: {operation} is not a write"));
        assert!(
            optional.contains(&read) && !required.contains(&read),
            "{operation} events need {read}, which must be exactly the optional grant"
        );
    }
    let registry = bicep::string_list(bicep::block_after(
        &events,
        "var registryOperationPrefixes =",
    ));
    assert!(
        registry
            .iter()
            .all(|p| !p.starts_with("Microsoft.Network/")),
        "{EVENTS}: network operations belong in privateEndpointOperationPrefixes"
    );
    // main.bicep drives both modules with its one parameter.
    let main = bicep::read(MAIN);
    for module in [
        "module role 'modules/role.bicep'",
        "module events 'modules/events.bicep'",
    ] {
        assert_eq!(
            bicep::line_value(
                bicep::block_after(&main, module),
                "includePrivateEndpointRead"
            ),
            "includePrivateEndpointRead",
            "{MAIN}: {module} must get includePrivateEndpointRead"
        );
    }
    assert!(
        events
            .lines()
            .any(|l| l.trim() == "param includePrivateEndpointRead bool = false"),
        "{EVENTS}: includePrivateEndpointRead must default to false, like the role's"
    );
}

#[test]
fn role_has_no_other_permissions_and_is_assignable_only_here() {
    let role_file = bicep::read(ROLE);
    let role = bicep::block_after(&role_file, ROLE_DEFINITION);
    for key in ["notActions", "dataActions", "notDataActions"] {
        assert_eq!(
            bicep::line_value(role, key),
            "[]",
            "{ROLE}: {key} must be empty"
        );
    }
    let permissions_block = bicep::block_after(role, "permissions:");
    assert_eq!(
        permissions_block.matches('{').count(),
        1,
        "{ROLE}: the role must hold a single permission entry"
    );
    let scopes = bicep::block_after(role, "assignableScopes:");
    let lines: Vec<&str> = scopes
        .trim_start_matches('[')
        .trim_end_matches(']')
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines, ["subscription().id"], "{ROLE}: assignableScopes");
}

#[test]
fn role_is_assigned_to_linkguards_identity_at_the_governed_subscription() {
    let role_file = bicep::read(ROLE);
    let main = bicep::read(MAIN);
    for (file, text) in [(ROLE, &role_file), (MAIN, &main)] {
        assert!(
            text.lines()
                .any(|l| l.trim() == "targetScope = 'subscription'"),
            "{file}: must be a subscription-scope deployment"
        );
    }
    let assignment = bicep::block_after(
        &role_file,
        "resource linkguardRoleAssignment 'Microsoft.Authorization/roleAssignments@",
    );
    assert_eq!(
        bicep::line_value(assignment, "roleDefinitionId"),
        "linkguardRole.id"
    );
    assert_eq!(bicep::line_value(assignment, "principalId"), "principalId");
    // No `scope:` means the deployment's scope, the subscription.
    assert!(
        !bicep::has_key(assignment, "scope"),
        "{ROLE}: the role assignment must sit at the subscription"
    );
    // main.bicep deploys the role module at its own (subscription) scope for the app's identity.
    let module = bicep::block_after(&main, "module role 'modules/role.bicep'");
    assert!(
        !bicep::has_key(module, "scope"),
        "{MAIN}: the role module must deploy at the subscription"
    );
    assert_eq!(
        bicep::line_value(module, "principalId"),
        "app.outputs.identityPrincipalId"
    );

    // The principal is the user-assigned identity the function app runs as and signs in with.
    let app = bicep::read(APP);
    assert!(
        app.contains("output identityPrincipalId string = identity.properties.principalId"),
        "{APP}: identityPrincipalId must be the user-assigned identity's principal"
    );
    let settings = bicep::app_settings(bicep::block_after(&app, "appSettings:"));
    let value = |name: &str| {
        settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{APP}: app setting {name} missing"))
    };
    assert_eq!(value("AZURE_CLIENT_ID"), "identity.properties.clientId");
    assert_eq!(value("LINKGUARD_CREDENTIAL"), "'managed-identity'");
    let site = bicep::block_after(&app, "resource functionApp 'Microsoft.Web/sites@");
    assert!(
        bicep::block_after(site, "userAssignedIdentities:").contains("'${identity.id}': {}"),
        "{APP}: the function app must run as the user-assigned identity"
    );
}

/// Every role assignment in app.bicep: (resource name, principal, scope, role definition id var).
fn storage_role_assignments(app: &str) -> Vec<(String, String, String, String)> {
    const DECL: &str = "'Microsoft.Authorization/roleAssignments@";
    let mut out = Vec::new();
    for (at, _) in app.match_indices(DECL) {
        let line_start = app[..at].rfind('\n').map_or(0, |i| i + 1);
        let name = app[line_start..at]
            .trim()
            .strip_prefix("resource ")
            .unwrap_or_else(|| panic!("{APP}: unexpected role assignment declaration"))
            .trim()
            .to_string();
        let block = bicep::block_after(&app[at..], DECL);
        assert!(
            bicep::has_key(block, "scope"),
            "{APP}: role assignment {name} has no scope (it would hold for the whole resource group)"
        );
        let role = bicep::line_value(block, "roleDefinitionId")
            .strip_prefix("subscriptionResourceId('Microsoft.Authorization/roleDefinitions', ")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{APP}: {name}: roleDefinitionId is not a built-in role id"))
            .to_string();
        out.push((
            name,
            bicep::line_value(block, "principalId").to_string(),
            bicep::line_value(block, "scope").to_string(),
            role,
        ));
    }
    out
}

#[test]
fn linkguards_identity_holds_no_account_wide_storage_role() {
    let app = bicep::read(APP);
    let assignments = storage_role_assignments(&app);
    let linkguard: BTreeSet<(&str, &str)> = assignments
        .iter()
        .filter(|(_, principal, _, _)| principal == "identity.properties.principalId")
        .map(|(_, _, scope, role)| (scope.as_str(), role.as_str()))
        .collect();
    // The reports container (DESIGN 6) and the fan-out queues (docs/fanout.md), each on its own.
    assert_eq!(
        linkguard,
        BTreeSet::from([
            ("reportsContainer", "storageBlobDataContributor"),
            ("fanOutQueue", "storageQueueDataContributor"),
            ("fanOutPoisonQueue", "storageQueueDataContributor"),
        ]),
        "{APP}: linkguard's identity must hold exactly these data roles"
    );
    // What must stay account-wide (the Functions host's AzureWebJobsStorage) is held by the
    // host's own identity, which AzureWebJobsStorage and the deployment storage name.
    for (name, principal, scope, _) in &assignments {
        if scope == "storage" {
            assert_eq!(
                principal, "hostIdentity.properties.principalId",
                "{APP}: {name} grants an account-wide role to someone other than the host identity"
            );
        }
    }
    let settings = bicep::app_settings(bicep::block_after(&app, "appSettings:"));
    let value = |name: &str| {
        settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{APP}: app setting {name} missing"))
    };
    assert_eq!(
        value("AzureWebJobsStorage__clientId"),
        "hostIdentity.properties.clientId"
    );
    assert_eq!(value("AZURE_CLIENT_ID"), "identity.properties.clientId");
    let site = bicep::block_after(&app, "resource functionApp 'Microsoft.Web/sites@");
    let deployment = bicep::block_after(site, "authentication:");
    assert_eq!(
        bicep::line_value(deployment, "userAssignedIdentityResourceId"),
        "hostIdentity.id"
    );

    // The queues are the ones SubscriptionAudit listens on and the host poisons into.
    let trigger: serde_json::Value =
        serde_json::from_str(&bicep::read("function/SubscriptionAudit/function.json")).unwrap();
    let queue = trigger["bindings"][0]["queueName"].as_str().unwrap();
    assert!(app.contains(&format!("var fanOutQueueName = '{queue}'")));
    assert!(app.contains("var fanOutPoisonQueueName = '${fanOutQueueName}-poison'"));
}

#[test]
fn reports_role_is_scoped_to_the_reports_container() {
    let app = bicep::read(APP);
    let writer = bicep::block_after(
        &app,
        "resource reportsWriter 'Microsoft.Authorization/roleAssignments@",
    );
    assert_eq!(bicep::line_value(writer, "scope"), "reportsContainer");
    assert!(
        bicep::line_value(writer, "roleDefinitionId").contains("storageBlobDataContributor"),
        "{APP}: reports writer must be Storage Blob Data Contributor"
    );
    assert!(
        app.contains("var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'"),
        "{APP}: Storage Blob Data Contributor role id"
    );
    assert!(
        app.contains("var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'"),
        "{APP}: Storage Queue Data Contributor role id"
    );
    let container = bicep::block_after(
        &app,
        "resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@",
    );
    assert_eq!(bicep::line_value(container, "name"), "reportsContainerName");
    // The report layout of DESIGN 6 names the container `linkguard-reports`.
    assert!(app.contains("var reportsContainerName = 'linkguard-reports'"));
}
