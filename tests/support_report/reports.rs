//! Report values as a real run produces them: ARM ids as ARM prints them, several registries, every
//! action outcome, findings of every severity (listed unsorted, as the engine emits them per
//! registry), errors, and an incomplete variant.

use linkguard::report::{
    ActionRecord, AttentionItem, Outcome, REPORT_SCHEMA, RegistrySummary, Report, RunError,
    RunInfo, RunMode, StateCounts, Totals, Trigger,
};
use sha2::{Digest, Sha256};

pub const SUB_PROD: &str = "7d2f3a10-5c4e-4b8e-9a61-2f0c8e4d1b37";
pub const SUB_SHARED: &str = "c9a1e6b2-03d4-4f7a-8e25-6b9d0f1a2c48";

pub fn registry_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}"
    )
}

pub fn connection_id(registry: &str, name: &str) -> String {
    format!("{registry}/privateEndpointConnections/{name}")
}

pub fn policy_sha256() -> String {
    format!("{:x}", Sha256::digest(b"[scope]\nsubscriptions = []\n"))
}

/// `posture`: (public network access, default action, trusted services); `rules`: (IP, VNet).
fn registry(
    id: &str,
    sku: &str,
    posture: (&str, &str, bool),
    rules: (u64, u64),
    s: StateCounts,
) -> RegistrySummary {
    let (pna, default, trusted) = posture;
    RegistrySummary {
        id: id.to_string(),
        sku: sku.into(),
        public_network_access: pna.into(),
        default_action: default.into(),
        trusted_services: trusted,
        ip_rules: rules.0,
        vnet_rules: rules.1,
        connections: s.approved + s.pending + s.rejected + s.disconnected + s.other,
        by_state: s,
    }
}

fn attention(
    registry: &str,
    connection: Option<String>,
    code: &str,
    severity: &str,
    message: &str,
    fix: &str,
) -> AttentionItem {
    AttentionItem {
        registry: registry.into(),
        connection,
        code: code.into(),
        severity: severity.into(),
        message: message.into(),
        fix: fix.into(),
    }
}

/// A complete run over four registries (or, with `complete = false`, one more that could not be
/// read, reported in `errors`).
pub fn sample(run_id: &str, started: &str, finished: &str, complete: bool) -> Report {
    let prod = registry_id(SUB_PROD, "rg-registry-prod", "acrprodweu");
    let shared = registry_id(SUB_SHARED, "rg-shared-dev", "acrshareddev");
    let sandbox = registry_id(SUB_SHARED, "rg-sandbox", "acrsandbox");
    let platform = registry_id(SUB_PROD, "RG-PLATFORM", "acrplatform");
    let locked = registry_id(SUB_PROD, "rg-locked", "acrlocked");

    let registries = vec![
        registry(
            &prod,
            "Premium",
            ("Disabled", "Deny", true),
            (0, 0),
            StateCounts {
                approved: 4,
                pending: 1,
                rejected: 1,
                disconnected: 0,
                other: 0,
            },
        ),
        registry(
            &shared,
            "Premium",
            ("Enabled", "Allow", false),
            (3, 2),
            StateCounts {
                approved: 1,
                pending: 2,
                rejected: 0,
                disconnected: 1,
                other: 0,
            },
        ),
        registry(
            &sandbox,
            "Standard",
            ("Enabled", "Allow", true),
            (0, 0),
            StateCounts::default(),
        ),
        registry(
            &platform,
            "Premium",
            ("Disabled", "Deny", false),
            (2, 0),
            StateCounts {
                approved: 1,
                pending: 0,
                rejected: 1,
                disconnected: 0,
                other: 1,
            },
        ),
    ];

    let actions = vec![
        ActionRecord {
            registry: prod.clone(),
            connection: Some(connection_id(&prod, "pe-aks-weu-01.5f1c2a9e-7b3d-4e8a-b6c4-0d9e1f2a3b4c")),
            action: "approve".into(),
            rule: Some("platform-subscriptions".into()),
            outcome: Outcome::Applied,
            error: None,
        },
        ActionRecord {
            registry: shared.clone(),
            connection: Some(connection_id(&shared, "pe-unknown-tenant.8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d")),
            action: "reject".into(),
            rule: Some("foreign-tenants".into()),
            outcome: Outcome::Failed,
            error: Some("ARM 409 Conflict (AnotherOperationInProgress): Another operation is in progress on the registry; retry later".into()),
        },
        ActionRecord {
            registry: shared.clone(),
            connection: Some(connection_id(&shared, "pe-old-build-agent.1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e")),
            action: "delete".into(),
            rule: None,
            outcome: Outcome::Skipped,
            error: None,
        },
        ActionRecord {
            registry: platform.clone(),
            connection: None,
            action: "patch".into(),
            rule: Some("posture.trusted_services".into()),
            outcome: Outcome::DryRun,
            error: None,
        },
    ];

    let needs_attention = vec![
        attention(
            &prod,
            Some(connection_id(
                &prod,
                "pe-partner-ci.2c3d4e5f-6a7b-8c9d-0e1f-2a3b4c5d6e7f",
            )),
            "connection-pending",
            "medium",
            "Pending connection from subscription 3f9e... matches no rule; left pending",
            "Add a rule for the partner subscription, or reject the connection in the portal",
        ),
        attention(
            &prod,
            Some(connection_id(
                &prod,
                "pe-legacy-vm.3d4e5f6a-7b8c-9d0e-1f2a-3b4c5d6e7f8a",
            )),
            "approved-not-allowed",
            "high",
            "Approved connection matches rule foreign-tenants (reject); revoke_approved is off, so it stays approved",
            "Set revoke_approved = true or remove the endpoint",
        ),
        attention(
            &shared,
            None,
            "public-network-access",
            "high",
            "Public network access is Enabled; the policy requires Disabled",
            "az acr update -n acrshareddev --public-network-enabled false",
        ),
        attention(
            &shared,
            None,
            "vnet-rules-with-private-link",
            "high",
            "2 service-endpoint (VNet) rules alongside private endpoints; a registry does not support both",
            "Remove the VNet rules",
        ),
        attention(
            &shared,
            Some(connection_id(
                &shared,
                "pe-old-build-agent.1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e",
            )),
            "connection-disconnected",
            "low",
            "The private endpoint was deleted; the connection is Disconnected",
            "Delete the connection or set delete_disconnected = true",
        ),
        attention(
            &sandbox,
            None,
            "sku-not-premium",
            "info",
            "Standard SKU: private endpoints and network rules need Premium",
            "Upgrade to Premium if the registry must be private",
        ),
        attention(
            &platform,
            None,
            "trusted-services-blocked",
            "medium",
            "Default action Deny without AzureServices bypass: Defender for Cloud scanning, ACR Tasks and ACR import cannot reach the registry",
            "Set networkRuleBypassOptions to AzureServices, or trusted_services = \"deny\" if intended",
        ),
        attention(
            &shared,
            Some(connection_id(
                &shared,
                "pe-unknown-tenant.8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d",
            )),
            "endpoint-unresolved",
            "medium",
            "The private endpoint could not be read (403 from another tenant); subnet rules do not match",
            "Grant Reader on the endpoint, or match by subscription",
        ),
    ];

    let mut errors = Vec::new();
    let mut total_registries = registries.len() as u64;
    if !complete {
        total_registries += 1;
        errors.push(RunError {
            scope: locked,
            message: "AuthorizationFailed: The client '0e8c1f4a-...' does not have authorization to perform action 'Microsoft.ContainerRegistry/registries/read'".into(),
        });
        errors.push(RunError {
            scope: "arm".into(),
            message: "429 TooManyRequests on 2 requests; retried after 12 s".into(),
        });
    }

    let sum = |f: fn(&StateCounts) -> u64| registries.iter().map(|r| f(&r.by_state)).sum::<u64>();
    let totals = Totals {
        registries: total_registries,
        connections: registries.iter().map(|r| r.connections).sum(),
        approved: sum(|s| s.approved),
        pending: sum(|s| s.pending),
        rejected: sum(|s| s.rejected),
        disconnected: sum(|s| s.disconnected),
        failed: actions
            .iter()
            .filter(|a| a.outcome == Outcome::Failed)
            .count() as u64,
    };

    Report {
        schema: REPORT_SCHEMA.into(),
        run: RunInfo {
            id: run_id.into(),
            trigger: Trigger::Timer,
            mode: RunMode::Enforce,
            started: started.into(),
            finished: finished.into(),
            policy_sha256: policy_sha256(),
            version: "0.1.0".into(),
            arm_requests: 37,
        },
        totals,
        registries,
        actions,
        needs_attention,
        errors,
        complete,
    }
}

/// Strings that would inject markup, scripts, table cells, links or terminal escapes if any
/// renderer forgot to escape them.
pub const HOSTILE_SCRIPT: &str =
    "<script>document.documentElement.setAttribute('data-pwned','script')</script>";
pub const HOSTILE_IMG: &str =
    "\"><img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">";
pub const HOSTILE_MARKDOWN: &str = "| x | *bold* _em_ [click](javascript:alert(1)) ![i](http://evil.example/x.png) `code` <b>b</b>";
pub const HOSTILE_TABLE: &str = "</td></tr></table><h1 id=\"injected\">injected</h1>";
pub const HOSTILE_TERMINAL: &str = "\u{1b}[2J\u{1b}[31mred\u{202e}txt";

/// The sample report with hostile strings in every free-text place renderers show.
pub fn hostile() -> Report {
    let mut r = sample(
        "hostile-run-1",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
        false,
    );
    let evil_registry = registry_id(SUB_PROD, "rg-evil", HOSTILE_SCRIPT);
    r.registries[0].id = evil_registry.clone();
    r.registries[1].sku = HOSTILE_IMG.into();
    r.registries[1].public_network_access = HOSTILE_TERMINAL.into();
    r.actions[0].registry = evil_registry.clone();
    r.actions[0].rule = Some(HOSTILE_MARKDOWN.into());
    r.actions[1].error = Some(HOSTILE_TABLE.into());
    r.actions[1].connection = Some(connection_id(&r.registries[1].id, HOSTILE_IMG));
    r.needs_attention[0].registry = evil_registry;
    r.needs_attention[0].message = HOSTILE_MARKDOWN.into();
    r.needs_attention[1].fix = HOSTILE_TABLE.into();
    r.needs_attention[2].code = HOSTILE_IMG.into();
    r.needs_attention[3].severity = "<i>critical</i>".into();
    r.needs_attention[4].message = HOSTILE_TERMINAL.into();
    r.errors[0].scope = HOSTILE_SCRIPT.into();
    r.errors[0].message = HOSTILE_MARKDOWN.into();
    r.errors[1].message = HOSTILE_TABLE.into();
    r.run.id = format!("{HOSTILE_SCRIPT}{HOSTILE_IMG}");
    r.run.started = HOSTILE_TABLE.into();
    r.run.version = HOSTILE_IMG.into();
    r.run.policy_sha256 = HOSTILE_SCRIPT.into();
    r
}
