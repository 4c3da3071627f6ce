//! Small per-try pipeline policies: bearer auth for a loopback http endpoint, and the request counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use azure_core::credentials::TokenCredential;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::AUTHORIZATION;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};

/// Sends the next policy in line, or fails if there is none (a pipeline always ends in a transport).
pub(crate) async fn forward(
    ctx: &Context<'_>,
    request: &mut Request,
    next: &[Arc<dyn Policy>],
) -> PolicyResult {
    match next.split_first() {
        Some((first, rest)) => first.send(ctx, request, rest).await,
        None => Err(Error::with_message(
            ErrorKind::Other,
            "pipeline policy has no transport after it",
        )),
    }
}

/// Bearer auth for `http://` loopback endpoints only (the sandbox without `--tls`). azure_core's
/// `BearerTokenAuthorizationPolicy` refuses any non-https URL; this one refuses any URL that is not
/// http on a loopback host, so a token can never go out in clear text to another machine.
/// Token caching is the credential's job (azure_identity credentials cache; the static one is fixed).
#[derive(Debug)]
pub(crate) struct LoopbackBearerPolicy {
    credential: Arc<dyn TokenCredential>,
    scope: String,
}

impl LoopbackBearerPolicy {
    pub(crate) fn new(credential: Arc<dyn TokenCredential>, scope: String) -> Self {
        Self { credential, scope }
    }
}

#[async_trait::async_trait]
impl Policy for LoopbackBearerPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        if !super::client::is_loopback(request.url()) {
            return Err(Error::with_message(
                ErrorKind::Other,
                "refusing to send the ARM token over plain http to a host that is not loopback",
            ));
        }
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await?;
        request.insert_header(AUTHORIZATION, format!("Bearer {}", token.token.secret()));
        forward(ctx, request, next).await
    }
}

/// Counts every request handed to the transport: first attempts, retries, pages and polls.
#[derive(Debug)]
pub(crate) struct RequestCounter {
    count: Arc<AtomicU64>,
}

impl RequestCounter {
    pub(crate) fn new(count: Arc<AtomicU64>) -> Self {
        Self { count }
    }
}

#[async_trait::async_trait]
impl Policy for RequestCounter {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.count.fetch_add(1, Ordering::Relaxed);
        forward(ctx, request, next).await
    }
}
