//! Case tables for policy validation and evaluation (DESIGN 4).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// (label, policy, status, expected action, expected rule, expected connection finding)
type StateCase<'a> = (
    &'a str,
    String,
    &'a str,
    Action,
    Option<&'a str>,
    Option<FindingCode>,
);
use crate::model::Estate;
use crate::plan::{Action, FindingCode, Plan};

const SUB: &str = "11111111-1111-1111-1111-111111111111";
const PARTNER: &str = "22222222-2222-2222-2222-222222222222";

fn reg_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerRegistry/registries/{name}"
    )
}

fn pe_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/privateEndpoints/{name}"
    )
}

fn subnet(vnet: &str, subnet: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
    )
}

fn conn(registry: &str, name: &str, pe: &str, status: &str, message: &str) -> Value {
    json!({"id": format!("{}/privateEndpointConnections/{name}", reg_id(registry)), "name": name,
           "properties": {"privateEndpoint": {"id": pe}, "provisioningState": "Succeeded",
                          "privateLinkServiceConnectionState": {"status": status, "description": message, "actionsRequired": "None"}}})
}

fn registry(name: &str, connections: Vec<Value>) -> Value {
    json!({"id": reg_id(name), "name": name, "sku": {"name": "Premium"},
           "properties": {"publicNetworkAccess": "Disabled", "networkRuleSet": {"defaultAction": "Deny", "ipRules": []},
                          "networkRuleBypassOptions": "AzureServices", "privateEndpointConnections": connections}})
}

fn endpoint(id: &str, subnet_id: &str) -> Value {
    json!({"id": id, "properties": {"subnet": {"id": subnet_id}}})
}

fn policy(text: &str) -> Policy {
    match Policy::parse("test.toml", &format!("version = 1\n{text}")) {
        Ok(p) => p,
        Err(e) => panic!("policy should load: {e}"),
    }
}

fn plan(policy_text: &str, registries: Vec<Value>, endpoints: Vec<Value>) -> Plan {
    let estate =
        Estate::from_value(json!({"registries": registries, "privateEndpoints": endpoints}))
            .unwrap();
    evaluate_estate(&policy(policy_text), &estate)
}

/// Decides one connection and returns (action, rule).
fn decide_one(
    policy_text: &str,
    status: &str,
    pe: &str,
    message: &str,
    endpoints: Vec<Value>,
) -> (Action, Option<String>, Plan) {
    let p = plan(
        policy_text,
        vec![registry(
            "acrprod",
            vec![conn("acrprod", "c1", pe, status, message)],
        )],
        endpoints,
    );
    let d = p.decisions.first().expect("one decision").clone();
    (d.action, d.rule, p)
}

#[test]
fn every_rule_key_matches_and_mismatches() {
    let pe_platform = pe_id(SUB, "net-hub", "pe-aks");
    let pe_partner = pe_id(PARTNER, "partner-ci", "pe-build");
    let endpoints = vec![
        endpoint(&pe_platform, &subnet("hub", "pe")),
        endpoint(&pe_partner, &subnet("hub2", "pe")),
    ];
    let cases: &[(&str, &str, &str, Action)] = &[
        (
            "subscriptions",
            &format!("subscriptions = [\"{}\"]", SUB.to_uppercase()),
            &pe_platform,
            Action::Approve,
        ),
        (
            "subscriptions miss",
            &format!("subscriptions = [\"{SUB}\"]"),
            &pe_partner,
            Action::Keep,
        ),
        (
            "resource_groups glob",
            "resource_groups = [\"NET-*\"]",
            &pe_platform,
            Action::Approve,
        ),
        (
            "resource_groups miss",
            "resource_groups = [\"net-*\"]",
            &pe_partner,
            Action::Keep,
        ),
        (
            "private_endpoint_names",
            "private_endpoint_names = [\"pe-a?s\"]",
            &pe_platform,
            Action::Approve,
        ),
        (
            "private_endpoint_names miss",
            "private_endpoint_names = [\"pe-aks\"]",
            &pe_partner,
            Action::Keep,
        ),
        (
            "subnets vnet",
            &format!(
                "subnets = [\"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub\"]"
            ),
            &pe_platform,
            Action::Approve,
        ),
        (
            "subnets vnet prefix trap",
            &format!(
                "subnets = [\"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub\"]"
            ),
            &pe_partner,
            Action::Keep,
        ),
        (
            "subnets exact subnet",
            &format!("subnets = [\"{}\"]", subnet("HUB2", "PE")),
            &pe_partner,
            Action::Approve,
        ),
        (
            "request_message",
            "request_message = \"^CHG[0-9]{6}$\"",
            &pe_platform,
            Action::Approve,
        ),
        (
            // The partner's message is "CHG12": too short for the anchored pattern.
            "request_message miss",
            "request_message = \"^CHG[0-9]{6}$\"",
            &pe_partner,
            Action::Keep,
        ),
        (
            "registries",
            "registries = [\"ACRPROD\", \"other\"]",
            &pe_platform,
            Action::Approve,
        ),
        (
            "registries miss",
            "registries = [\"acrdev*\"]",
            &pe_platform,
            Action::Keep,
        ),
        (
            "all keys must hold",
            &format!("subscriptions = [\"{SUB}\"]\nregistries = [\"nope\"]"),
            &pe_platform,
            Action::Keep,
        ),
    ];
    for (label, keys, pe, want) in cases {
        let text = format!(
            "[[connections.rules]]\nname = \"r\"\naction = \"approve\"\n[connections.rules.match]\n{keys}\n"
        );
        let message = if pe == &pe_platform {
            "CHG123456"
        } else {
            "CHG12"
        };
        let (action, rule, _) = decide_one(&text, "Pending", pe, message, endpoints.clone());
        assert_eq!(action, *want, "{label}");
        assert_eq!(
            rule.is_some(),
            *want == Action::Approve,
            "{label}: rule {rule:?}"
        );
    }
}

#[test]
fn rule_without_match_matches_everything() {
    let (action, rule, _) = decide_one(
        "[[connections.rules]]\nname = \"all\"\naction = \"reject\"\n",
        "Pending",
        &pe_id(PARTNER, "x", "pe"),
        "",
        vec![],
    );
    assert_eq!((action, rule.as_deref()), (Action::Reject, Some("all")));
}

#[test]
fn every_connection_state_follows_section_4_1() {
    let approve_all = "[[connections.rules]]\nname = \"ok\"\naction = \"approve\"\n";
    let reject_all = "[[connections.rules]]\nname = \"no\"\naction = \"reject\"\n";
    let leave_all = "[[connections.rules]]\nname = \"wait\"\naction = \"leave\"\n";
    let pe = pe_id(PARTNER, "x", "pe");
    // (label, policy, status, action, rule, finding expected)
    let cases: &[StateCase] = &[
        (
            "pending approve",
            approve_all.into(),
            "Pending",
            Action::Approve,
            Some("ok"),
            None,
        ),
        (
            "pending reject",
            reject_all.into(),
            "Pending",
            Action::Reject,
            Some("no"),
            None,
        ),
        (
            "pending leave",
            leave_all.into(),
            "Pending",
            Action::Keep,
            Some("wait"),
            Some(FindingCode::ConnectionPending),
        ),
        (
            "pending default leave",
            String::new(),
            "Pending",
            Action::Keep,
            None,
            Some(FindingCode::ConnectionPending),
        ),
        (
            "pending default reject",
            "[connections]\ndefault = \"reject\"".into(),
            "Pending",
            Action::Reject,
            None,
            None,
        ),
        (
            "approved kept",
            approve_all.into(),
            "Approved",
            Action::Keep,
            Some("ok"),
            None,
        ),
        (
            "approved not allowed",
            reject_all.into(),
            "Approved",
            Action::Keep,
            Some("no"),
            Some(FindingCode::ApprovedNotAllowed),
        ),
        (
            "approved revoked",
            format!("[connections]\nrevoke_approved = true\n{reject_all}"),
            "Approved",
            Action::Reject,
            Some("no"),
            None,
        ),
        (
            "approved default reject does not revoke",
            "[connections]\ndefault = \"reject\"\nrevoke_approved = true".into(),
            "Approved",
            Action::Keep,
            None,
            None,
        ),
        (
            "rejected never re-approved",
            approve_all.into(),
            "Rejected",
            Action::Keep,
            None,
            None,
        ),
        (
            "disconnected kept",
            String::new(),
            "Disconnected",
            Action::Keep,
            None,
            Some(FindingCode::ConnectionDisconnected),
        ),
        (
            "disconnected deleted",
            "[connections]\ndelete_disconnected = true".into(),
            "Disconnected",
            Action::Delete,
            None,
            None,
        ),
        (
            "unknown status never acted on",
            approve_all.into(),
            "Weird",
            Action::Keep,
            None,
            None,
        ),
        (
            "status case-insensitive",
            approve_all.into(),
            "pending",
            Action::Approve,
            Some("ok"),
            None,
        ),
    ];
    for (label, text, status, action, rule, finding) in cases {
        let (got, got_rule, plan) = decide_one(text, status, &pe, "", vec![]);
        assert_eq!(got, *action, "{label}");
        assert_eq!(got_rule.as_deref(), *rule, "{label}");
        let codes: Vec<FindingCode> = plan
            .findings
            .iter()
            .filter(|f| f.connection.is_some())
            .map(|f| f.code)
            .collect();
        assert_eq!(
            codes,
            finding.iter().copied().collect::<Vec<_>>(),
            "{label}"
        );
        let d = &plan.decisions[0];
        assert!(!d.reason.is_empty(), "{label}: a decision always says why");
        if action.is_change() && *action != Action::Delete {
            assert!(
                d.description.is_some(),
                "{label}: approve/reject carry the text written to ARM"
            );
        }
    }
}

#[test]
fn first_matching_rule_wins_and_descriptions_render() {
    let text = "[[connections.rules]]\nname = \"first\"\naction = \"reject\"\ndescription = \"no by {rule} on {registry} for {endpoint}\"\n[connections.rules.match]\nprivate_endpoint_names = [\"pe-*\"]\n\
                [[connections.rules]]\nname = \"second\"\naction = \"approve\"\n";
    let (action, rule, plan) = decide_one(text, "Pending", &pe_id(SUB, "x", "pe-1"), "", vec![]);
    assert_eq!((action, rule.as_deref()), (Action::Reject, Some("first")));
    assert_eq!(
        plan.decisions[0].description.as_deref(),
        Some("no by first on acrprod for pe-1")
    );
}

#[test]
fn unresolved_endpoint_fails_closed() {
    let vnet = format!(
        "/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub"
    );
    let text = format!(
        "[[connections.rules]]\nname = \"hub\"\naction = \"approve\"\n[connections.rules.match]\nsubnets = [\"{vnet}\"]\n"
    );
    let (action, rule, plan) = decide_one(
        &text,
        "Pending",
        &pe_id("33333333-3333-3333-3333-333333333333", "x", "pe"),
        "",
        vec![],
    );
    assert_eq!((action, rule), (Action::Keep, None));
    let codes: Vec<_> = plan.findings.iter().map(|f| f.code).collect();
    assert!(
        codes.contains(&FindingCode::EndpointUnresolved),
        "{codes:?}"
    );
    assert!(
        plan.decisions[0].reason.contains("could not be resolved"),
        "{}",
        plan.decisions[0].reason
    );
}

#[test]
fn scope_and_exclusion() {
    let text = format!(
        "[scope]\nsubscriptions = [\"{SUB}\"]\nresource_groups = [\"RG-PROD\"]\nregistries = [\"acr*\"]\nexclude_registries = [\"acrsandbox*\"]\n"
    );
    let other_sub = json!({"id": "/subscriptions/99999999-9999-9999-9999-999999999999/resourceGroups/rg-prod/providers/Microsoft.ContainerRegistry/registries/acrx",
                           "properties": {"privateEndpointConnections": []}});
    let p = plan(
        &text,
        vec![
            registry(
                "acrprod",
                vec![conn("acrprod", "c1", &pe_id(SUB, "x", "pe"), "Pending", "")],
            ),
            registry(
                "acrsandbox1",
                vec![conn(
                    "acrsandbox1",
                    "c1",
                    &pe_id(SUB, "x", "pe"),
                    "Pending",
                    "",
                )],
            ),
            registry(
                "other",
                vec![conn("other", "c1", &pe_id(SUB, "x", "pe"), "Pending", "")],
            ),
            other_sub,
        ],
        vec![],
    );
    let governed: Vec<&str> = p.decisions.iter().map(|d| d.registry.name()).collect();
    assert_eq!(governed, vec!["acrprod"]);
    assert!(p.findings.iter().all(|f| f.registry.name() == "acrprod"));
}

/// Registry body with the given posture, for finding cases.
fn posture_registry(sku: &str, props: Value, connections: Vec<Value>) -> Value {
    let mut r = json!({"id": reg_id("acrprod"), "name": "acrprod", "sku": {"name": sku}, "properties": props});
    r["properties"]["privateEndpointConnections"] = json!(connections);
    r
}

#[test]
fn every_finding_code_is_produced_where_it_applies() {
    let pe = pe_id(SUB, "x", "pe");
    let open = json!({"publicNetworkAccess": "Enabled", "networkRuleSet": {"defaultAction": "Allow", "ipRules": [{"value": "198.51.100.0/24", "action": "Allow"}]},
                      "networkRuleBypassOptions": "None", "networkRuleBypassAllowedForTasks": true});
    let closed_no_bypass = json!({"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "None",
                                  "networkRuleSet": {"defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": [{"id": subnet("hub", "x")}]}});
    let strict = "[network]\npublic_network_access = \"Disabled\"\ndefault_action = \"Deny\"\ntrusted_services = \"allow\"\ntasks_bypass = \"deny\"\nallowed_ip_ranges = [\"203.0.113.0/24\"]\nforbid_vnet_rules = true\n";
    let mut failed = conn("acrprod", "c2", &pe, "Pending", "");
    failed["properties"]["provisioningState"] = json!("Failed");
    failed["properties"]["privateLinkServiceConnectionState"]["actionsRequired"] =
        json!("Recreate");
    let subnet_rule = format!(
        "[[connections.rules]]\nname = \"s\"\naction = \"approve\"\n[connections.rules.match]\nsubnets = [\"{}\"]\n",
        subnet("hub", "x")
    );
    let cases: Vec<(FindingCode, &str, Value, Vec<Value>)> = vec![
        (
            FindingCode::PublicNetworkAccess,
            strict,
            open.clone(),
            vec![],
        ),
        (FindingCode::DefaultAction, strict, open.clone(), vec![]),
        (FindingCode::TrustedServices, strict, open.clone(), vec![]),
        (FindingCode::TasksBypass, strict, open.clone(), vec![]),
        (
            FindingCode::IpRuleOutsideAllowed,
            strict,
            open.clone(),
            vec![],
        ),
        (
            FindingCode::VnetRulesForbidden,
            strict,
            closed_no_bypass.clone(),
            vec![],
        ),
        (
            FindingCode::VnetRulesWithPrivateLink,
            "",
            closed_no_bypass.clone(),
            vec![conn("acrprod", "c1", &pe, "Approved", "")],
        ),
        (
            FindingCode::TrustedServicesBlocked,
            "",
            closed_no_bypass.clone(),
            vec![],
        ),
        (
            FindingCode::ConnectionPending,
            "",
            open.clone(),
            vec![conn("acrprod", "c1", &pe, "Pending", "")],
        ),
        (
            FindingCode::ConnectionDisconnected,
            "",
            open.clone(),
            vec![conn("acrprod", "c1", &pe, "Disconnected", "")],
        ),
        (
            FindingCode::ConnectionProvisioningFailed,
            "",
            open.clone(),
            vec![failed.clone()],
        ),
        (
            FindingCode::ConnectionActionRequired,
            "",
            open.clone(),
            vec![failed.clone()],
        ),
        (
            FindingCode::ApprovedNotAllowed,
            "[[connections.rules]]\nname = \"n\"\naction = \"reject\"\n",
            open.clone(),
            vec![conn("acrprod", "c1", &pe, "Approved", "")],
        ),
        (
            FindingCode::EndpointUnresolved,
            &subnet_rule,
            open.clone(),
            vec![conn("acrprod", "c1", &pe, "Pending", "")],
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (code, text, props, conns) in cases {
        let p = plan(
            text,
            vec![posture_registry("Premium", props, conns)],
            vec![],
        );
        assert!(
            p.findings
                .iter()
                .any(|f| f.code == code && f.severity == code.severity() && !f.fix.is_empty()),
            "{code}: {:?}",
            p.findings
        );
        seen.insert(code);
    }
    // SKU: state using network features on Standard, and policy asking for them.
    let standard_state = plan(
        "",
        vec![posture_registry(
            "Standard",
            json!({"networkRuleSet": {"defaultAction": "Deny"}}),
            vec![],
        )],
        vec![],
    );
    assert!(
        standard_state
            .findings
            .iter()
            .any(|f| f.code == FindingCode::SkuNotPremium)
    );
    let standard_policy = plan(
        "[network]\ndefault_action = \"Deny\"",
        vec![posture_registry("Standard", json!({}), vec![])],
        vec![],
    );
    assert!(
        standard_policy
            .findings
            .iter()
            .any(|f| f.code == FindingCode::SkuNotPremium)
    );
    let standard_plain = plan(
        "",
        vec![posture_registry("Standard", json!({}), vec![])],
        vec![],
    );
    assert!(
        standard_plain.findings.is_empty(),
        "{:?}",
        standard_plain.findings
    );
    seen.insert(FindingCode::SkuNotPremium);
    for code in FindingCode::ALL {
        assert!(seen.contains(&code), "no case produces {code}");
    }
}

#[test]
fn trusted_services_deny_declares_the_block_intended() {
    let props = json!({"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "None"});
    let p = plan(
        "[network]\ntrusted_services = \"deny\"",
        vec![posture_registry("Premium", props.clone(), vec![])],
        vec![],
    );
    assert!(p.findings.is_empty(), "{:?}", p.findings);
    let p = plan("", vec![posture_registry("Premium", props, vec![])], vec![]);
    assert_eq!(
        p.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
        vec![FindingCode::TrustedServicesBlocked]
    );
}

#[test]
fn remediation_patches_only_what_differs() {
    let props = json!({"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "AzureServices",
                       "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.9", "action": "Allow"}, {"value": "10.0.0.0/8", "action": "Allow"}]}});
    let text = "[network]\npublic_network_access = \"Disabled\"\ndefault_action = \"Deny\"\nallowed_ip_ranges = [\"203.0.113.0/24\"]\ntrusted_services = \"allow\"\nremediate = true\n";
    let p = plan(
        text,
        vec![posture_registry("Premium", props, vec![])],
        vec![],
    );
    let r = p.remediations.first().expect("a patch");
    assert_eq!(
        r.patch.to_arm_body(),
        json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.9", "action": "Allow"}]}}})
    );
    // Nothing differs: no patch. Not Premium: no patch either (ARM would refuse it).
    let ok =
        json!({"publicNetworkAccess": "Disabled", "networkRuleSet": {"defaultAction": "Deny"}});
    assert!(
        plan(text, vec![posture_registry("Premium", ok, vec![])], vec![])
            .remediations
            .is_empty()
    );
    let p = plan(
        text,
        vec![posture_registry("Basic", json!({}), vec![])],
        vec![],
    );
    assert!(p.remediations.is_empty());
}

#[test]
fn ids_compare_case_insensitively() {
    let text = format!(
        "[scope]\nsubscriptions = [\"{}\"]\n[[connections.rules]]\nname = \"hub\"\naction = \"approve\"\n[connections.rules.match]\nsubnets = [\"/SUBSCRIPTIONS/{SUB}/resourcegroups/NET/providers/microsoft.network/virtualnetworks/HUB\"]\n",
        SUB.to_uppercase()
    );
    let pe = pe_id(SUB, "net", "pe-x");
    let (action, _, _) = decide_one(
        &text,
        "Pending",
        &pe.to_uppercase(),
        "",
        vec![endpoint(&pe, &subnet("hub", "s1"))],
    );
    assert_eq!(action, Action::Approve);
}

#[test]
fn validation_errors_name_line_key_and_fix() {
    let cases: &[(&str, &str, usize, &str, &str)] = &[
        (
            "unknown key",
            "version = 1\nmod = \"enforce\"\n",
            2,
            "mod",
            "unknown field `mod`",
        ),
        (
            "typo in rule",
            "[[connections.rules]]\nname = \"a\"\naction = \"approve\"\nmatch.subnet = []\n",
            4,
            "match.subnet",
            "unknown field `subnet`",
        ),
        ("bad enum", "mode = \"enforcing\"\n", 1, "mode", "`enforce`"),
        (
            "bad action",
            "[[connections.rules]]\nname = \"a\"\naction = \"allow\"\n",
            3,
            "action",
            "`approve`",
        ),
        (
            "missing name",
            "[[connections.rules]]\naction = \"approve\"\n",
            1,
            "connections.rules",
            "missing field `name`",
        ),
        (
            "missing action",
            "[[connections.rules]]\nname = \"a\"\n",
            1,
            "connections.rules",
            "missing field `action`",
        ),
        (
            "duplicate names",
            "[[connections.rules]]\nname = \"a\"\naction = \"approve\"\n[[connections.rules]]\nname = \"A\"\naction = \"reject\"\n",
            5,
            "connections.rules.name",
            "duplicate rule name",
        ),
        (
            "bad glob",
            "[scope]\nregistries = [\"acr[\"]\n",
            2,
            "scope.registries",
            "invalid glob",
        ),
        (
            "bad regex",
            "[[connections.rules]]\nname = \"a\"\naction = \"approve\"\n[connections.rules.match]\nrequest_message = \"(\"\n",
            5,
            "connections.rules.match.request_message",
            "invalid regular expression",
        ),
        (
            "bad cidr",
            "[network]\nallowed_ip_ranges = [\"10.0.0.0/33\"]\n",
            2,
            "network.allowed_ip_ranges",
            "not an IP address or CIDR",
        ),
        (
            "bad subnet id",
            "[[connections.rules]]\nname = \"a\"\naction = \"approve\"\nmatch.subnets = [\"/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/privateEndpoints/x\"]\n",
            4,
            "connections.rules.match.subnets",
            "not a subnet or virtual network id",
        ),
        (
            "empty match list",
            "[[connections.rules]]\nname = \"a\"\naction = \"approve\"\nmatch.registries = []\n",
            4,
            "connections.rules.match.registries",
            "empty list matches nothing",
        ),
        ("bad version", "version = 2\n", 1, "version", "version = 1"),
        (
            "wrong type",
            "[connections]\nrevoke_approved = \"yes\"\n",
            2,
            "revoke_approved",
            "boolean",
        ),
        (
            "bad placeholder",
            "[[connections.rules]]\nname = \"a\"\naction = \"approve\"\ndescription = \"by {rul}\"\n",
            4,
            "connections.rules.description",
            "{rule}",
        ),
        ("malformed toml", "version = \n", 1, "version", ""),
        ("empty file", "  \n", 0, "version", "empty"),
    ];
    for (label, text, line, key, needle) in cases {
        let err = Policy::parse("p.toml", text).expect_err(label);
        assert_eq!(err.file, "p.toml", "{label}");
        if *line > 0 {
            assert_eq!(err.line, *line, "{label}: {err}");
        }
        assert_eq!(err.key, *key, "{label}: {err}");
        assert!(err.message.contains(needle), "{label}: {err}");
        assert!(err.to_string().starts_with("p.toml:"), "{label}: {err}");
    }
}

proptest! {
    /// The decision names the first rule whose `private_endpoint_names` contains the endpoint.
    #[test]
    fn first_matching_rule_wins(rules in proptest::collection::vec((proptest::collection::btree_set(0u8..6, 0..4), 0u8..3), 1..8), pe in 0u8..6) {
        let mut text = String::new();
        let actions = ["approve", "reject", "leave"];
        for (i, (names, action)) in rules.iter().enumerate() {
            text.push_str(&format!("[[connections.rules]]\nname = \"r{i}\"\naction = \"{}\"\n", actions[*action as usize]));
            if !names.is_empty() {
                let list: Vec<String> = names.iter().map(|n| format!("\"pe-{n}\"")).collect();
                text.push_str(&format!("match.private_endpoint_names = [{}]\n", list.join(", ")));
            } else {
                text.push_str("match.registries = [\"nomatch\"]\n");
            }
        }
        let (action, rule, _) = decide_one(&text, "Pending", &pe_id(SUB, "rg", &format!("pe-{pe}")), "", vec![]);
        let oracle = rules.iter().position(|(names, _)| names.contains(&pe));
        prop_assert_eq!(rule, oracle.map(|i| format!("r{i}")));
        let want = match oracle.map(|i| rules[i].1) {
            Some(0) => Action::Approve,
            Some(1) => Action::Reject,
            _ => Action::Keep,
        };
        prop_assert_eq!(action, want);
    }
}
