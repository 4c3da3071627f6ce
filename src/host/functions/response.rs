//! What the handler answers the host: always `{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}`
//! as `application/json`, never empty. A non-2xx answer tells the host the invocation failed (its
//! `Logs` are then dropped by the host, so failures are also logged on stdout); the `Error` member
//! says why for people and tests.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InvocationResponse {
    #[serde(rename = "Outputs", default, deserialize_with = "null_as_default")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs", default, deserialize_with = "null_as_default")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue", default)]
    pub return_value: Value,
    #[serde(rename = "Error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<HandlerError>,
}

/// Why an invocation was refused or failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerError {
    pub code: String,
    pub message: String,
    /// For an unknown function: the functions this handler serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
}

/// The value of an `http` output binding (`Outputs.res`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpOutput {
    #[serde(
        rename = "statusCode",
        alias = "status",
        deserialize_with = "status_code"
    )]
    pub status_code: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Value,
}

impl HttpOutput {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status_code: status,
            headers: BTreeMap::from([("Content-Type".to_string(), "application/json".to_string())]),
            body,
        }
    }
}

/// An answer to the host: status and body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: InvocationResponse,
}

impl Reply {
    pub fn ok(logs: Vec<String>) -> Self {
        Self {
            status: StatusCode::OK,
            body: InvocationResponse {
                logs,
                ..InvocationResponse::default()
            },
        }
    }

    pub fn failed(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        logs: Vec<String>,
    ) -> Self {
        Self {
            status,
            body: InvocationResponse {
                logs,
                error: Some(HandlerError {
                    code: code.to_string(),
                    message: message.into(),
                    functions: Vec::new(),
                }),
                ..InvocationResponse::default()
            },
        }
    }

    pub fn with_output(mut self, name: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.body.outputs.insert(name.to_string(), value);
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The host accepts the status as a number or numeric text.
fn status_code<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| serde::de::Error::custom(format!("status {n} is out of range"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("status `{s}` is not a number"))),
        other => Err(serde::de::Error::custom(format!(
            "status must be a number, found {other}"
        ))),
    }
}
