//! Pure evaluation: decisions per DESIGN 4.1 and findings per 4.2.

use std::collections::HashMap;

use super::{PendingDefault, Policy, Rule, RuleAction, RuleMatch, Toggle};
use crate::model::{
    BypassOptions, ConnectionStatus, DefaultAction, Estate, PrivateEndpoint,
    PrivateEndpointConnection, ProvisioningState, PublicNetworkAccess, Registry, ResourceId,
};
use crate::plan::{
    Action, Decision, Finding, FindingCode, PatchNetworkRuleSet, Plan, RegistryPatch, Remediation,
};

/// Private endpoints known to the caller: those found, and why others could not be read.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub found: HashMap<ResourceId, PrivateEndpoint>,
    /// Endpoint id -> why it could not be read (403 from another tenant, 404...).
    pub failures: HashMap<ResourceId, String>,
    /// Said when an endpoint is neither found nor failed (offline: "not in the estate's privateEndpoints").
    pub missing_hint: String,
}

impl Endpoints {
    fn resolve(&self, id: &ResourceId) -> Result<&PrivateEndpoint, String> {
        if let Some(pe) = self.found.get(id) {
            return Ok(pe);
        }
        Err(self
            .failures
            .get(id)
            .cloned()
            .unwrap_or_else(|| self.missing_hint.clone()))
    }
}

/// Evaluates every governed registry of an offline estate.
pub fn evaluate_estate(policy: &Policy, estate: &Estate) -> Plan {
    let endpoints = Endpoints {
        found: estate.private_endpoints.clone(),
        failures: HashMap::new(),
        missing_hint: "it is not in the estate's `privateEndpoints` (add the output of `az network private-endpoint show`)".into(),
    };
    let mut plan = Plan::default();
    for registry in estate.registries.iter().filter(|r| policy.governs(r)) {
        plan.extend(evaluate_registry(policy, registry, &endpoints));
    }
    plan
}

/// Evaluates one registry (the caller has checked it is governed).
pub fn evaluate_registry(policy: &Policy, registry: &Registry, endpoints: &Endpoints) -> Plan {
    let mut plan = Plan::default();
    for conn in registry.connections() {
        let (decision, findings) = decide(policy, registry, conn, endpoints);
        plan.decisions.push(decision);
        plan.findings.extend(findings);
    }
    let (findings, remediation) = posture(policy, registry);
    plan.findings.extend(findings);
    plan.remediations.extend(remediation);
    plan
}

/// The outcome of trying the rules on one connection.
struct RuleOutcome<'p> {
    rule: Option<&'p Rule>,
    because: String,
    /// Rules skipped because the endpoint could not be resolved, and why.
    unresolved: Option<String>,
}

fn first_matching_rule<'p>(
    policy: &'p Policy,
    registry: &Registry,
    conn: &PrivateEndpointConnection,
    endpoints: &Endpoints,
) -> RuleOutcome<'p> {
    let mut unresolved: Option<String> = None;
    for rule in &policy.connections.rules {
        match &rule.matcher {
            None => {
                return RuleOutcome {
                    rule: Some(rule),
                    because: "it matches every connection".into(),
                    unresolved,
                };
            }
            Some(m) => match match_rule(m, registry, conn, endpoints) {
                Ok(Some(clauses)) => {
                    return RuleOutcome {
                        rule: Some(rule),
                        because: clauses.join("; "),
                        unresolved,
                    };
                }
                Ok(None) => {}
                Err(why) => {
                    unresolved.get_or_insert_with(|| format!("rule {} needs the endpoint's subnet, which could not be resolved: {why}", rule.name));
                }
            },
        }
    }
    RuleOutcome {
        rule: None,
        because: String::new(),
        unresolved,
    }
}

/// `Ok(Some(clauses))` when every key holds; `Ok(None)` when one does not; `Err` when a subnet key
/// could not be checked because the endpoint is unknown (fail closed: the rule does not match).
fn match_rule(
    m: &RuleMatch,
    registry: &Registry,
    conn: &PrivateEndpointConnection,
    endpoints: &Endpoints,
) -> Result<Option<Vec<String>>, String> {
    let mut clauses = Vec::new();
    let pe = conn.private_endpoint_id();
    if let Some(names) = &m.registries {
        match names.first_match(registry.name()) {
            Some(p) => clauses.push(format!("registry {} matches {p}", registry.name())),
            None => return Ok(None),
        }
    }
    if let Some(subs) = &m.subscriptions {
        match pe.filter(|pe| {
            subs.iter()
                .any(|s| s.eq_ignore_ascii_case(pe.subscription()))
        }) {
            Some(pe) => clauses.push(format!(
                "endpoint subscription {} is listed",
                pe.subscription()
            )),
            None => return Ok(None),
        }
    }
    if let Some(rgs) = &m.resource_groups {
        let hit = pe.and_then(|pe| {
            pe.resource_group()
                .and_then(|rg| rgs.first_match(rg).map(|p| (rg, p)))
        });
        match hit {
            Some((rg, p)) => clauses.push(format!("endpoint resource group {rg} matches {p}")),
            None => return Ok(None),
        }
    }
    if let Some(names) = &m.private_endpoint_names {
        match pe.and_then(|pe| names.first_match(pe.name()).map(|p| (pe.name(), p))) {
            Some((name, p)) => clauses.push(format!("endpoint name {name} matches {p}")),
            None => return Ok(None),
        }
    }
    if let Some(re) = &m.request_message {
        let message = conn.description().unwrap_or("");
        if re.is_match(message) {
            clauses.push(format!("request message matches /{}/", re.as_str()));
        } else {
            return Ok(None);
        }
    }
    if let Some(subnets) = &m.subnets {
        let Some(pe_id) = pe else {
            return Err("the connection names no private endpoint".into());
        };
        let endpoint = endpoints.resolve(pe_id)?;
        let Some(subnet) = endpoint.subnet_id() else {
            return Err(format!("endpoint {pe_id} has no subnet"));
        };
        match subnets.containing(subnet) {
            Some(listed) if listed == subnet => {
                clauses.push(format!("endpoint subnet {subnet} is listed"))
            }
            Some(listed) => clauses.push(format!("endpoint subnet {subnet} lies in {listed}")),
            None => return Ok(None),
        }
    }
    Ok(Some(clauses))
}

fn render_description(
    template: Option<&str>,
    fallback: &str,
    rule: &str,
    registry: &Registry,
    pe: Option<&ResourceId>,
) -> String {
    template
        .unwrap_or(fallback)
        .replace("{rule}", rule)
        .replace("{registry}", registry.name())
        .replace("{endpoint}", pe.map_or("", |p| p.name()))
}

fn decide(
    policy: &Policy,
    registry: &Registry,
    conn: &PrivateEndpointConnection,
    endpoints: &Endpoints,
) -> (Decision, Vec<Finding>) {
    let reg_id = &registry.id;
    let pe = conn.private_endpoint_id();
    let status = conn.status();
    let mut findings = Vec::new();
    // Rules only decide Pending and Approved connections; Rejected and Disconnected have fixed outcomes.
    let outcome = match status {
        ConnectionStatus::Pending | ConnectionStatus::Approved => {
            first_matching_rule(policy, registry, conn, endpoints)
        }
        _ => RuleOutcome {
            rule: None,
            because: String::new(),
            unresolved: None,
        },
    };
    if let Some(why) = &outcome.unresolved {
        findings.push(
            Finding::new(FindingCode::EndpointUnresolved, reg_id, format!("connection {}: {why}; the rule was not applied (fail closed)", conn.name()),
                "grant linkguard Microsoft.Network/privateEndpoints/read on the endpoint's subscription, or match this endpoint by subscription or name instead of subnet")
                .on_connection(&conn.id),
        );
    }
    let rule_name = outcome.rule.map(|r| r.name.clone());
    let matched = |verb: &str| match outcome.rule {
        Some(r) => format!("rule {} {verb}: {}", r.name, outcome.because),
        None => String::new(),
    };
    let describe = |fallback: &str| {
        let (template, name) = outcome.rule.map_or((None, "default"), |r| {
            (r.description.as_deref(), r.name.as_str())
        });
        Some(render_description(template, fallback, name, registry, pe))
    };
    let (action, reason, description) = match &status {
        ConnectionStatus::Pending => match outcome.rule.map(|r| r.action) {
            // Fail closed: a connection that failed to provision is not approved until it is recreated.
            Some(RuleAction::Approve)
                if conn.properties.provisioning_state == Some(ProvisioningState::Failed) =>
            {
                (
                    Action::Keep,
                    format!(
                        "{}; not approved because its provisioning failed",
                        matched("would approve")
                    ),
                    None,
                )
            }
            Some(RuleAction::Approve) => (
                Action::Approve,
                matched("approves"),
                describe("Approved by linkguard rule {rule}"),
            ),
            Some(RuleAction::Reject) => (
                Action::Reject,
                matched("rejects"),
                describe("Rejected by linkguard rule {rule}"),
            ),
            Some(RuleAction::Leave) => {
                findings.push(pending_finding(
                    reg_id,
                    conn,
                    &format!(
                        "rule {} leaves it for a person",
                        rule_name.as_deref().unwrap_or("")
                    ),
                ));
                (Action::Keep, matched("leaves it pending"), None)
            }
            None => match policy.connections.default {
                PendingDefault::Leave => {
                    findings.push(pending_finding(reg_id, conn, "no rule matched"));
                    (
                        Action::Keep,
                        unmatched_reason(
                            "connections.default = \"leave\" keeps it pending",
                            &outcome,
                        ),
                        None,
                    )
                }
                PendingDefault::Reject => (
                    Action::Reject,
                    unmatched_reason("connections.default = \"reject\" rejects it", &outcome),
                    Some("Rejected by linkguard: no policy rule allows this endpoint".to_string()),
                ),
            },
        },
        ConnectionStatus::Approved => match outcome.rule {
            Some(r) if r.action == RuleAction::Reject => {
                if policy.connections.revoke_approved {
                    (
                        Action::Reject,
                        format!("{}; revoke_approved = true", matched("rejects")),
                        describe("Revoked by linkguard rule {rule}"),
                    )
                } else {
                    findings.push(
                        Finding::new(FindingCode::ApprovedNotAllowed, reg_id,
                            format!("connection {} is Approved but rule {} rejects it", conn.name(), r.name),
                            "reject the connection, or set connections.revoke_approved = true to let linkguard do it")
                            .on_connection(&conn.id),
                    );
                    (
                        Action::Keep,
                        format!(
                            "{}; kept because revoke_approved = false",
                            matched("rejects")
                        ),
                        None,
                    )
                }
            }
            Some(_) => (
                Action::Keep,
                format!("already Approved; {}", matched("agrees")),
                None,
            ),
            None => (
                Action::Keep,
                "already Approved; no rule matched".to_string(),
                None,
            ),
        },
        ConnectionStatus::Rejected => (
            Action::Keep,
            "Rejected is final: a rejected connection is never re-approved".to_string(),
            None,
        ),
        ConnectionStatus::Disconnected => {
            if policy.connections.delete_disconnected {
                (
                    Action::Delete,
                    "the endpoint is gone (Disconnected) and delete_disconnected = true"
                        .to_string(),
                    None,
                )
            } else {
                findings.push(
                    Finding::new(
                        FindingCode::ConnectionDisconnected,
                        reg_id,
                        format!(
                            "connection {} is Disconnected: its private endpoint was deleted",
                            conn.name()
                        ),
                        "delete the connection, or set connections.delete_disconnected = true",
                    )
                    .on_connection(&conn.id),
                );
                (
                    Action::Keep,
                    "Disconnected; delete_disconnected = false".to_string(),
                    None,
                )
            }
        }
        ConnectionStatus::Other(s) => (
            Action::Keep,
            format!("unknown status `{s}`: never acted on (fail closed)"),
            None,
        ),
    };
    if conn.properties.provisioning_state == Some(ProvisioningState::Failed) {
        findings.push(
            Finding::new(
                FindingCode::ConnectionProvisioningFailed,
                reg_id,
                format!("connection {} failed to provision", conn.name()),
                "delete the connection and ask the endpoint owner to recreate the private endpoint",
            )
            .on_connection(&conn.id),
        );
    }
    if let Some(required) = conn.actions_required() {
        findings.push(
            Finding::new(FindingCode::ConnectionActionRequired, reg_id, format!("connection {} requires action: {required}", conn.name()),
                "follow the action ARM names (for `Recreate`: ask the endpoint owner to recreate the private endpoint)")
                .on_connection(&conn.id),
        );
    }
    let rule = if action == Action::Keep
        && !matches!(
            status,
            ConnectionStatus::Pending | ConnectionStatus::Approved
        ) {
        None
    } else {
        rule_name
    };
    let decision = Decision {
        registry: reg_id.clone(),
        connection: conn.id.clone(),
        private_endpoint: pe.cloned(),
        status,
        action,
        rule,
        reason,
        description,
    };
    (decision, findings)
}

fn unmatched_reason(default: &str, outcome: &RuleOutcome<'_>) -> String {
    match &outcome.unresolved {
        Some(why) => format!("no rule matched ({why}); {default}"),
        None => format!("no rule matched; {default}"),
    }
}

fn pending_finding(registry: &ResourceId, conn: &PrivateEndpointConnection, why: &str) -> Finding {
    let from = conn.private_endpoint_id().map_or_else(
        || "an unknown endpoint".to_string(),
        |p| format!("endpoint {} in subscription {}", p.name(), p.subscription()),
    );
    Finding::new(FindingCode::ConnectionPending, registry, format!("connection {} from {from} is Pending: {why}", conn.name()),
        "approve or reject it (`az acr private-endpoint-connection approve|reject`), or add a rule that decides it")
        .on_connection(&conn.id)
}

/// Network and trusted-services findings, and the patch that would fix them.
fn posture(policy: &Policy, registry: &Registry) -> (Vec<Finding>, Option<Remediation>) {
    let net = &policy.network;
    let id = &registry.id;
    let mut findings = Vec::new();
    let mut patch = RegistryPatch::default();
    let mut fixes = Vec::new();
    let public = registry.public_network_access();
    let default_action = registry.default_action();
    let bypass = registry.bypass_options();

    if let Some(want) = &net.public_network_access
        && &public != want
    {
        findings.push(Finding::new(
            FindingCode::PublicNetworkAccess,
            id,
            format!("public network access is {public}; policy requires {want}"),
            format!(
                "az acr update --name {} --public-network-enabled {}",
                registry.name(),
                *want == PublicNetworkAccess::Enabled
            ),
        ));
        patch.public_network_access = Some(want.clone());
        fixes.push(FindingCode::PublicNetworkAccess);
    }
    let mut desired_default = default_action.clone();
    if let Some(want) = &net.default_action
        && &default_action != want
    {
        findings.push(Finding::new(
            FindingCode::DefaultAction,
            id,
            format!("network rule default action is {default_action}; policy requires {want}"),
            format!(
                "az acr update --name {} --default-action {want}",
                registry.name()
            ),
        ));
        desired_default = want.clone();
        fixes.push(FindingCode::DefaultAction);
    }
    let mut kept_rules = registry.ip_rules().to_vec();
    if let Some(allowed) = &net.allowed_ip_ranges {
        let (inside, outside): (Vec<_>, Vec<_>) =
            registry.ip_rules().iter().cloned().partition(|r| {
                super::matchers::parse_ip_range(&r.value)
                    .is_some_and(|net| allowed.iter().any(|a| a.contains(&net)))
            });
        for rule in &outside {
            findings.push(Finding::new(
                FindingCode::IpRuleOutsideAllowed,
                id,
                format!(
                    "IP rule {} is outside the allowed ranges ({})",
                    rule.value,
                    allowed
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "az acr network-rule remove --name {} --ip-address {}",
                    registry.name(),
                    rule.value
                ),
            ));
        }
        if !outside.is_empty() {
            kept_rules = inside;
            fixes.push(FindingCode::IpRuleOutsideAllowed);
        }
    }
    if desired_default != default_action || kept_rules.len() != registry.ip_rules().len() {
        patch.network_rule_set = Some(PatchNetworkRuleSet {
            default_action: desired_default,
            ip_rules: kept_rules,
        });
    }
    if let Some(want) = net.trusted_services {
        let want_bypass = match want {
            Toggle::Allow => BypassOptions::AzureServices,
            Toggle::Deny => BypassOptions::None,
        };
        if bypass != want_bypass {
            findings.push(Finding::new(
                FindingCode::TrustedServices,
                id,
                format!("networkRuleBypassOptions is {bypass}; policy requires {want_bypass}"),
                format!(
                    "az acr update --name {} --allow-trusted-services {}",
                    registry.name(),
                    want == Toggle::Allow
                ),
            ));
            patch.network_rule_bypass_options = Some(want_bypass);
            fixes.push(FindingCode::TrustedServices);
        }
    }
    if let Some(want) = net.tasks_bypass {
        let want_bool = want == Toggle::Allow;
        if registry.tasks_bypass() != want_bool {
            findings.push(Finding::new(FindingCode::TasksBypass, id,
                format!("networkRuleBypassAllowedForTasks is {}; policy requires {want_bool}", registry.tasks_bypass()),
                format!("az resource update --ids {} --set properties.networkRuleBypassAllowedForTasks={want_bool}", registry.id)));
            patch.network_rule_bypass_allowed_for_tasks = Some(want_bool);
            fixes.push(FindingCode::TasksBypass);
        }
    }
    let vnet_rules = registry.vnet_rule_count();
    if vnet_rules > 0 && net.forbid_vnet_rules {
        findings.push(Finding::new(FindingCode::VnetRulesForbidden, id,
            format!("{vnet_rules} service-endpoint (VNet) rule(s) present; policy forbids them"),
            "remove them (`az acr network-rule remove --vnet-name ... --subnet ...`) and use private endpoints"));
    }
    if vnet_rules > 0 && !registry.connections().is_empty() {
        findings.push(Finding::new(FindingCode::VnetRulesWithPrivateLink, id,
            format!("{vnet_rules} service-endpoint (VNet) rule(s) and {} private endpoint connection(s): a registry does not support both", registry.connections().len()),
            "remove the service-endpoint rules; keep private endpoints"));
    }
    // Trusted services are shut out when the registry is closed to the public and bypass is off.
    let closed = public == PublicNetworkAccess::Disabled || default_action == DefaultAction::Deny;
    if closed && bypass == BypassOptions::None && net.trusted_services != Some(Toggle::Deny) {
        findings.push(Finding::new(FindingCode::TrustedServicesBlocked, id,
            "trusted Azure services are blocked: Microsoft Defender for Cloud scanning, ACR Tasks, Container Instances and Machine Learning with managed identity, and ACR import cannot reach this registry, because public access is closed and networkRuleBypassOptions is None",
            format!("az acr update --name {} --allow-trusted-services true, or set network.trusted_services = \"deny\" if this is intended", registry.name())));
    }
    let uses_network_features = !registry.connections().is_empty()
        || !registry.ip_rules().is_empty()
        || vnet_rules > 0
        || default_action == DefaultAction::Deny
        || public == PublicNetworkAccess::Disabled
        || net.default_action == Some(DefaultAction::Deny)
        || net.public_network_access == Some(PublicNetworkAccess::Disabled)
        || net.allowed_ip_ranges.is_some();
    let premium = registry.is_premium();
    if !premium && uses_network_features {
        findings.push(Finding::new(FindingCode::SkuNotPremium, id,
            format!("the registry is {} but its policy or state uses network features (private endpoints, network rules, public access off) that need Premium", registry.sku_name()),
            format!("az acr update --name {} --sku Premium", registry.name())));
    }
    // Patching needs Premium and `remediate`; the plan shows the patch in dry-run too.
    let remediation = (net.remediate && premium && !patch.is_empty()).then(|| Remediation {
        registry: id.clone(),
        patch,
        fixes,
    });
    (findings, remediation)
}
