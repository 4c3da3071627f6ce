//! Webhook authentication. A Function URL is public (Event Grid cannot sign requests with SigV4),
//! so every request must carry the shared secret `LINKGUARD_WEBHOOK_SECRET`, as header
//! `x-linkguard-secret` or query parameter `code`. It is checked on the raw invocation payload,
//! before the request is parsed or its body read: an unauthenticated caller learns nothing about
//! what linkguard accepts, not even whether its request was well formed.

use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::http::HttpReply;
use crate::config::Secret;

pub const SECRET_HEADER: &str = "x-linkguard-secret";
pub const SECRET_QUERY: &str = "code";

/// Compares in constant time. Both sides are hashed first, so the comparison always runs over 32
/// bytes: neither the content nor the length of the configured secret shows in the timing.
/// `subtle` does the comparison (already in the dependency tree through rustls), rather than a
/// hand-written loop the optimiser might short-circuit.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// The secret a payload-format-2.0 request (Function URL or API Gateway v2) presents, read from
/// the raw JSON: header `x-linkguard-secret` (any case) wins over query parameter `code`, which is
/// read from `rawQueryString` (decoded, first value) or else from `queryStringParameters`.
fn presented_secret(payload: &Value) -> Option<String> {
    let header = payload
        .get("headers")
        .and_then(Value::as_object)
        .and_then(|headers| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(SECRET_HEADER))
        })
        .and_then(|(_, value)| value.as_str());
    if let Some(h) = header {
        return Some(h.to_string());
    }
    let raw_query = payload
        .get("rawQueryString")
        .and_then(Value::as_str)
        .filter(|q| !q.is_empty());
    match raw_query {
        Some(raw) => url::form_urlencoded::parse(raw.as_bytes())
            .find(|(k, _)| k == SECRET_QUERY)
            .map(|(_, v)| v.into_owned()),
        None => payload
            .get("queryStringParameters")
            .and_then(|q| q.get(SECRET_QUERY))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// `Ok` when the raw request `payload` carries the secret; otherwise the 401 to answer.
pub fn authorize(payload: &Value, expected: &Secret) -> Result<(), HttpReply> {
    match presented_secret(payload) {
        Some(g) if same_secret(&g, expected.expose()) => Ok(()),
        Some(_) => Err(HttpReply::error(
            401,
            "WrongSecret",
            "the webhook secret does not match LINKGUARD_WEBHOOK_SECRET",
        )),
        None => Err(HttpReply::error(
            401,
            "MissingSecret",
            "the webhook secret is missing: pass it as query parameter `code` (e.g. <function URL>?code=<secret>) or header x-linkguard-secret",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn compares_whole_values() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("abcd", "abc"));
        assert!(!same_secret("", "abc"));
        assert!(!same_secret("ABC", "abc"));
    }

    #[test]
    fn finds_the_secret_in_the_raw_request_header_first() {
        let both = json!({"headers": {"X-LinkGuard-Secret": "h"}, "rawQueryString": "code=q"});
        assert_eq!(presented_secret(&both).as_deref(), Some("h"));
        let raw = json!({"headers": {}, "rawQueryString": "x=1&code=a%2Bb&code=second",
            "queryStringParameters": {"code": "map"}});
        assert_eq!(presented_secret(&raw).as_deref(), Some("a+b"));
        let map = json!({"rawQueryString": "", "queryStringParameters": {"code": "map"}});
        assert_eq!(presented_secret(&map).as_deref(), Some("map"));
        // Found even when the rest of the request is unreadable.
        let broken =
            json!({"requestContext": 7, "headers": {"x-linkguard-secret": "h"}, "body": []});
        assert_eq!(presented_secret(&broken).as_deref(), Some("h"));
        assert_eq!(presented_secret(&json!({"headers": "nope"})), None);
    }

    #[test]
    fn refuses_missing_and_wrong_secrets_with_401() {
        let expected = Secret::new("right-secret".to_string());
        let wrong = authorize(&json!({"rawQueryString": "code=wrong"}), &expected).unwrap_err();
        assert_eq!(
            (wrong.status, wrong.error_code()),
            (401, Some("WrongSecret"))
        );
        let missing = authorize(&json!({}), &expected).unwrap_err();
        assert_eq!(
            (missing.status, missing.error_code()),
            (401, Some("MissingSecret"))
        );
        assert!(authorize(&json!({"rawQueryString": "code=right-secret"}), &expected).is_ok());
    }
}
