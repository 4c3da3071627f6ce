//! The JSON Schema (draft 2020-12) of the `linkguard.report/v1` document, shipped in
//! `schemas/report.schema.json` and embedded here so tools can serve or print it. Validation lives
//! in the tests (dev-dependency `jsonschema`), see `tests/support_report/schema.rs`.

/// The schema text.
pub const REPORT_JSON_SCHEMA: &str = include_str!("../../schemas/report.schema.json");

/// The schema's `$id`.
pub const REPORT_SCHEMA_ID: &str = "urn:linkguard:schema:report:v1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FindingCode;

    fn schema() -> serde_json::Value {
        serde_json::from_str(REPORT_JSON_SCHEMA).unwrap()
    }

    #[test]
    fn schema_is_json_with_the_documented_id() {
        let s = schema();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["$id"], REPORT_SCHEMA_ID);
    }

    #[test]
    fn finding_code_enum_matches_the_plan_codes() {
        let s = schema();
        let codes: Vec<&str> = s["$defs"]["attention"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let expected: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, expected);
    }
}
