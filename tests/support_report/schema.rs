//! Validation of `linkguard.report/v1` documents against the shipped JSON Schema (draft 2020-12,
//! formats asserted). `jsonschema` is a dev-dependency, so this lives with the tests.

use std::sync::OnceLock;

use linkguard::report::schema::REPORT_JSON_SCHEMA;
use serde_json::Value;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(REPORT_JSON_SCHEMA).expect("schemas/report.schema.json is JSON");
        jsonschema::draft202012::meta::validate(&schema)
            .expect("the report schema is a valid draft 2020-12 schema");
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the report schema compiles")
    })
}

/// `Ok` when `document` is a valid report; otherwise every violation as `<path>: <message>`.
pub fn validate(document: &Value) -> Result<(), Vec<String>> {
    let errors: Vec<String> = validator()
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Serializes `report` and validates it; panics with the violations.
pub fn assert_valid(report: &linkguard::report::Report) {
    let value = serde_json::to_value(report).expect("report serializes");
    if let Err(errors) = validate(&value) {
        panic!(
            "report {} violates schemas/report.schema.json:\n{}",
            report.run.id,
            errors.join("\n")
        );
    }
}
