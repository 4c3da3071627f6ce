//! The estate file of DESIGN 3.1: registries (ARM or az CLI shape) and, optionally, the private
//! endpoints their connections point at.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::endpoint::PrivateEndpoint;
use super::id::ResourceId;
use super::registry::Registry;
use super::shape;

#[derive(Clone, Debug, Default)]
pub struct Estate {
    pub registries: Vec<Registry>,
    pub private_endpoints: HashMap<ResourceId, PrivateEndpoint>,
}

/// Why an estate could not be read: always names the file and, when known, the field.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct EstateError {
    pub file: String,
    pub message: String,
}

impl Estate {
    /// Reads and validates an estate file.
    pub fn load(path: &Path) -> Result<Self, EstateError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| EstateError {
            file: file.clone(),
            message: format!(
                "cannot read the estate file: {e}; pass an existing JSON file to --estate"
            ),
        })?;
        Self::from_json_str(&text).map_err(|message| EstateError { file, message })
    }

    /// Parses estate JSON text; the error names the field path and the fix.
    pub fn from_json_str(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("the file is empty; expected {\"registries\": [...], \"privateEndpoints\": [...]} or the array `az acr list` prints".into());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, String> {
        let (registries, endpoints) = match value {
            Value::Array(regs) => (regs, Vec::new()),
            Value::Object(mut obj) => {
                let regs = match obj.remove("registries") {
                    Some(Value::Array(a)) => a,
                    Some(Value::Null) | None => {
                        return Err("field `registries` is missing; expected {\"registries\": [...]} (a bare array is read as the registries)".into());
                    }
                    Some(other) => {
                        return Err(format!(
                            "field `registries` must be an array, found {}",
                            kind(&other)
                        ));
                    }
                };
                let pes = match obj.remove("privateEndpoints") {
                    Some(Value::Array(a)) => a,
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => {
                        return Err(format!(
                            "field `privateEndpoints` must be an array, found {}",
                            kind(&other)
                        ));
                    }
                };
                (regs, pes)
            }
            other => {
                return Err(format!(
                    "expected a JSON object with `registries` or an array, found {}",
                    kind(&other)
                ));
            }
        };
        let mut estate = Estate::default();
        for (i, reg) in registries.into_iter().enumerate() {
            let registry: Registry =
                typed(shape::registry_to_arm(reg), &format!("registries[{i}]"))?;
            estate.registries.push(registry);
        }
        for (i, pe) in endpoints.into_iter().enumerate() {
            let pe: PrivateEndpoint = typed(
                shape::endpoint_to_arm(pe),
                &format!("privateEndpoints[{i}]"),
            )?;
            estate.private_endpoints.insert(pe.id.clone(), pe);
        }
        Ok(estate)
    }
}

/// Deserializes with the failing field's path in the message.
pub(crate) fn typed<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            at.to_string()
        } else {
            format!("{at}.{path}")
        };
        format!("{field}: {}", e.into_inner())
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_estates_name_the_field() {
        for (text, expect) in [
            ("", "empty"),
            ("{", "not valid JSON"),
            ("42", "found a number"),
            ("{\"registry\": []}", "field `registries` is missing"),
            ("{\"registries\": {}}", "must be an array"),
            ("[{\"name\": \"r\"}]", "registries[0]: missing field `id`"),
            (
                "[{\"id\": \"nope\"}]",
                "registries[0].id: invalid ARM resource id",
            ),
            (
                "[{\"id\": \"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r\", \"properties\": {\"privateEndpointConnections\": [{\"id\": 5}]}}]",
                "registries[0].properties.privateEndpointConnections[0].id",
            ),
            (
                "{\"registries\": [], \"privateEndpoints\": [{\"id\": \"/subscriptions/s\", \"properties\": {\"subnet\": {\"id\": true}}}]}",
                "privateEndpoints[0].properties.subnet.id",
            ),
        ] {
            let err = Estate::from_json_str(text).unwrap_err();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn missing_file_is_named() {
        let err = Estate::load(Path::new("/nonexistent/estate.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/estate.json: cannot read"),
            "{err}"
        );
    }
}
