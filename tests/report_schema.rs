//! `schemas/report.schema.json` accepts the reports linkguard produces and rejects broken ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support_report/mod.rs"]
mod support_report;

use linkguard::report::render;
use serde_json::{Value, json};
use support_report::{reports, schema};

fn produced() -> Value {
    let r = reports::sample(
        "20261125T100000Z-7f3a9c",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:02:13+00:00",
        false,
    );
    serde_json::from_str(&render::to_json(&r)).unwrap()
}

fn rejected_because(doc: &Value, needle: &str) {
    match schema::validate(doc) {
        Ok(()) => {
            panic!("schema accepted a broken report (expected an error mentioning {needle:?})")
        }
        Err(errors) => assert!(
            errors.iter().any(|e| e.contains(needle)),
            "expected an error mentioning {needle:?}, got {errors:?}"
        ),
    }
}

#[test]
fn produced_reports_validate() {
    let complete = reports::sample(
        "run-a",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
        true,
    );
    schema::assert_valid(&complete);
    schema::validate(&produced()).unwrap();
    // An empty run (nothing governed) is a valid report too.
    let mut empty = complete.clone();
    empty.registries.clear();
    empty.actions.clear();
    empty.needs_attention.clear();
    empty.totals = Default::default();
    schema::assert_valid(&empty);
}

#[test]
fn missing_complete_is_rejected() {
    let mut doc = produced();
    doc.as_object_mut().unwrap().remove("complete");
    rejected_because(&doc, "\"complete\" is a required property");
}

#[test]
fn bad_trigger_and_mode_are_rejected() {
    let mut doc = produced();
    doc["run"]["trigger"] = json!("cron");
    rejected_because(&doc, "/run/trigger");
    let mut doc = produced();
    doc["run"]["mode"] = json!("yolo");
    rejected_because(&doc, "/run/mode");
}

#[test]
fn bad_outcome_severity_and_code_are_rejected() {
    let mut doc = produced();
    doc["actions"][0]["outcome"] = json!("done");
    rejected_because(&doc, "/actions/0/outcome");
    let mut doc = produced();
    doc["needs_attention"][0]["severity"] = json!("critical");
    rejected_because(&doc, "/needs_attention/0/severity");
    let mut doc = produced();
    doc["needs_attention"][0]["code"] = json!("made-up-code");
    rejected_because(&doc, "/needs_attention/0/code");
}

#[test]
fn closed_objects_reject_unknown_fields() {
    let mut doc = produced();
    doc["totals"]["bogus"] = json!(1);
    rejected_because(&doc, "/totals");
    let mut doc = produced();
    doc["extra"] = json!(true);
    rejected_because(&doc, "Additional properties are not allowed");
}

#[test]
fn types_formats_and_rules_between_fields_are_checked() {
    let mut doc = produced();
    doc["run"]["started"] = json!("yesterday");
    rejected_because(&doc, "/run/started");
    let mut doc = produced();
    doc["totals"]["pending"] = json!(-1);
    rejected_because(&doc, "/totals/pending");
    let mut doc = produced();
    doc["schema"] = json!("linkguard.report/v2");
    rejected_because(&doc, "/schema");
    let mut doc = produced();
    doc["run"]["id"] = json!("../../etc/passwd");
    rejected_because(&doc, "/run/id");
    // A failed action says why; an incomplete run lists what it could not read.
    let mut doc = produced();
    let failed = doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["outcome"] == "failed")
        .unwrap();
    doc["actions"][failed]["error"] = Value::Null;
    rejected_because(&doc, &format!("/actions/{failed}/error"));
    let mut doc = produced();
    doc["errors"] = json!([]);
    rejected_because(&doc, "/errors");
}

/// A document with exactly the fields DESIGN 6 shows (no `severity`, no `by_state`) validates and
/// reads: the schema requires nothing the contract does not list.
#[test]
fn a_report_with_only_design_fields_validates_reads_and_renders() {
    let mut doc = produced();
    for item in doc["needs_attention"].as_array_mut().unwrap() {
        item.as_object_mut().unwrap().remove("severity");
    }
    for registry in doc["registries"].as_array_mut().unwrap() {
        registry.as_object_mut().unwrap().remove("by_state");
    }
    schema::validate(&doc).unwrap();
    let report: linkguard::report::Report = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(
        report.needs_attention.len(),
        doc["needs_attention"].as_array().unwrap().len()
    );
    // Renderers list such items as `unspecified`, after every known severity.
    let markdown = render::markdown::render(&report);
    let rows = markdown.matches("| **unspecified** |").count();
    assert_eq!(rows, report.needs_attention.len(), "{markdown}");
    let html = render::html::render(&report);
    assert!(html.contains(">unspecified</span>"), "{html}");
}

/// The extensions are optional in the schema, so nothing but this test holds the writer to them:
/// every needs-attention item carries a severity from the schema's list, every registry its counts.
#[test]
fn the_writer_always_emits_the_extension_fields() {
    let doc = produced();
    let s: Value = serde_json::from_str(linkguard::report::schema::REPORT_JSON_SCHEMA).unwrap();
    let severities = s["$defs"]["attention"]["properties"]["severity"]["enum"]
        .as_array()
        .unwrap();
    let items = doc["needs_attention"].as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert!(severities.contains(&item["severity"]), "{item}");
    }
    let registries = doc["registries"].as_array().unwrap();
    assert!(!registries.is_empty());
    for registry in registries {
        assert!(registry["by_state"]["pending"].is_u64(), "{registry}");
    }
}
