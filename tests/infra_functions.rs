#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Azure Functions app configuration (host.json, function/*/function.json,
//! examples/local.settings.json) against DESIGN 3.0 / 7.1 / 7.2, the Bicep that deploys it, and
//! the custom handler's routes (`POST /<FunctionName>`, src/host/functions/server.rs).

#[path = "infra/bicep.rs"]
mod bicep;

use std::collections::{BTreeMap, BTreeSet};

use linkguard::host::functions::server::Function;
use serde_json::Value;

const APP: &str = "infra/azure/modules/app.bicep";
const EVENTS: &str = "infra/azure/modules/events.bicep";
const MAIN: &str = "infra/azure/main.bicep";

/// The functions DESIGN 7.1 defines, with their trigger type.
const FUNCTIONS: [(&str, &str); 4] = [
    ("ConnectionEvents", "eventGridTrigger"),
    ("ScheduledAudit", "timerTrigger"),
    ("ManualAudit", "httpTrigger"),
    ("SubscriptionAudit", "queueTrigger"),
];

fn json(rel: &str) -> Value {
    let text = bicep::read(rel);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"))
}

/// `name -> default` of every row of the DESIGN 3.0 configuration table. CI has `shared/` beside
/// the repository; without it this fails (it never skips).
fn design_settings() -> BTreeMap<String, String> {
    let path = bicep::repo_root().join("../shared/DESIGN.md");
    let design = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): the infra tests hold the app settings against DESIGN 3.0, so shared/ must sit beside the repository",
            path.display()
        )
    });
    let start = design
        .find("### 3.0 Configuration")
        .expect("DESIGN.md has no section 3.0 Configuration");
    let section = &design[start..];
    let end = section[1..].find("\n#").map_or(section.len(), |e| e + 1);
    let mut out = BTreeMap::new();
    for line in section[..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `NAME` | meaning | default |" splits into ["", "`NAME`", meaning, default, ""].
        if cells.len() < 5 {
            continue;
        }
        let Some(name) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        if name.starts_with("LINKGUARD_") {
            out.insert(
                name.to_string(),
                cells[cells.len() - 2].trim_matches('`').to_string(),
            );
        }
    }
    assert!(
        out.len() >= 8,
        "DESIGN 3.0 table parsed to only {} settings: {out:?}",
        out.len()
    );
    out
}

fn function_dirs() -> BTreeSet<String> {
    let dir = bicep::repo_root().join("function");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect()
}

fn bindings(function: &str) -> Vec<Value> {
    let doc = json(&format!("function/{function}/function.json"));
    let list = doc["bindings"]
        .as_array()
        .unwrap_or_else(|| panic!("function/{function}/function.json has no bindings array"))
        .clone();
    let mut names = BTreeSet::new();
    for b in &list {
        for key in ["type", "name", "direction"] {
            assert!(
                b[key].is_string(),
                "function/{function}: every binding needs a string `{key}`: {b}"
            );
        }
        assert!(
            names.insert(b["name"].as_str().unwrap().to_string()),
            "function/{function}: binding names must be unique"
        );
    }
    list
}

/// `hh:mm:ss` as seconds.
fn timespan(value: &Value, what: &str) -> u64 {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} must be a hh:mm:ss string"));
    let parts: Vec<u64> = s
        .split(':')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("{what}: {s} is not hh:mm:ss"))
        })
        .collect();
    assert_eq!(parts.len(), 3, "{what}: {s} is not hh:mm:ss");
    assert!(
        parts[1] < 60 && parts[2] < 60,
        "{what}: {s} is not hh:mm:ss"
    );
    parts[0] * 3600 + parts[1] * 60 + parts[2]
}

#[test]
fn function_folders_are_exactly_the_designed_functions() {
    let expected: BTreeSet<String> = FUNCTIONS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(function_dirs(), expected, "function/ folders (DESIGN 7.1)");
    for (name, trigger) in FUNCTIONS {
        let b = bindings(name);
        let triggers: Vec<&Value> = b
            .iter()
            .filter(|x| x["type"].as_str().unwrap().ends_with("Trigger"))
            .collect();
        assert_eq!(triggers.len(), 1, "function/{name}: exactly one trigger");
        assert_eq!(
            triggers[0]["type"], trigger,
            "function/{name}: trigger type"
        );
        assert_eq!(
            triggers[0]["direction"], "in",
            "function/{name}: trigger direction"
        );
    }
}

#[test]
fn every_function_folder_is_a_route_the_handler_serves() {
    let served: BTreeSet<String> = linkguard::host::functions::FUNCTIONS
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(
        function_dirs(),
        served,
        "function/ folders vs the functions `linkguard serve` answers (server::FUNCTIONS)"
    );
    for dir in function_dirs() {
        // The host posts to /<folder name>; the handler resolves that name case-insensitively.
        let function = Function::from_name(&dir)
            .unwrap_or_else(|| panic!("function/{dir}: the handler has no route for it"));
        assert_eq!(function.name(), dir);
        assert_eq!(
            Function::from_name(&dir.to_ascii_lowercase()),
            Some(function)
        );
    }
}

#[test]
fn connection_events_binds_the_event_grid_event() {
    let b = bindings("ConnectionEvents");
    assert_eq!(b.len(), 1, "ConnectionEvents has only its trigger");
    assert_eq!(b[0]["name"], "eventGridEvent");
}

#[test]
fn scheduled_audit_reads_its_schedule_from_the_setting_and_retries() {
    let doc = json("function/ScheduledAudit/function.json");
    let b = bindings("ScheduledAudit");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["name"], "timer");
    assert_eq!(b[0]["schedule"], "%LINKGUARD_AUDIT_SCHEDULE%");
    let retry = &doc["retry"];
    assert_eq!(retry["strategy"], "exponentialBackoff");
    let count = retry["maxRetryCount"]
        .as_u64()
        .expect("retry.maxRetryCount must be a number");
    assert!(
        count >= 1,
        "retry.maxRetryCount must allow at least one retry"
    );
    let min = timespan(&retry["minimumInterval"], "retry.minimumInterval");
    let max = timespan(&retry["maximumInterval"], "retry.maximumInterval");
    assert!(0 < min && min <= max, "retry intervals: {min}s..{max}s");
}

#[test]
fn manual_audit_is_a_keyed_post_with_an_http_output() {
    let b = bindings("ManualAudit");
    assert_eq!(b.len(), 2);
    let trigger = &b[0];
    assert_eq!(trigger["type"], "httpTrigger");
    assert_eq!(trigger["name"], "req");
    assert_eq!(trigger["authLevel"], "function");
    assert_eq!(trigger["methods"], serde_json::json!(["post"]));
    let out = &b[1];
    assert_eq!(out["type"], "http");
    assert_eq!(out["direction"], "out");
    assert_eq!(out["name"], "res");
}

#[test]
fn host_json_starts_the_custom_handler_without_forwarding() {
    let host = json("host.json");
    assert_eq!(host["version"], "2.0");
    let ch = &host["customHandler"];
    assert_eq!(ch["description"]["defaultExecutablePath"], "linkguard");
    assert_eq!(ch["description"]["arguments"], serde_json::json!(["serve"]));
    // DESIGN 7.1: non-2xx must mean "invocation failed", which only holds without forwarding.
    assert_eq!(ch["enableForwardingHttpRequest"], false);
    assert!(
        ch.get("enableProxyingHttpRequest")
            .is_none_or(|v| v == false),
        "enableProxyingHttpRequest must stay off"
    );
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    let timeout = timespan(&host["functionTimeout"], "functionTimeout");
    assert!(
        (60..=3600).contains(&timeout),
        "functionTimeout {timeout}s: audits need minutes, and a bound keeps a hung handler from running forever"
    );
    assert!(
        host["logging"]["applicationInsights"]["samplingSettings"].is_object(),
        "host.json: logging.applicationInsights.samplingSettings"
    );
    let queues = &host["extensions"]["queues"];
    assert_eq!(queues["maxDequeueCount"], 5);
    assert!(queues["batchSize"].as_u64().is_some_and(|n| n >= 1));
    timespan(
        &queues["visibilityTimeout"],
        "extensions.queues.visibilityTimeout",
    );
}

#[test]
fn event_subscription_targets_the_connection_events_function() {
    let events = bicep::read(EVENTS);
    let sub = bicep::block_after(
        &events,
        "resource connectionEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@",
    );
    let destination = bicep::block_after(sub, "destination:");
    assert_eq!(
        bicep::unquote(bicep::line_value(destination, "endpointType")),
        "AzureFunction"
    );
    let resource_id = bicep::line_value(destination, "resourceId");
    let function = resource_id
        .strip_prefix("'${functionAppId}/functions/")
        .and_then(|r| r.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{EVENTS}: unexpected resourceId {resource_id}"));
    assert!(
        function_dirs().contains(function),
        "{EVENTS}: event subscription targets function {function}, which has no folder under function/"
    );
    let trigger = bindings(function)
        .into_iter()
        .find(|b| b["direction"] == "in")
        .unwrap();
    assert_eq!(
        trigger["type"], "eventGridTrigger",
        "{function} must be the Event Grid function"
    );

    // The function app id handed to the module is the deployed function app's.
    let main = bicep::read(MAIN);
    let module = bicep::block_after(&main, "module events 'modules/events.bicep'");
    assert_eq!(
        bicep::line_value(module, "functionAppId"),
        "app.outputs.functionAppId"
    );
    assert!(bicep::read(APP).contains("output functionAppId string = functionApp.id"));
}

/// The filter's operation prefixes for one value of `includePrivateEndpointRead`, evaluated from
/// events.bicep.
fn acted_on_prefixes(events: &str, include_private_endpoint_read: bool) -> Vec<String> {
    let expression = events
        .lines()
        .find_map(|l| l.trim().strip_prefix("var actedOnOperationPrefixes ="))
        .unwrap_or_else(|| panic!("{EVENTS}: var actedOnOperationPrefixes missing"))
        .trim();
    // The only expression shape this test knows how to evaluate; a different one must be taught here.
    assert_eq!(
        expression,
        "includePrivateEndpointRead ? concat(registryOperationPrefixes, privateEndpointOperationPrefixes) : registryOperationPrefixes",
        "{EVENTS}: the filter's prefixes expression changed"
    );
    let list =
        |name: &str| bicep::string_list(bicep::block_after(events, &format!("var {name} =")));
    let mut prefixes = list("registryOperationPrefixes");
    if include_private_endpoint_read {
        prefixes.extend(list("privateEndpointOperationPrefixes"));
    }
    prefixes
}

/// Event Grid's StringBeginsWith is case-insensitive; values inside one filter are OR-ed.
fn acted_on(prefixes: &[String], operation: &str) -> bool {
    let op = operation.to_ascii_lowercase();
    prefixes
        .iter()
        .any(|p| op.starts_with(&p.to_ascii_lowercase()))
}

#[test]
fn event_filter_selects_the_operations_of_design_7_2() {
    let events = bicep::read(EVENTS);
    let sub = bicep::block_after(
        &events,
        "resource connectionEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@",
    );
    let types = bicep::string_list(bicep::block_after(sub, "includedEventTypes:"));
    assert_eq!(
        types,
        [
            "Microsoft.Resources.ResourceWriteSuccess",
            "Microsoft.Resources.ResourceDeleteSuccess",
            "Microsoft.Resources.ResourceActionSuccess",
        ]
    );
    // Several advanced filters would be AND-ed; the operations must share one filter.
    let filters = bicep::block_after(sub, "advancedFilters:");
    assert_eq!(
        filters.matches("operatorType:").count(),
        1,
        "{EVENTS}: one advanced filter"
    );
    assert_eq!(
        bicep::unquote(bicep::line_value(filters, "operatorType")),
        "StringBeginsWith"
    );
    assert_eq!(
        bicep::unquote(bicep::line_value(filters, "key")),
        "data.operationName"
    );
    assert_eq!(
        bicep::line_value(filters, "values"),
        "actedOnOperationPrefixes"
    );
    for include_private_endpoint_read in [false, true] {
        let prefixes = acted_on_prefixes(&events, include_private_endpoint_read);
        for op in [
            "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write",
            "Microsoft.ContainerRegistry/registries/privateEndpointConnections/delete",
            "Microsoft.ContainerRegistry/registries/privateEndpointConnectionProxies/write",
            "Microsoft.ContainerRegistry/registries/privateEndpointConnectionProxies/validate/action",
            "Microsoft.ContainerRegistry/registries/write",
            "microsoft.containerregistry/registries/write",
        ] {
            assert!(acted_on(&prefixes, op), "{op} must reach ConnectionEvents");
        }
        // DESIGN 7.2 acts on an endpoint's write by reading the endpoint: forwarded only when
        // the role may read it (tests/infra_role.rs holds the two switches together).
        assert_eq!(
            acted_on(&prefixes, "Microsoft.Network/privateEndpoints/write"),
            include_private_endpoint_read,
            "{EVENTS}: Microsoft.Network/privateEndpoints/write with includePrivateEndpointRead={include_private_endpoint_read}"
        );
        for op in [
            "Microsoft.ContainerRegistry/registries/delete",
            "Microsoft.ContainerRegistry/registries/webhooks/write",
            "Microsoft.ContainerRegistry/registries/replications/write",
            "Microsoft.Network/privateEndpoints/delete",
            "Microsoft.Storage/storageAccounts/write",
        ] {
            assert!(!acted_on(&prefixes, op), "{op} must be filtered out");
        }
    }

    let retry = bicep::block_after(sub, "retryPolicy:");
    assert_eq!(
        bicep::line_value(retry, "maxDeliveryAttempts"),
        "maxDeliveryAttempts"
    );
    let dead_letter = bicep::block_after(sub, "deadLetterWithResourceIdentity:");
    assert!(dead_letter.contains("blobContainerName: deadLetterContainerName"));
}

#[test]
fn app_settings_cover_every_design_setting() {
    let design = design_settings();
    let app = bicep::read(APP);
    let settings = bicep::app_settings(bicep::block_after(&app, "appSettings:"));
    let set: BTreeSet<String> = settings
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n.starts_with("LINKGUARD_"))
        .collect();
    let marker = app
        .lines()
        .find_map(|l| l.trim().strip_prefix("// linkguard-settings-not-set:"))
        .unwrap_or_else(|| panic!("{APP}: no `// linkguard-settings-not-set:` line"));
    let not_set: BTreeSet<String> = marker.split_whitespace().map(str::to_string).collect();

    let both: Vec<_> = set.intersection(&not_set).collect();
    assert!(
        both.is_empty(),
        "{APP}: set and listed as not set: {both:?}"
    );
    let declared: BTreeSet<String> = design.keys().cloned().collect();
    let covered: BTreeSet<String> = set.union(&not_set).cloned().collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    let unknown: Vec<_> = covered.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "{APP}: DESIGN 3.0 settings neither set nor explained: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "{APP}: LINKGUARD_* settings that DESIGN 3.0 does not define: {unknown:?}"
    );
    // Each name listed as not set is explained in the comment below the marker.
    for name in &not_set {
        assert!(
            app.matches(name.as_str()).count() >= 2,
            "{APP}: {name} is listed as not set but its reason is missing"
        );
    }

    let value = |name: &str| {
        settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{APP}: app setting {name} missing"))
    };
    assert_eq!(
        value("AzureWebJobsStorage__credential"),
        "'managedidentity'"
    );
    assert_eq!(value("AzureWebJobsStorage__accountName"), "storage.name");
    assert_eq!(
        value("AzureWebJobsStorage__clientId"),
        "hostIdentity.properties.clientId"
    );
    assert_eq!(
        value("LINKGUARD_REPORTS"),
        "'${storage.properties.primaryEndpoints.blob}${reportsContainerName}'"
    );
    // Event Grid stamps subscription system-topic events with topic /subscriptions/{id}.
    assert_eq!(value("LINKGUARD_EVENT_TOPICS"), "eventTopics");
    let main = bicep::read(MAIN);
    let module = bicep::block_after(&main, "module app 'modules/app.bicep'");
    assert_eq!(
        bicep::line_value(module, "eventTopics"),
        "subscription().id"
    );

    // Defaults of the deployment match DESIGN's defaults.
    for (param, setting) in [
        ("auditSchedule", "LINKGUARD_AUDIT_SCHEDULE"),
        ("armEndpoint", "LINKGUARD_ARM_ENDPOINT"),
    ] {
        let line = main
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("param {param} string = ")))
            .unwrap_or_else(|| panic!("{MAIN}: param {param} with a default"));
        assert_eq!(
            bicep::unquote(line),
            design[setting],
            "{MAIN}: default of {param} vs DESIGN 3.0 {setting}"
        );
    }

    // Flex Consumption: the worker runtime is functionAppConfig.runtime.name, not an app setting.
    let site = bicep::block_after(&app, "resource functionApp 'Microsoft.Web/sites@");
    let runtime = bicep::block_after(site, "runtime:");
    assert_eq!(bicep::unquote(bicep::line_value(runtime, "name")), "custom");
}

#[test]
fn every_app_setting_a_binding_expands_is_set() {
    let app = bicep::read(APP);
    let deployed: BTreeSet<String> = bicep::app_settings(bicep::block_after(&app, "appSettings:"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let local = json("examples/local.settings.json");
    for (function, _) in FUNCTIONS {
        let text = bicep::read(&format!("function/{function}/function.json"));
        for name in text.split('%').skip(1).step_by(2) {
            assert!(
                deployed.contains(name),
                "{function} expands %{name}%, which {APP} does not set"
            );
            assert!(
                local["Values"][name].is_string(),
                "{function} expands %{name}%, which examples/local.settings.json does not set"
            );
        }
    }
}

#[test]
fn local_settings_example_runs_the_custom_handler_with_every_setting() {
    let local = json("examples/local.settings.json");
    let values = local["Values"]
        .as_object()
        .expect("examples/local.settings.json: Values object");
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(values["AzureWebJobsStorage"], "UseDevelopmentStorage=true");
    let design = design_settings();
    for name in design.keys() {
        assert!(
            values.get(name).is_some_and(Value::is_string),
            "examples/local.settings.json: {name} (DESIGN 3.0) missing"
        );
    }
    for name in values.keys().filter(|k| k.starts_with("LINKGUARD_")) {
        assert!(
            design.contains_key(name),
            "examples/local.settings.json: {name} is not a DESIGN 3.0 setting"
        );
    }
    assert_eq!(
        values["LINKGUARD_AUDIT_SCHEDULE"], design["LINKGUARD_AUDIT_SCHEDULE"],
        "the example keeps DESIGN's default schedule"
    );
}
