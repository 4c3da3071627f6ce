//! Shared Key request signing for Blob Storage, as an azure_core pipeline policy.
//!
//! azure_storage_blob 1.x authenticates only with Entra ID tokens (or a SAS in the URL). Account-key
//! connection strings (Azurite's well-known account, or real accounts with keys enabled) need the
//! Shared Key scheme: <https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key>.
//! It runs per try (after the retry policy) so each attempt carries a fresh `x-ms-date`.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::Secret;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};

#[derive(Debug)]
pub(crate) struct SharedKeyPolicy {
    account: String,
    key: Secret,
}

impl SharedKeyPolicy {
    pub(crate) fn new(account: String, key: Secret) -> Self {
        Self { account, key }
    }
}

/// The standard headers of the string-to-sign, in order (Content-Length is handled apart).
const SIGNED_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// The string to sign for `request` (which must already carry `x-ms-date`).
pub(crate) fn string_to_sign(account: &str, request: &Request) -> String {
    let headers = request.headers();
    let get = |name: &str| -> String {
        headers
            .iter()
            .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str().to_string())
            .unwrap_or_default()
    };
    let mut sts = String::new();
    sts.push_str(request.method().as_ref());
    sts.push('\n');
    for name in SIGNED_HEADERS {
        let value = if name == "content-length" {
            // Since x-ms-version 2015-02-21 an empty body signs as an empty string, not "0".
            let from_header = get(name);
            let len = if from_header.is_empty() {
                request.body().len().unwrap_or(0).to_string()
            } else {
                from_header
            };
            if len == "0" { String::new() } else { len }
        } else {
            get(name)
        };
        sts.push_str(&value);
        sts.push('\n');
    }

    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.as_str().to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.as_str().trim().to_string(),
            )
        })
        .collect();
    ms.sort();
    for (k, v) in ms {
        sts.push_str(&k);
        sts.push(':');
        sts.push_str(&v);
        sts.push('\n');
    }

    // Canonicalized resource: /account/path, then query parameters sorted by lowercase name,
    // values decoded and comma-joined.
    let url = request.url();
    sts.push('/');
    sts.push_str(account);
    sts.push_str(url.path());
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in url.query_pairs() {
        let k = k.to_ascii_lowercase();
        match params.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v.into_owned()),
            None => params.push((k, vec![v.into_owned()])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, mut values) in params {
        values.sort();
        sts.push('\n');
        sts.push_str(&k);
        sts.push(':');
        sts.push_str(&values.join(","));
    }
    sts
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let now = azure_core::time::to_rfc7231(&azure_core::time::OffsetDateTime::now_utc());
        request.insert_header("x-ms-date", now);
        let sts = string_to_sign(&self.account, request);
        let signature = azure_core::hmac::hmac_sha256(&sts, &self.key)?;
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        );
        match next.split_first() {
            Some((first, rest)) => first.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "SharedKeyPolicy must not be the last policy of a pipeline",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::{Method, Url};

    #[test]
    fn string_to_sign_follows_the_shared_key_layout() {
        let url = Url::parse("http://127.0.0.1:10000/devstoreaccount1/reports/runs/x.json?timeout=30&comp=block&blockid=b").unwrap();
        let mut req = Request::new(url, Method::Put);
        req.insert_header("x-ms-date", "Tue, 25 Nov 2026 10:00:00 GMT");
        req.insert_header("x-ms-version", "2025-11-05");
        req.insert_header("x-ms-blob-content-type", "application/json; charset=utf-8");
        req.insert_header("if-none-match", "*");
        req.insert_header("content-length", "27");
        let sts = string_to_sign("devstoreaccount1", &req);
        let expected = "PUT\n\n\n27\n\n\n\n\n\n*\n\n\n\
x-ms-blob-content-type:application/json; charset=utf-8\n\
x-ms-date:Tue, 25 Nov 2026 10:00:00 GMT\n\
x-ms-version:2025-11-05\n\
/devstoreaccount1/devstoreaccount1/reports/runs/x.json\nblockid:b\ncomp:block\ntimeout:30";
        assert_eq!(sts, expected);
    }

    #[test]
    fn empty_body_signs_an_empty_content_length() {
        let url = Url::parse("http://127.0.0.1:10000/devstoreaccount1/reports?restype=container")
            .unwrap();
        let mut req = Request::new(url, Method::Put);
        req.insert_header("content-length", "0");
        let sts = string_to_sign("devstoreaccount1", &req);
        assert!(sts.starts_with("PUT\n\n\n\n"), "{sts:?}");
    }
}
