//! The ARM side of the sandbox: one fallback handler that routes by the operations table, applies
//! authentication, api-version checks and faults, then answers from the world's state.

use std::time::Instant;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::ArmError;
use super::faults::{Decision, QuotaClass, Take};
use super::log::RequestRecord;
use super::routing::{self, Route, RouteMatch};
use super::server::{ConnKill, Sandbox};
use super::state::{LroState, set_at};

/// Largest request body the sandbox reads (ARM's own limit is far above any body here).
const MAX_BODY: usize = 1024 * 1024;

const AZURE_ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-request-id");
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-ms-correlation-request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");

/// A successful ARM answer before the common headers are added.
struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: Option<Value>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Some(body),
        }
    }
    fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }
}

/// What the request log needs to know about one request.
struct Seen {
    seq: u64,
    method: String,
    path: String,
    api_version: Option<String>,
    operation: Option<&'static str>,
}

pub(crate) async fn arm(
    State(sandbox): State<Sandbox>,
    kill: Option<Extension<ConnKill>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_string();
    let path = percent_decode(&raw_path);
    let query: Vec<(String, String)> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let api_version = query_value(&query, "api-version").map(str::to_string);
    let route = routing::resolve(parts.method.as_str(), &path);
    let operation = match &route {
        RouteMatch::Found(r) => Some(r.operation),
        _ => None,
    };
    let seen = Seen {
        seq: sandbox.log().next_seq(),
        method: parts.method.as_str().to_string(),
        path: raw_path.clone(),
        api_version: api_version.clone(),
        operation,
    };

    let (decision, retry_after, bucket) = {
        let mut faults = sandbox.fault_state();
        let decision = if faults.spec.applies_to(operation) {
            faults.n += 1;
            faults.spec.decide(faults.n)
        } else {
            Decision::default()
        };
        (decision, faults.spec.retry_after_secs, faults.spec.bucket)
    };
    if let Some(latency) = decision.latency {
        tokio::time::sleep(latency).await;
    }
    if let (true, Some(Extension(ConnKill(kill)))) = (decision.drop, kill) {
        record(&sandbox, &seen, None, Some("drop"));
        kill.notify_one();
        // The connection task drops this future with the connection.
        std::future::pending::<()>().await;
    }

    let class = QuotaClass::for_method(parts.method.as_str());
    let mut remaining: Option<u64> = None;
    let outcome = async {
        check_auth(&parts.headers, sandbox.settings().token.as_deref())?;
        if let Some(check) = sandbox.token_check() {
            check_token_fresh(&parts.headers, check.as_ref())?;
        }
        let route = match route {
            RouteMatch::Found(r) => r,
            RouteMatch::MethodNotAllowed => {
                return Err((
                    ArmError::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "MethodNotAllowed",
                        format!("The requested resource does not support http method '{}'.", parts.method),
                    ),
                    None,
                ));
            }
            RouteMatch::NotFound => {
                return Err((
                    ArmError::new(
                        StatusCode::NOT_FOUND,
                        "InvalidResourceType",
                        format!("The sandbox serves no resource at '{raw_path}'; it serves the operations of linkguard's ARM table."),
                    ),
                    None,
                ));
            }
        };
        check_api_version(&route, api_version.as_deref()).map_err(|e| (e, None))?;
        if decision.throttle {
            return Err((throttled(&route, class, retry_after), Some("throttle")));
        }
        if bucket {
            let subscription = route.param("s").to_string();
            let take = sandbox.fault_state().buckets.take(&subscription, class, Instant::now());
            match take {
                Take::Allowed(left) => remaining = Some(left),
                Take::Throttled(wait) => {
                    remaining = Some(0);
                    return Err((throttled(&route, class, wait), Some("bucket")));
                }
            }
        }
        match decision.error {
            Some(500) => return Err((internal_error(), Some("error500"))),
            Some(503) => return Err((unavailable(retry_after), Some("error503"))),
            Some(429) => return Err((busy(retry_after), Some("busy"))),
            _ => {}
        }
        let body = if matches!(parts.method, Method::PUT | Method::PATCH) {
            Some(read_json(body).await.map_err(|e| (e, None))?)
        } else {
            None
        };
        let lro_fail = decision.lro_fail;
        dispatch(&sandbox, &route, &raw_path, &query, api_version.as_deref().unwrap_or_default(), body, lro_fail)
            .map(|reply| (reply, lro_fail && is_lro_start(route.operation)))
            .map_err(|e| (e, None))
    }
    .await;

    let (mut response, fault) = match outcome {
        Ok((reply, lro_fault)) => {
            let mut response = match reply.body {
                Some(body) => (reply.status, axum::Json(body)).into_response(),
                None => {
                    let mut r = Response::new(Body::empty());
                    *r.status_mut() = reply.status;
                    r
                }
            };
            for (name, value) in reply.headers {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, v);
                }
            }
            (response, lro_fault.then_some("lro-fail"))
        }
        Err((error, fault)) => (error.into_response(), fault),
    };
    add_common_headers(
        response.headers_mut(),
        &parts.headers,
        class,
        remaining,
        bucket,
    );
    record(&sandbox, &seen, Some(response.status().as_u16()), fault);
    response
}

fn is_lro_start(operation: &str) -> bool {
    matches!(
        operation,
        "patch-registry" | "put-connection" | "delete-connection"
    )
}

fn record(sandbox: &Sandbox, seen: &Seen, status: Option<u16>, fault: Option<&str>) {
    sandbox.log().record(RequestRecord {
        seq: seen.seq,
        method: seen.method.clone(),
        path: seen.path.clone(),
        api_version: seen.api_version.clone(),
        operation: seen.operation.map(str::to_string),
        status,
        fault: fault.map(str::to_string),
    });
}

fn add_common_headers(
    headers: &mut HeaderMap,
    request: &HeaderMap,
    class: QuotaClass,
    remaining: Option<u64>,
    bucket: bool,
) {
    let id = uuid::Uuid::new_v4().to_string();
    for name in [REQUEST_ID, CORRELATION_ID] {
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert(name, v);
        }
    }
    if let Some(client_id) = request.get(&CLIENT_REQUEST_ID) {
        headers.insert(CLIENT_REQUEST_ID, client_id.clone());
    }
    // Without the bucket fault nothing throttles, so the whole bucket is on offer.
    let left = match (remaining, bucket) {
        (Some(left), _) => Some(left),
        (None, false) => Some(class.limits().0 as u64),
        (None, true) => None,
    };
    // A throttled answer has set its own (zero) already.
    if let Some(Ok(v)) = left.map(|l| HeaderValue::from_str(&l.to_string())) {
        headers
            .entry(HeaderName::from_static(class.header()))
            .or_insert(v);
    }
}

fn www_authenticate(description: &str) -> String {
    format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"{description}\""
    )
}

fn check_auth(
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), (ArmError, Option<&'static str>)> {
    let unauthorized = |code: &str, message: &str, description: &str| {
        (
            ArmError::new(StatusCode::UNAUTHORIZED, code, message)
                .with_header(header::WWW_AUTHENTICATE, www_authenticate(description)),
            None,
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.",
        ));
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, t)| scheme.eq_ignore_ascii_case("Bearer") && !t.trim().is_empty())
        .map(|(_, t)| t.trim());
    let Some(given) = given else {
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            "The authentication failed because of an invalid 'Authorization' header.",
        ));
    };
    if token.is_some_and(|expected| !constant_time_eq(given.as_bytes(), expected.as_bytes())) {
        return Err(unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            "The access token is invalid.",
        ));
    }
    Ok(())
}

/// ARM's answer to a token past its expiry (the test's check decides which ones are).
fn check_token_fresh(
    headers: &HeaderMap,
    check: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<(), (ArmError, Option<&'static str>)> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    if check(given) {
        return Ok(());
    }
    Err((
        ArmError::new(
            StatusCode::UNAUTHORIZED,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time; get a new token.",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            www_authenticate("The access token has expired."),
        ),
        None,
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_api_version(route: &Route, given: Option<&str>) -> Result<(), ArmError> {
    let supported = route.api_versions();
    match given {
        None | Some("") => Err(ArmError::new(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            format!(
                "The api-version query parameter (?api-version=) is required for all requests. The supported api-versions are '{}'.",
                supported.join(", ")
            ),
        )),
        Some(v) if supported.contains(&v) => Ok(()),
        Some(v) => Err(ArmError::new(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                supported.join(", ")
            ),
        )),
    }
}

fn throttled(route: &Route, class: QuotaClass, retry_after: u64) -> ArmError {
    let kind = match class {
        QuotaClass::Reads => "read",
        QuotaClass::Writes => "write",
        QuotaClass::Deletes => "delete",
    };
    let scope = match route.param("s") {
        "" => "tenant".to_string(),
        s => format!("subscription '{s}'"),
    };
    ArmError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "SubscriptionRequestsThrottled",
        format!(
            "Number of '{kind}' requests for {scope} actor 'linkguard-sim-client' exceeded. Please try again after '{retry_after}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling"
        ),
    )
    .with_header(header::RETRY_AFTER, retry_after.to_string())
    .with_header(HeaderName::from_static(class.header()), "0")
}

/// ARM's answer to a token issued by another tenant than the subscription's.
fn wrong_tenant() -> ArmError {
    ArmError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationTokenTenant",
        "The access token is from the wrong issuer 'https://sts.windows.net/00000000-0000-0000-0000-00000000000a/'. It must match the tenant 'https://sts.windows.net/00000000-0000-0000-0000-00000000000b/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/00000000-0000-0000-0000-00000000000b' to get the token.",
    )
    .with_header(header::WWW_AUTHENTICATE, www_authenticate("The access token is from the wrong issuer."))
}

/// A 429 that is not throttling: the resource is locked by another operation.
fn busy(retry_after: u64) -> ArmError {
    ArmError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RetryableErrorDueToAnotherOperation",
        "Operation is not allowed because another operation is in progress on the resource; retry later (fault busy injected by the sandbox).",
    )
    .with_header(header::RETRY_AFTER, retry_after.to_string())
}

fn internal_error() -> ArmError {
    ArmError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "Encountered internal server error (fault error500 injected by the sandbox).",
    )
}

fn unavailable(retry_after: u64) -> ArmError {
    ArmError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The server is currently unable to handle the request due to a temporary overloading or maintenance (fault error503 injected by the sandbox).",
    )
    .with_header(header::RETRY_AFTER, retry_after.to_string())
}

async fn read_json(body: Body) -> Result<Value, ArmError> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        ArmError::invalid_content(format!("The request content could not be read: {e}"))
    })?;
    if bytes.is_empty() {
        return Err(ArmError::invalid_content(
            "The request content was empty; a JSON body is required.",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ArmError::invalid_content(format!(
            "The request content was invalid and could not be deserialized: {e}"
        ))
    })
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// One page of a list, with `nextLink` (an absolute URL carrying `$skipToken`) when more follow.
fn page(
    sandbox: &Sandbox,
    items: Vec<Value>,
    raw_path: &str,
    query: &[(String, String)],
    api_version: &str,
) -> Result<Value, ArmError> {
    let skip = skip_token(query)?;
    let size = sandbox.settings().page_size;
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    Ok(page_window(
        sandbox,
        value,
        total,
        skip,
        raw_path,
        api_version,
    ))
}

/// The `$skipToken` of a list request (0 without one).
fn skip_token(query: &[(String, String)]) -> Result<usize, ArmError> {
    match query_value(query, "$skipToken") {
        None => Ok(0),
        Some(t) => t.parse::<usize>().map_err(|_| {
            ArmError::new(
                StatusCode::BAD_REQUEST,
                "InvalidSkipToken",
                format!("The skip token '{t}' is not one this list handed out."),
            )
        }),
    }
}

/// A page already cut from a list of `total` items starting at `skip`.
fn page_window(
    sandbox: &Sandbox,
    value: Vec<Value>,
    total: usize,
    skip: usize,
    raw_path: &str,
    api_version: &str,
) -> Value {
    let size = sandbox.settings().page_size;
    let mut out = json!({"value": value});
    if skip.saturating_add(size) < total {
        let next = format!(
            "{}{raw_path}?api-version={api_version}&%24skipToken={}",
            sandbox.base_url(),
            skip + size
        );
        set_at(&mut out, &["nextLink"], json!(next));
    }
    out
}

fn operation_url(sandbox: &Sandbox, raw_path: &str, op_id: &str, api_version: &str) -> String {
    format!(
        "{}{}/operationStatuses/{op_id}?api-version={api_version}",
        sandbox.base_url(),
        raw_path.trim_end_matches('/')
    )
}

fn lro_started(
    sandbox: &Sandbox,
    status: StatusCode,
    header: HeaderName,
    url: String,
    body: Option<Value>,
) -> Reply {
    Reply {
        status,
        headers: vec![
            (header, url),
            (
                header::RETRY_AFTER,
                sandbox.settings().retry_after_secs.to_string(),
            ),
        ],
        body,
    }
}

fn dispatch(
    sandbox: &Sandbox,
    route: &Route,
    raw_path: &str,
    query: &[(String, String)],
    api_version: &str,
    body: Option<Value>,
    lro_fail: bool,
) -> Result<Reply, ArmError> {
    let (s, rg, name, conn) = (
        route.param("s"),
        route.param("rg"),
        route.param("name"),
        route.param("c"),
    );
    let lro = sandbox.settings().lro;
    let body = body.unwrap_or(Value::Null);
    match route.operation {
        "list-subscriptions" => {
            let subs = sandbox.world().subscriptions_json();
            let mut out = page(sandbox, subs, raw_path, query, api_version)?;
            let total = sandbox.world().subscriptions_json().len();
            set_at(
                &mut out,
                &["count"],
                json!({"type": "Total", "value": total}),
            );
            Ok(Reply::ok(out))
        }
        "list-registries" | "list-registries-by-group" => {
            let rg = (route.operation == "list-registries-by-group").then_some(rg);
            let skip = skip_token(query)?;
            let size = sandbox.settings().page_size;
            let (items, total) = sandbox.world().list_registries_window(s, rg, skip, size)?;
            Ok(Reply::ok(page_window(
                sandbox,
                items,
                total,
                skip,
                raw_path,
                api_version,
            )))
        }
        "get-registry" => Ok(Reply::ok(sandbox.world().get_registry(s, rg, name)?)),
        "patch-registry" => {
            let op_id = format!("registries-{}", uuid::Uuid::new_v4());
            let preview = sandbox.world().begin_patch_registry(
                (s, rg, name),
                &body,
                &op_id,
                lro_fail,
                lro,
            )?;
            let url = operation_url(sandbox, raw_path, &op_id, api_version);
            Ok(lro_started(
                sandbox,
                StatusCode::CREATED,
                AZURE_ASYNC_OPERATION,
                url,
                Some(preview),
            ))
        }
        "list-connections" => {
            let items = sandbox.world().list_connections(s, rg, name)?;
            Ok(Reply::ok(page(
                sandbox,
                items,
                raw_path,
                query,
                api_version,
            )?))
        }
        "get-connection" => Ok(Reply::ok(
            sandbox.world().get_connection(s, rg, name, conn)?,
        )),
        "put-connection" => {
            let op_id = format!("privateendpointconnections-{}", uuid::Uuid::new_v4());
            let preview = sandbox.world().begin_put_connection(
                (s, rg, name, conn),
                &body,
                &op_id,
                lro_fail,
                lro,
            )?;
            let url = operation_url(sandbox, raw_path, &op_id, api_version);
            Ok(lro_started(
                sandbox,
                StatusCode::CREATED,
                AZURE_ASYNC_OPERATION,
                url,
                Some(preview),
            ))
        }
        "delete-connection" => {
            let op_id = format!("privateendpointconnections-{}", uuid::Uuid::new_v4());
            if sandbox.world().begin_delete_connection(
                (s, rg, name, conn),
                &op_id,
                lro_fail,
                lro,
            )? {
                let url = operation_url(sandbox, raw_path, &op_id, api_version);
                Ok(lro_started(
                    sandbox,
                    StatusCode::ACCEPTED,
                    header::LOCATION,
                    url,
                    None,
                ))
            } else {
                Ok(Reply::empty(StatusCode::NO_CONTENT))
            }
        }
        "registry-operation-status" | "connection-operation-status" => {
            let mut target = format!(
                "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}"
            );
            if route.operation == "connection-operation-status" {
                target.push_str(&format!("/privateEndpointConnections/{conn}"));
            }
            let target = crate::model::ResourceId::parse(&target)
                .map_err(|e| ArmError::bad_request(e.to_string()))?;
            let view = sandbox.world().poll(route.param("id"), &target, raw_path)?;
            let retry = || {
                (
                    header::RETRY_AFTER,
                    sandbox.settings().retry_after_secs.to_string(),
                )
            };
            if view.location_style {
                let url = format!("{}{raw_path}?api-version={api_version}", sandbox.base_url());
                match view.state {
                    LroState::InProgress => Ok(Reply {
                        status: StatusCode::ACCEPTED,
                        headers: vec![(header::LOCATION, url), retry()],
                        body: None,
                    }),
                    LroState::Succeeded => Ok(Reply::empty(StatusCode::NO_CONTENT)),
                    LroState::Failed => {
                        let field = |k: &str| {
                            view.body
                                .get("error")
                                .and_then(|e| e.get(k))
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        };
                        Err(ArmError::new(
                            StatusCode::CONFLICT,
                            &field("code").unwrap_or_else(|| "OperationFailed".into()),
                            field("message").unwrap_or_else(|| "The operation failed.".into()),
                        ))
                    }
                }
            } else {
                let mut reply = Reply::ok(view.body);
                if view.state == LroState::InProgress {
                    reply.headers.push(retry());
                }
                Ok(reply)
            }
        }
        "list-private-link-resources" => {
            let items = sandbox.world().private_link_resources(s, rg, name)?;
            Ok(Reply::ok(page(
                sandbox,
                items,
                raw_path,
                query,
                api_version,
            )?))
        }
        "get-private-link-resource" => {
            let group = route.param("group");
            let items = sandbox.world().private_link_resources(s, rg, name)?;
            items
                .into_iter()
                .find(|r| r.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(group)))
                .map(Reply::ok)
                .ok_or_else(|| ArmError::not_found(&format!("Microsoft.ContainerRegistry/registries/{name}/privateLinkResources/{group}"), rg))
        }
        "get-private-endpoint" => {
            if sandbox
                .settings()
                .other_tenant
                .contains(&s.to_ascii_lowercase())
            {
                return Err(wrong_tenant());
            }
            Ok(Reply::ok(sandbox.world().get_private_endpoint(
                s,
                rg,
                route.param("pe"),
            )?))
        }
        other => Err(ArmError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("The sandbox does not serve '{other}'."),
        )),
    }
}

/// Decodes `%XX` escapes in a URL path (ARM names may carry escaped characters).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or_default();
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/%2e%zz"), "/a b/.%zz");
        assert_eq!(percent_decode("plain"), "plain");
    }

    #[test]
    fn auth_header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(
            check_auth(&h, None).unwrap_err().0.code,
            "AuthenticationFailed"
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(
            check_auth(&h, None).unwrap_err().0.code,
            "AuthenticationFailed"
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer anything"),
        );
        assert!(check_auth(&h, None).is_ok());
        assert_eq!(
            check_auth(&h, Some("other")).unwrap_err().0.code,
            "InvalidAuthenticationToken"
        );
        assert!(check_auth(&h, Some("anything")).is_ok());
    }
}
