//! Webhook authentication. A Function URL is public (Event Grid cannot sign requests with SigV4),
//! so every request must carry the shared secret `LINKGUARD_WEBHOOK_SECRET`, as header
//! `x-linkguard-secret` or query parameter `code`, checked before the body is read.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::http::{HttpReply, HttpRequest};
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

/// `Ok` when the request carries the secret; otherwise the 401 to answer. The header wins over the
/// query parameter when both are present.
pub fn authorize(request: &HttpRequest, expected: &Secret) -> Result<(), HttpReply> {
    let given = request
        .header(SECRET_HEADER)
        .or_else(|| request.query(SECRET_QUERY));
    match given {
        Some(g) if same_secret(g, expected.expose()) => Ok(()),
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
}
