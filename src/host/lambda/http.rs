//! HTTP over Lambda: a Function URL or API Gateway v2 (payload format 2.0) request read with the
//! `aws_lambda_events` types into one small request, and the reply written back in the format-2.0
//! response shape (`statusCode`, `headers`, `body`, `isBase64Encoded`, `cookies`) both accept.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::http::header::{CONTENT_TYPE, HeaderName};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use std::fmt;

use base64::Engine as _;
use serde_json::{Value, json};

/// Which front door the request came through (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    FunctionUrl,
    ApiGatewayV2,
}

/// The parts of an HTTP request the webhook needs. Query and header values are never logged (either
/// may carry the webhook secret), nor the body: `Debug` shows only names and sizes.
#[derive(Clone)]
pub struct HttpRequest {
    pub source: Source,
    /// Upper case, e.g. `POST`.
    pub method: String,
    pub headers: HeaderMap,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub body: Option<String>,
    pub is_base64_encoded: bool,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        let query_names: Vec<&str> = self.query.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("source", &self.source)
            .field("method", &self.method)
            .field("headers (values redacted)", &header_names)
            .field("query (values redacted)", &query_names)
            .field("body_len", &self.body.as_ref().map(String::len))
            .field("is_base64_encoded", &self.is_base64_encoded)
            .finish()
    }
}

impl HttpRequest {
    /// Reads a Function URL request, or else an API Gateway v2 HTTP request.
    /// The two shapes are the same payload format 2.0; only API Gateway has a `stage`.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let api_gateway = value
            .get("requestContext")
            .is_some_and(|c| c.get("stage").is_some());
        let as_url = |v: Value| serde_json::from_value::<LambdaFunctionUrlRequest>(v);
        let as_api = |v: Value| serde_json::from_value::<ApiGatewayV2httpRequest>(v);
        let first = if api_gateway {
            as_api(value.clone()).map(Self::from_api_gateway)
        } else {
            as_url(value.clone()).map(Self::from_function_url)
        };
        let first_error = match first {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let second = if api_gateway {
            as_url(value).map(Self::from_function_url)
        } else {
            as_api(value).map(Self::from_api_gateway)
        };
        second.map_err(|e| {
            format!(
                "an HTTP request (it has requestContext.http) that reads neither as a Function URL nor as an API Gateway v2 request: {first_error}; {e}"
            )
        })
    }

    fn from_function_url(r: LambdaFunctionUrlRequest) -> Self {
        let query = query_pairs(
            r.raw_query_string.as_deref(),
            r.query_string_parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        Self {
            source: Source::FunctionUrl,
            method: r
                .request_context
                .http
                .method
                .unwrap_or_default()
                .to_ascii_uppercase(),
            headers: r.headers,
            query,
            body: r.body,
            is_base64_encoded: r.is_base64_encoded,
        }
    }

    fn from_api_gateway(r: ApiGatewayV2httpRequest) -> Self {
        let params: Vec<(String, String)> = r
            .query_string_parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self {
            source: Source::ApiGatewayV2,
            method: r.request_context.http.method.as_str().to_ascii_uppercase(),
            headers: r.headers,
            query: query_pairs(r.raw_query_string.as_deref(), params),
            body: r.body,
            is_base64_encoded: r.is_base64_encoded,
        }
    }

    /// A header as text (names are case-insensitive); `None` when absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as sent by the caller: base64-decoded when the platform encoded it
    /// (`isBase64Encoded`, e.g. for a content type it does not treat as text).
    pub fn body_bytes(&self) -> Result<Vec<u8>, String> {
        let Some(body) = &self.body else {
            return Ok(Vec::new());
        };
        if !self.is_base64_encoded {
            return Ok(body.clone().into_bytes());
        }
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| format!("the body is marked isBase64Encoded but is not valid base64: {e}"))
    }
}

/// The raw query string is authoritative (it keeps repeated keys apart and decodes `%XX`); the
/// pre-split map is the fallback when the raw string is missing.
fn query_pairs(
    raw: Option<&str>,
    fallback: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    match raw.filter(|r| !r.is_empty()) {
        Some(raw) => url::form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        None => fallback.into_iter().collect(),
    }
}

/// The answer to an HTTP request.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl HttpReply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// `{"error": {"code", "message"}}`: the message names the problem and the fix.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The error code of an error reply, for tests and logs.
    pub fn error_code(&self) -> Option<&str> {
        self.body.as_ref()?.get("error")?.get("code")?.as_str()
    }

    /// The payload-format-2.0 response (Function URL and API Gateway v2 read the same shape).
    /// Header values that are not valid HTTP (never produced here) are dropped.
    pub fn into_response(self) -> LambdaFunctionUrlResponse {
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(n, v);
            }
        }
        let body = self.body.map(|b| {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            b.to_string()
        });
        let mut response = LambdaFunctionUrlResponse::default();
        response.status_code = i64::from(self.status);
        response.headers = headers;
        response.body = body;
        response.is_base64_encoded = false;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function_url(body: Option<&str>, b64: bool, query: &str) -> Value {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": query,
            "headers": {"content-type": "application/json", "X-LinkGuard-Secret": "s"},
            "queryStringParameters": {"code": "fallback"},
            "requestContext": {"accountId": "123456789012", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws",
                "domainPrefix": "x", "http": {"method": "post", "path": "/", "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.1", "userAgent": "t"}, "requestId": "r", "time": "t", "timeEpoch": 0},
            "body": body, "isBase64Encoded": b64
        })
    }

    #[test]
    fn reads_function_url_requests() {
        let r = HttpRequest::from_value(function_url(
            Some("{}"),
            false,
            "code=a%2Bb&x=1&code=second",
        ))
        .unwrap();
        assert_eq!(r.source, Source::FunctionUrl);
        assert_eq!(r.method, "POST");
        assert_eq!(r.query("code"), Some("a+b"));
        assert_eq!(r.header("x-linkguard-secret"), Some("s"));
        assert_eq!(r.body_bytes().unwrap(), b"{}");
        let r = HttpRequest::from_value(function_url(None, false, "")).unwrap();
        assert_eq!(r.query("code"), Some("fallback"));
        assert!(r.body_bytes().unwrap().is_empty());
    }

    #[test]
    fn debug_shows_names_never_values() {
        let r = HttpRequest::from_value(function_url(
            Some("{\"secret-body\": 1}"),
            false,
            "code=query-secret-value",
        ))
        .unwrap();
        let shown = format!("{r:?}");
        for hidden in ["query-secret-value", "secret-body", "application/json"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        for name in [
            "x-linkguard-secret",
            "\"code\"",
            "POST",
            "FunctionUrl",
            "body_len: Some(18)",
        ] {
            assert!(shown.contains(name), "{name} missing from {shown}");
        }
    }

    #[test]
    fn decodes_base64_bodies_and_names_bad_ones() {
        let r = HttpRequest::from_value(function_url(Some("eyJhIjoxfQ=="), true, "")).unwrap();
        assert_eq!(r.body_bytes().unwrap(), br#"{"a":1}"#);
        let r = HttpRequest::from_value(function_url(Some("not base64!"), true, "")).unwrap();
        assert!(r.body_bytes().unwrap_err().contains("isBase64Encoded"));
    }

    #[test]
    fn reply_is_the_format_2_response() {
        let v = serde_json::to_value(
            HttpReply::error(401, "WrongSecret", "no")
                .with_header("webhook-allowed-origin", "eventgrid.azure.net")
                .into_response(),
        )
        .unwrap();
        assert_eq!(v["statusCode"], 401);
        assert_eq!(v["headers"]["content-type"], "application/json");
        assert_eq!(
            v["headers"]["webhook-allowed-origin"],
            "eventgrid.azure.net"
        );
        assert_eq!(v["isBase64Encoded"], false);
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "WrongSecret");
    }
}
