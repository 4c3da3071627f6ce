//! The fan-out settings, read through the same lookup closure as [`crate::config::Settings`] (so
//! tests pass settings without touching the process environment). They live here until they move
//! into `src/config.rs` (see docs/fanout.md).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LINKGUARD_FANOUT_QUEUE` | turns fan-out on: a queue URL (`https://ACCOUNT.queue.core.windows.net/QUEUE`, Entra ID token; or with a SAS query), a storage connection string with `QueueName=QUEUE`, or a bare queue name (then the account of `AzureWebJobsStorage` is used, connection string or identity-based) | unset: the timer audits everything itself |
//! | `LINKGUARD_FANOUT_DEADLINE` | how long a fanned-out run waits for its subscriptions before the next timer run finalizes it (`hh:mm:ss`) | `02:00:00` |
//!
//! Under the Functions host, `maxDequeueCount` comes from `host.json` (`extensions.queues`) in
//! `FUNCTIONS_APP_ROOT_PATH`, and the queue must be the one `function/SubscriptionAudit/function.json`
//! listens to; both are checked at start.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use azure_core::credentials::Secret;
use azure_core::http::Url;

use crate::config::SettingError;

pub const FANOUT_QUEUE: &str = "LINKGUARD_FANOUT_QUEUE";
pub const FANOUT_DEADLINE: &str = "LINKGUARD_FANOUT_DEADLINE";
/// The Functions host's storage connection (queue triggers, timer leases).
pub const WEBJOBS_STORAGE: &str = "AzureWebJobsStorage";
/// Set by the Functions host: the folder holding `host.json` and the function folders.
pub const APP_ROOT: &str = "FUNCTIONS_APP_ROOT_PATH";

/// The queue `function/SubscriptionAudit/function.json` listens to.
pub const DEFAULT_QUEUE: &str = "linkguard-audits";
/// The Functions host moves a message that failed `maxDequeueCount` times to `<queue>-poison`.
pub const POISON_SUFFIX: &str = "-poison";
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2 * 3600);
/// The Functions host's default `maxDequeueCount` (and the value in the repo's host.json).
pub const DEFAULT_MAX_DEQUEUE_COUNT: u32 = 5;
/// Longest deadline accepted: a week.
pub const MAX_DEADLINE: Duration = Duration::from_secs(7 * 24 * 3600);

const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The storage emulator's well-known key (public, documented by Microsoft).
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";

/// How the queue client authenticates.
#[derive(Clone)]
pub enum QueueAuth {
    /// Entra ID bearer token (managed / workload identity), https only.
    Token,
    /// A SAS token (query string without `?`).
    Sas(Secret),
    /// Shared Key signing with the account key (base64).
    SharedKey { account: String, key: Secret },
}

impl fmt::Debug for QueueAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueAuth::Token => f.write_str("Token"),
            QueueAuth::Sas(_) => f.write_str("Sas(REDACTED)"),
            QueueAuth::SharedKey { account, .. } => {
                write!(f, "SharedKey {{ account: {account:?}, key: REDACTED }}")
            }
        }
    }
}

/// A storage queue (and its poison queue) and how to reach it.
#[derive(Clone, Debug)]
pub struct QueueTarget {
    /// The queue service endpoint of the account, without query: `https://ACCOUNT.queue.core.windows.net`
    /// or, path-style, `http://127.0.0.1:10001/devstoreaccount1`.
    pub service_url: Url,
    pub queue: String,
    pub auth: QueueAuth,
    /// Loopback endpoint (Azurite): pin an x-ms-version it accepts.
    pub emulator: bool,
}

impl QueueTarget {
    /// The URL of queue `name` in this account (no query).
    pub fn queue_url(&self, name: &str) -> Result<Url, String> {
        let mut u = self.service_url.clone();
        u.path_segments_mut()
            .map_err(|_| format!("`{}` cannot hold a path", self.service_url))?
            .pop_if_empty()
            .push(name);
        Ok(u)
    }

    pub fn poison_queue(&self) -> String {
        format!("{}{POISON_SUFFIX}", self.queue)
    }
}

impl fmt::Display for QueueTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match &self.auth {
            QueueAuth::Token => "Entra ID token",
            QueueAuth::Sas(_) => "SAS",
            QueueAuth::SharedKey { .. } => "account key",
        };
        match self.queue_url(&self.queue) {
            Ok(u) => write!(f, "queue {u} ({how})"),
            Err(_) => write!(f, "queue {} ({how})", self.queue),
        }
    }
}

/// Everything fan-out needs to know, validated.
#[derive(Clone, Debug)]
pub struct FanOutSettings {
    pub queue: QueueTarget,
    /// After this, a run that is still missing subscription reports is finalized by the next
    /// timer run (or `linkguard audit --fan-out`, or an idle worker), naming them.
    pub deadline: Duration,
    /// Deliveries before a message counts as poisoned (the host's `maxDequeueCount`).
    pub max_dequeue_count: u32,
}

fn err(key: &'static str, message: impl Into<String>) -> SettingError {
    SettingError {
        key,
        message: message.into(),
    }
}

impl FanOutSettings {
    /// Reads the fan-out settings: `Ok(None)` when `LINKGUARD_FANOUT_QUEUE` is unset (fan-out
    /// off). Under the Functions host (`FUNCTIONS_APP_ROOT_PATH` set) also reads `host.json`'s
    /// `maxDequeueCount` and checks the queue against `SubscriptionAudit/function.json`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<FanOutSettings>, Vec<SettingError>> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let Some(queue) = get(FANOUT_QUEUE) else {
            return Ok(None);
        };
        let mut errors = Vec::new();
        let queue = parse_queue(&queue, &get)
            .map_err(|m| errors.push(err(FANOUT_QUEUE, m)))
            .ok();
        let deadline = match get(FANOUT_DEADLINE) {
            None => Some(DEFAULT_DEADLINE),
            Some(v) => parse_deadline(&v)
                .map_err(|m| errors.push(err(FANOUT_DEADLINE, m)))
                .ok(),
        };
        let mut max_dequeue_count = Some(DEFAULT_MAX_DEQUEUE_COUNT);
        if let Some(root) = get(APP_ROOT) {
            let root = Path::new(root.trim());
            max_dequeue_count = read_max_dequeue_count(root)
                .map_err(|m| errors.push(err(APP_ROOT, m)))
                .ok();
            if let Some(q) = &queue
                && let Err(m) = check_trigger_queue(root, &q.queue)
            {
                errors.push(err(FANOUT_QUEUE, m));
            }
        }
        match (queue, deadline, max_dequeue_count) {
            (Some(queue), Some(deadline), Some(max_dequeue_count)) if errors.is_empty() => {
                Ok(Some(FanOutSettings {
                    queue,
                    deadline,
                    max_dequeue_count,
                }))
            }
            _ => Err(errors),
        }
    }
}

/// Queue naming rules of Queue Storage, leaving room for the `-poison` suffix.
pub fn check_queue_name(name: &str) -> Result<(), String> {
    let max = 63 - POISON_SUFFIX.len();
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(3..=max).contains(&name.len())
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err(format!(
            "queue name `{name}` is invalid: 3-{max} lowercase letters, digits and single hyphens, starting and ending with a letter or digit (at most {max}, so that `<name>{POISON_SUFFIX}` fits in 63), e.g. {DEFAULT_QUEUE}"
        ));
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Path-style URLs (`http://127.0.0.1:10001/<account>/<queue>`) name the account in the path.
fn is_path_style(url: &Url) -> bool {
    matches!(
        url.host(),
        Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))
    ) || is_loopback(url)
}

/// `scheme://host/path` with any SAS signature hidden, for messages.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let had_query = u.query().is_some();
    u.set_query(None);
    let mut s = u.to_string();
    if had_query {
        s.push_str("?…");
    }
    s
}

fn check_transport(url: &Url, what: &str) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "{what} `{}` is plain http on a host that is not loopback: credentials would travel in clear text; use https",
            shown(url)
        )),
        other => Err(format!(
            "{what} `{}` has scheme `{other}`; use https://",
            shown(url)
        )),
    }
}

fn has_sig(query: &str) -> bool {
    query
        .to_ascii_lowercase()
        .split('&')
        .any(|p| p.starts_with("sig="))
}

/// Parses a `LINKGUARD_FANOUT_QUEUE` value (or `linkguard worker --queue`). `lookup` supplies
/// `AzureWebJobsStorage*` for a bare queue name.
pub fn parse_queue(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<QueueTarget, String> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return parse_queue_url(v);
    }
    if v.contains('=') {
        return parse_connection_string(v, None);
    }
    check_queue_name(v)?;
    from_webjobs_storage(v, lookup)
}

fn parse_queue_url(v: &str) -> Result<QueueTarget, String> {
    let url = Url::parse(v).map_err(|e| format!("`{v}` is not a valid URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("the queue URL must not carry a user name, password or #fragment".into());
    }
    check_transport(&url, "the queue URL")?;
    let query = url.query().unwrap_or_default().to_string();
    let auth = if query.is_empty() {
        if url.scheme() != "https" {
            return Err(format!(
                "`{}` is plain http without a SAS: Entra ID tokens are only sent over https. Use https, add a SAS (?sv=...&sig=...), or give a connection string with QueueName=",
                shown(&url)
            ));
        }
        QueueAuth::Token
    } else if has_sig(&query) {
        QueueAuth::Sas(Secret::new(query))
    } else {
        return Err(format!(
            "`{}` has a query that is not a SAS (no sig=): give the queue URL alone, or with a complete SAS",
            shown(&url)
        ));
    };
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let account_segments = usize::from(is_path_style(&url));
    let (account, queue) = match segments.split_at_checked(account_segments) {
        Some((account, [queue])) => (account.to_vec(), queue.clone()),
        _ => {
            let example = if account_segments == 1 {
                format!("http://127.0.0.1:10001/{DEV_ACCOUNT}/{DEFAULT_QUEUE}")
            } else {
                format!("https://ACCOUNT.queue.core.windows.net/{DEFAULT_QUEUE}")
            };
            return Err(format!(
                "`{}` does not name one queue: give the queue's URL, e.g. {example}",
                shown(&url)
            ));
        }
    };
    check_queue_name(&queue)?;
    let mut service_url = url.clone();
    service_url.set_query(None);
    service_url.set_path(&format!("/{}", account.join("/")));
    Ok(QueueTarget {
        emulator: is_loopback(&service_url),
        service_url,
        queue,
        auth,
    })
}

/// A storage connection string, optionally with `QueueName=` (default `linkguard-audits`, or
/// `default_queue`).
fn parse_connection_string(s: &str, default_queue: Option<&str>) -> Result<QueueTarget, String> {
    let mut use_dev = None;
    let mut protocol = None;
    let mut account = None;
    let mut key = None;
    let mut sas = None;
    let mut endpoint = None;
    let mut suffix = None;
    let mut queue = None;
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(
                "a connection string part is not Key=Value (value not shown: it may hold a key)"
                    .into(),
            );
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "usedevelopmentstorage" => use_dev = Some(v),
            "defaultendpointsprotocol" => protocol = Some(v),
            "accountname" => account = Some(v),
            "accountkey" => key = Some(v),
            "sharedaccesssignature" => sas = Some(v),
            "queueendpoint" => endpoint = Some(v),
            "endpointsuffix" => suffix = Some(v),
            "queuename" => queue = Some(v),
            // Other services' endpoints do not concern the queue.
            "blobendpoint" | "tableendpoint" | "fileendpoint" => {}
            other => {
                return Err(format!(
                    "unknown connection string key `{other}`; a queue connection string has AccountName, AccountKey or SharedAccessSignature, QueueEndpoint or DefaultEndpointsProtocol/EndpointSuffix, and QueueName"
                ));
            }
        }
    }
    let queue = queue
        .or_else(|| default_queue.map(str::to_string))
        .unwrap_or_else(|| DEFAULT_QUEUE.to_string());
    check_queue_name(&queue)?;

    if let Some(dev) = use_dev {
        if !dev.eq_ignore_ascii_case("true") {
            return Err(format!(
                "UseDevelopmentStorage must be `true` (got `{dev}`)"
            ));
        }
        if account.is_some() || key.is_some() || sas.is_some() || endpoint.is_some() {
            return Err("UseDevelopmentStorage=true stands alone (besides QueueName); for an emulator elsewhere write AccountName=devstoreaccount1;AccountKey=...;QueueEndpoint=http://HOST:PORT/devstoreaccount1".into());
        }
        return Ok(QueueTarget {
            service_url: Url::parse(DEV_QUEUE_ENDPOINT).map_err(|e| e.to_string())?,
            queue,
            auth: QueueAuth::SharedKey {
                account: DEV_ACCOUNT.into(),
                key: Secret::new(DEV_KEY),
            },
            emulator: true,
        });
    }

    let auth = match (key, sas) {
        (Some(_), Some(_)) => {
            return Err("give either AccountKey or SharedAccessSignature, not both".into());
        }
        (Some(key), None) => {
            let Some(account) = account.clone().filter(|a| !a.is_empty()) else {
                return Err(
                    "AccountName is missing: it is needed to sign requests with AccountKey".into(),
                );
            };
            match azure_core::base64::decode(&key) {
                Ok(bytes) if !bytes.is_empty() => {}
                _ => return Err("AccountKey is not valid base64 (value not shown): copy the key from the storage account's Access keys".into()),
            }
            QueueAuth::SharedKey {
                account,
                key: Secret::new(key),
            }
        }
        (None, Some(sas)) => {
            let sas = sas.trim_start_matches('?').to_string();
            if !has_sig(&sas) {
                return Err(
                    "SharedAccessSignature has no `sig=` parameter: paste the whole SAS token"
                        .into(),
                );
            }
            QueueAuth::Sas(Secret::new(sas))
        }
        (None, None) => {
            return Err("neither AccountKey nor SharedAccessSignature is given: add AccountKey=... (or a SAS), or give a queue URL (https, with managed identity)".into());
        }
    };
    let endpoint = match (endpoint, &account) {
        (Some(e), _) => e,
        (None, Some(a)) if !a.is_empty() => format!(
            "{}://{a}.queue.{}",
            protocol.as_deref().unwrap_or("https"),
            suffix.as_deref().unwrap_or("core.windows.net")
        ),
        _ => {
            return Err(
                "neither QueueEndpoint nor AccountName is given: the queue's account is unknown"
                    .into(),
            );
        }
    };
    let service_url = Url::parse(&endpoint)
        .map_err(|e| format!("QueueEndpoint `{endpoint}` is not a URL: {e}"))?;
    if service_url.query().is_some() {
        return Err(
            "QueueEndpoint must not carry a query: put a SAS in SharedAccessSignature".into(),
        );
    }
    check_transport(&service_url, "QueueEndpoint")?;
    Ok(QueueTarget {
        emulator: is_loopback(&service_url),
        service_url,
        queue,
        auth,
    })
}

/// A bare queue name: the account of the Functions host's own storage connection.
fn from_webjobs_storage(
    queue: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<QueueTarget, String> {
    if let Some(cs) = lookup(WEBJOBS_STORAGE) {
        return parse_connection_string(&cs, Some(queue))
            .map(|mut t| {
                t.queue = queue.to_string();
                t
            })
            .map_err(|e| format!("{WEBJOBS_STORAGE}: {e}"));
    }
    let service_url = if let Some(uri) = lookup(&format!("{WEBJOBS_STORAGE}__queueServiceUri")) {
        Url::parse(uri.trim())
            .map_err(|e| format!("{WEBJOBS_STORAGE}__queueServiceUri is not a URL: {e}"))?
    } else if let Some(account) = lookup(&format!("{WEBJOBS_STORAGE}__accountName")) {
        Url::parse(&format!(
            "https://{}.queue.core.windows.net",
            account.trim()
        ))
        .map_err(|e| format!("{WEBJOBS_STORAGE}__accountName does not make a queue URL: {e}"))?
    } else {
        return Err(format!(
            "`{queue}` is a bare queue name, which means the account of {WEBJOBS_STORAGE}, and neither {WEBJOBS_STORAGE} nor {WEBJOBS_STORAGE}__queueServiceUri / __accountName is set; give a queue URL or a connection string with QueueName="
        ));
    };
    if service_url.scheme() != "https" {
        return Err(format!(
            "{WEBJOBS_STORAGE}__queueServiceUri `{}` must be https (Entra ID tokens are only sent over https)",
            shown(&service_url)
        ));
    }
    Ok(QueueTarget {
        emulator: false,
        service_url,
        queue: queue.to_string(),
        auth: QueueAuth::Token,
    })
}

/// `hh:mm:ss` (hours may exceed 24) as a duration.
pub fn parse_hms(v: &str) -> Option<Duration> {
    let numbers: Option<Vec<u64>> = v.trim().split(':').map(|p| p.parse::<u64>().ok()).collect();
    match numbers.as_deref() {
        Some([h, m, s]) if *m < 60 && *s < 60 => h
            .checked_mul(3600)
            .and_then(|x| x.checked_add(m * 60 + s))
            .map(Duration::from_secs),
        _ => None,
    }
}

/// `hh:mm:ss` (hours may exceed 24), between one second and a week.
pub fn parse_deadline(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    match parse_hms(v) {
        Some(d) if d >= Duration::from_secs(1) && d <= MAX_DEADLINE => Ok(d),
        _ => Err(format!(
            "`{v}` is not a duration between 00:00:01 and 168:00:00 written hh:mm:ss, e.g. 02:00:00; make it longer than an audit of one subscription takes times maxDequeueCount, and shorter than the timer's interval"
        )),
    }
}

/// `extensions.queues.maxDequeueCount` of a host.json text (5 when absent, as the host does).
pub fn max_dequeue_count_of(host_json: &str) -> Result<u32, String> {
    let v: serde_json::Value =
        serde_json::from_str(host_json).map_err(|e| format!("host.json is not JSON: {e}"))?;
    let n = v
        .get("extensions")
        .and_then(|e| e.get("queues"))
        .and_then(|q| q.get("maxDequeueCount"));
    match n {
        None => Ok(DEFAULT_MAX_DEQUEUE_COUNT),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                format!(
                    "host.json extensions.queues.maxDequeueCount is {n}, not a positive integer"
                )
            }),
    }
}

fn read_max_dequeue_count(root: &Path) -> Result<u32, String> {
    let path = root.join("host.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => max_dequeue_count_of(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_MAX_DEQUEUE_COUNT),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The `queueName` of the queueTrigger binding in a function.json text.
pub fn trigger_queue_of(function_json: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(function_json)
        .map_err(|e| format!("function.json is not JSON: {e}"))?;
    v.get("bindings")
        .and_then(|b| b.as_array())
        .and_then(|b| {
            b.iter().find(|x| {
                x.get("type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.eq_ignore_ascii_case("queueTrigger"))
            })
        })
        .and_then(|b| b.get("queueName"))
        .and_then(|q| q.as_str())
        .map(str::to_string)
        .ok_or_else(|| "function.json has no queueTrigger binding with a queueName".into())
}

/// Under the host, messages must go to the queue `SubscriptionAudit` listens to; a mismatch would
/// leave every message unprocessed until the deadline.
fn check_trigger_queue(root: &Path, queue: &str) -> Result<(), String> {
    let path = root.join("SubscriptionAudit").join("function.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // Not deployed with the app: nothing to compare with.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let listened = trigger_queue_of(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // `%SETTING%` names are resolved by the host; only a literal can be compared.
    if listened.starts_with('%') || listened.eq_ignore_ascii_case(queue) {
        Ok(())
    } else {
        Err(format!(
            "messages would go to queue `{queue}`, but {} listens to `{listened}`: make them the same",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn parse(v: &str) -> Result<QueueTarget, String> {
        parse_queue(v, &|_| None)
    }

    #[test]
    fn off_unless_the_queue_is_set() {
        assert!(FanOutSettings::from_lookup(lookup(&[])).unwrap().is_none());
        assert!(
            FanOutSettings::from_lookup(lookup(&[(FANOUT_QUEUE, " ")]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn queue_urls() {
        let t = parse("https://acme.queue.core.windows.net/linkguard-audits").unwrap();
        assert_eq!(
            t.service_url.as_str(),
            "https://acme.queue.core.windows.net/"
        );
        assert_eq!(t.queue, "linkguard-audits");
        assert_eq!(t.poison_queue(), "linkguard-audits-poison");
        assert!(matches!(t.auth, QueueAuth::Token) && !t.emulator);
        assert_eq!(
            t.queue_url("x-poison").unwrap().as_str(),
            "https://acme.queue.core.windows.net/x-poison"
        );

        let t = parse("http://127.0.0.1:10001/devstoreaccount1/audits?sv=2025-11-05&sig=SECRETSIG")
            .unwrap();
        assert_eq!(
            t.service_url.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(
            t.queue_url("audits").unwrap().as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/audits"
        );
        assert!(matches!(&t.auth, QueueAuth::Sas(s) if s.secret().contains("sig=")));
        assert!(t.emulator);
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("SECRETSIG"), "{shown}");

        for (bad, why) in [
            (
                "http://acme.queue.core.windows.net/que1?sig=x",
                "clear text",
            ),
            (
                "http://127.0.0.1:10001/devstoreaccount1/que1",
                "without a SAS",
            ),
            (
                "https://acme.queue.core.windows.net/",
                "does not name one queue",
            ),
            (
                "https://acme.queue.core.windows.net/a/b",
                "does not name one queue",
            ),
            (
                "https://acme.queue.core.windows.net/Bad_Q",
                "queue name `Bad_Q` is invalid",
            ),
            ("https://acme.queue.core.windows.net/que1?x=1", "not a SAS"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = parse("https://acme.queue.core.windows.net/que1?sv=1&sig=TOPSECRET&x").unwrap();
        assert!(!format!("{e:?}").contains("TOPSECRET"));
    }

    #[test]
    fn connection_strings() {
        let t = parse("UseDevelopmentStorage=true;QueueName=audits").unwrap();
        assert_eq!(t.service_url.as_str(), DEV_QUEUE_ENDPOINT);
        assert_eq!(t.queue, "audits");
        assert!(matches!(&t.auth, QueueAuth::SharedKey { account, .. } if account == DEV_ACCOUNT));

        let t = parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:45678/devstoreaccount1;"
        ))
        .unwrap();
        assert_eq!(t.queue, DEFAULT_QUEUE);
        assert_eq!(
            t.queue_url(&t.queue).unwrap().as_str(),
            "http://127.0.0.1:45678/devstoreaccount1/linkguard-audits"
        );

        let t = parse("AccountName=acme;AccountKey=a2V5a2V5;EndpointSuffix=core.chinacloudapi.cn")
            .unwrap();
        assert_eq!(
            t.service_url.as_str(),
            "https://acme.queue.core.chinacloudapi.cn/"
        );
        assert!(!t.emulator);

        for (bad, why) in [
            ("AccountName=acme", "neither AccountKey"),
            ("AccountKey=a2V5a2V5", "AccountName is missing"),
            (
                "AccountName=acme;AccountKey=%%%TOPSECRET%%%",
                "not valid base64",
            ),
            ("AccountName=acme;AccountKey=a2V5;QueueName=Q", "invalid"),
            (
                "AccountName=acme;AccountKey=a2V5;Foo=1",
                "unknown connection string key `foo`",
            ),
            (
                "DefaultEndpointsProtocol=http;AccountName=acme;AccountKey=a2V5",
                "clear text",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why) && !e.contains("TOPSECRET"), "{bad}: {e}");
        }
    }

    #[test]
    fn bare_name_uses_the_functions_storage_connection() {
        let t = parse_queue(
            "linkguard-audits",
            &lookup(&[(WEBJOBS_STORAGE, "UseDevelopmentStorage=true")]),
        )
        .unwrap();
        assert_eq!(t.queue, "linkguard-audits");
        assert!(t.emulator);
        let t = parse_queue(
            "linkguard-audits",
            &lookup(&[("AzureWebJobsStorage__accountName", "acme")]),
        )
        .unwrap();
        assert_eq!(
            t.service_url.as_str(),
            "https://acme.queue.core.windows.net/"
        );
        assert!(matches!(t.auth, QueueAuth::Token));
        let e = parse_queue("linkguard-audits", &|_| None).unwrap_err();
        assert!(e.contains("AzureWebJobsStorage"), "{e}");
    }

    #[test]
    fn deadlines() {
        assert_eq!(parse_deadline("02:00:00"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_deadline(" 48:00:30 "),
            Ok(Duration::from_secs(48 * 3600 + 30))
        );
        assert_eq!(parse_deadline("00:00:01"), Ok(Duration::from_secs(1)));
        for bad in [
            "00:00:00",
            "2h",
            "01:60:00",
            "169:00:00",
            "1:2",
            "",
            "-1:00:00",
        ] {
            assert!(parse_deadline(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_malformed_setting_is_named() {
        let e = FanOutSettings::from_lookup(lookup(&[
            (FANOUT_QUEUE, "ftp://x/y"),
            (FANOUT_DEADLINE, "soon"),
        ]))
        .unwrap_err();
        let keys: Vec<_> = e.iter().map(|e| e.key).collect();
        assert_eq!(keys, [FANOUT_QUEUE, FANOUT_DEADLINE], "{e:?}");
    }

    #[test]
    fn repo_host_json_and_function_json_agree_with_the_defaults() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let host = std::fs::read_to_string(root.join("host.json")).unwrap();
        assert_eq!(max_dequeue_count_of(&host), Ok(5));
        let f =
            std::fs::read_to_string(root.join("function/SubscriptionAudit/function.json")).unwrap();
        assert_eq!(trigger_queue_of(&f).unwrap(), DEFAULT_QUEUE);
        assert_eq!(max_dequeue_count_of("{}"), Ok(DEFAULT_MAX_DEQUEUE_COUNT));
        assert!(
            max_dequeue_count_of(r#"{"extensions":{"queues":{"maxDequeueCount":0}}}"#).is_err()
        );
    }

    #[test]
    fn under_the_host_the_trigger_queue_and_dequeue_count_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("SubscriptionAudit")).unwrap();
        std::fs::write(
            dir.path().join("SubscriptionAudit/function.json"),
            r#"{"bindings":[{"type":"queueTrigger","name":"message","direction":"in","queueName":"linkguard-audits","connection":"AzureWebJobsStorage"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("host.json"),
            r#"{"version":"2.0","extensions":{"queues":{"maxDequeueCount":3}}}"#,
        )
        .unwrap();
        let root = dir.path().to_str().unwrap();
        let s = FanOutSettings::from_lookup(lookup(&[
            (
                FANOUT_QUEUE,
                "UseDevelopmentStorage=true;QueueName=linkguard-audits",
            ),
            (APP_ROOT, root),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.max_dequeue_count, 3);
        assert_eq!(s.deadline, DEFAULT_DEADLINE);
        let e = FanOutSettings::from_lookup(lookup(&[
            (FANOUT_QUEUE, "UseDevelopmentStorage=true;QueueName=other"),
            (APP_ROOT, root),
        ]))
        .unwrap_err();
        assert!(
            e.iter()
                .any(|e| e.message.contains("listens to `linkguard-audits`")),
            "{e:?}"
        );
    }
}
