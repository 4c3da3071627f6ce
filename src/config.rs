//! The settings of DESIGN 3.0 (contract), read once and validated before anything runs: a malformed
//! setting stops the process at start with a message naming it.
//!
//! Values come through a lookup closure (`Fn(&str) -> Option<String>`) rather than `std::env`, so
//! tests pass settings without touching the process environment, and CLI flags can be laid over
//! the environment ([`overlay`]). Empty or blank values count as unset.

use std::fmt;
use std::path::PathBuf;

pub use crate::arm::credential::CredentialKind;
use crate::events::TopicAllowList;
pub use crate::report::sink::ReportDestination;

pub const POLICY: &str = "LINKGUARD_POLICY";
pub const ARM_ENDPOINT: &str = "LINKGUARD_ARM_ENDPOINT";
pub const CREDENTIAL: &str = "LINKGUARD_CREDENTIAL";
pub const STATIC_TOKEN: &str = "LINKGUARD_STATIC_TOKEN";
pub const ARM_CA_CERT: &str = "LINKGUARD_ARM_CA_CERT";
pub const REPORTS: &str = "LINKGUARD_REPORTS";
pub const EVENT_TOPICS: &str = "LINKGUARD_EVENT_TOPICS";
pub const AUDIT_SCHEDULE: &str = "LINKGUARD_AUDIT_SCHEDULE";
pub const WEBHOOK_SECRET: &str = "LINKGUARD_WEBHOOK_SECRET";

pub const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";
pub const DEFAULT_REPORTS: &str = "./linkguard-reports";
pub const DEFAULT_AUDIT_SCHEDULE: &str = "0 0 */6 * * *";
pub const DEFAULT_POLICY_FILE: &str = "linkguard.toml";

/// A value that must never be printed (tokens, webhook secrets, connection strings).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the policy comes from (`LINKGUARD_POLICY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyLocation {
    File(PathBuf),
    /// An https blob URL. Kept as a secret: a SAS URL carries its signature.
    Url(Secret),
}

impl fmt::Display for PolicyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyLocation::File(p) => write!(f, "{}", p.display()),
            PolicyLocation::Url(u) => f.write_str(&redact_url(u.expose())),
        }
    }
}

/// Every setting of DESIGN 3.0, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub policy: PolicyLocation,
    /// Absolute http(s) URL without query or fragment, no trailing slash.
    pub arm_endpoint: String,
    pub credential: CredentialKind,
    /// Present exactly when `credential` is `static`.
    pub static_token: Option<Secret>,
    /// An existing PEM file holding at least one certificate.
    pub arm_ca_cert: Option<PathBuf>,
    /// Parsed by the report sink's own parser (the one place that knows the forms).
    pub reports: ReportDestination,
    pub event_topics: TopicAllowList,
    /// A six-field NCRONTAB expression (checked; the Functions host does the scheduling).
    pub audit_schedule: String,
    pub webhook_secret: Option<Secret>,
}

/// One malformed setting: names the variable, what is wrong and the fix. Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    pub key: &'static str,
    pub message: String,
}

/// Every malformed setting found (all are reported at once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub errors: Vec<SettingError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration (nothing was started):")?;
        for e in &self.errors {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// True when `key` is among the malformed settings.
    pub fn names(&self, key: &str) -> bool {
        self.errors.iter().any(|e| e.key == key)
    }
}

/// A lookup that answers from `overrides` first (CLI flags), then from `base` (the environment).
pub fn overlay<'a>(
    overrides: &'a [(&'static str, Option<String>)],
    base: impl Fn(&str) -> Option<String> + 'a,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        overrides
            .iter()
            .find(|(k, v)| *k == key && v.is_some())
            .and_then(|(_, v)| v.clone())
            .or_else(|| base(key))
    }
}

/// The process environment as a lookup.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_lookup(process_env)
    }

    /// Reads and validates every setting through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let mut errors = Vec::new();

        let policy = keep(&mut errors, parse_policy(get(POLICY)));
        let arm_endpoint = keep(&mut errors, parse_endpoint(get(ARM_ENDPOINT)));
        let credential = keep(&mut errors, parse_credential(get(CREDENTIAL)));
        let static_token = get(STATIC_TOKEN).map(|t| Secret::new(t.trim()));
        let arm_ca_cert = keep(&mut errors, parse_ca_cert(get(ARM_CA_CERT)));
        let reports = keep(&mut errors, parse_reports(get(REPORTS)));
        let event_topics = keep(&mut errors, parse_topics(get(EVENT_TOPICS)));
        let schedule = get(AUDIT_SCHEDULE).unwrap_or_else(|| DEFAULT_AUDIT_SCHEDULE.to_string());
        let audit_schedule = keep(
            &mut errors,
            validate_ncrontab(&schedule)
                .map(|()| schedule.trim().to_string())
                .map_err(|message| SettingError {
                    key: AUDIT_SCHEDULE,
                    message,
                }),
        );
        let webhook_secret = get(WEBHOOK_SECRET).map(|s| Secret::new(s.trim()));
        let static_token = match (credential, static_token) {
            (Some(CredentialKind::Static), None) => {
                errors.push(SettingError {
                    key: STATIC_TOKEN,
                    message: "LINKGUARD_CREDENTIAL=static needs LINKGUARD_STATIC_TOKEN: the token the sandbox expects (any value unless `linkguard sim --token` was given)".into(),
                });
                None
            }
            (Some(CredentialKind::Static), token) => token,
            // A leftover token for another credential is never used (nor sent anywhere).
            _ => None,
        };
        match (
            policy,
            arm_endpoint,
            credential,
            arm_ca_cert,
            reports,
            event_topics,
            audit_schedule,
        ) {
            (
                Some(policy),
                Some(arm_endpoint),
                Some(credential),
                Some(arm_ca_cert),
                Some(reports),
                Some(event_topics),
                Some(audit_schedule),
            ) if errors.is_empty() => Ok(Settings {
                policy,
                arm_endpoint,
                credential,
                static_token,
                arm_ca_cert,
                reports,
                event_topics,
                audit_schedule,
                webhook_secret,
            }),
            _ => Err(ConfigError { errors }),
        }
    }
}

fn keep<T>(errors: &mut Vec<SettingError>, r: Result<T, SettingError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn is_url(v: &str) -> bool {
    let lower = v.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// `scheme://host/path` without query (SAS) or credentials, for messages and logs.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(mut u) => {
            let had_query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_password(None);
            let _ = u.set_username("");
            let mut s = u.to_string();
            if had_query {
                s.push_str("?…");
            }
            s
        }
        Err(_) => "<unparseable URL>".into(),
    }
}

/// Default policy path: `linkguard.toml` beside the binary.
pub fn default_policy_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(DEFAULT_POLICY_FILE)))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_POLICY_FILE))
}

fn parse_policy(v: Option<String>) -> Result<PolicyLocation, SettingError> {
    let Some(v) = v else {
        return Ok(PolicyLocation::File(default_policy_path()));
    };
    let v = v.trim();
    if is_url(v) {
        let url = url::Url::parse(v).map_err(|e| SettingError {
            key: POLICY,
            message: format!(
                "`{}` is not a valid URL ({e}); give a file path or an https blob URL",
                redact_url(v)
            ),
        })?;
        // Plain http only to loopback (Azurite); a SAS or token would otherwise travel in clear.
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() != "https" && !loopback {
            return Err(SettingError {
                key: POLICY,
                message: format!(
                    "`{}` uses http; a policy blob URL must be https (plain http is accepted for a loopback emulator only)",
                    redact_url(v)
                ),
            });
        }
        return Ok(PolicyLocation::Url(Secret::new(v)));
    }
    Ok(PolicyLocation::File(PathBuf::from(v)))
}

fn parse_endpoint(v: Option<String>) -> Result<String, SettingError> {
    let Some(v) = v else {
        return Ok(DEFAULT_ARM_ENDPOINT.to_string());
    };
    let err = |message: String| SettingError {
        key: ARM_ENDPOINT,
        message,
    };
    let url = url::Url::parse(v.trim()).map_err(|e| {
        err(format!(
            "`{}` is not a URL ({e}); use e.g. https://management.azure.com or the sandbox's endpoint",
            v.trim()
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(err(format!(
            "`{}` must be an http(s) URL with a host, e.g. https://management.azure.com",
            v.trim()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err(format!(
            "`{}` must not carry a query or fragment; give the base URL only",
            redact_url(v.trim())
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(
            "the URL must not carry user credentials; use LINKGUARD_CREDENTIAL".into(),
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err(err(format!(
            "`{}` is plain http on a host that is not loopback: the token would travel in clear text; use https (for the sandbox: `linkguard sim --tls` and LINKGUARD_ARM_CA_CERT)",
            v.trim()
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn parse_credential(v: Option<String>) -> Result<CredentialKind, SettingError> {
    let Some(v) = v else {
        return Ok(CredentialKind::default());
    };
    v.parse().map_err(|_| SettingError {
        key: CREDENTIAL,
        message: format!(
            "`{}` is not a known credential; use one of {}",
            v.trim(),
            CredentialKind::known()
        ),
    })
}

fn parse_ca_cert(v: Option<String>) -> Result<Option<PathBuf>, SettingError> {
    let Some(v) = v else { return Ok(None) };
    let path = PathBuf::from(v.trim());
    let err = |message: String| SettingError {
        key: ARM_CA_CERT,
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        err(format!(
            "cannot read `{}`: {e}; give the path of a PEM certificate (the sandbox prints it as `ca_cert`)",
            path.display()
        ))
    })?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(err(format!(
            "`{}` holds no PEM certificate (no `-----BEGIN CERTIFICATE-----` line)",
            path.display()
        )));
    }
    Ok(Some(path))
}

fn parse_reports(v: Option<String>) -> Result<ReportDestination, SettingError> {
    let v = v.unwrap_or_else(|| DEFAULT_REPORTS.to_string());
    ReportDestination::parse(&v).map_err(|e| SettingError {
        key: REPORTS,
        message: e.problem,
    })
}

fn parse_topics(v: Option<String>) -> Result<TopicAllowList, SettingError> {
    let Some(v) = v else {
        return Ok(TopicAllowList::default());
    };
    if let Some(bad) = v
        .split(',')
        .map(str::trim)
        .find(|t| t.chars().any(char::is_whitespace))
    {
        return Err(SettingError {
            key: EVENT_TOPICS,
            message: format!(
                "`{bad}` contains whitespace; separate topics with commas, e.g. /subscriptions/<id>,/subscriptions/<id>/resourceGroups/<rg>"
            ),
        });
    }
    Ok(TopicAllowList::parse(&v))
}

/// Checks an Azure Functions NCRONTAB expression: six fields
/// `{second} {minute} {hour} {day} {month} {day-of-week}`, Sunday = 0.
pub fn validate_ncrontab(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    let fields = expr.split_whitespace().count();
    if expr.contains('@') || fields != 6 {
        return Err(format!(
            "`{expr}` has {fields} field(s); an NCRONTAB schedule has six: {{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}, e.g. `{DEFAULT_AUDIT_SCHEDULE}` (every 6 hours)"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expr)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "`{expr}` is not a valid NCRONTAB schedule ({e}); e.g. `{DEFAULT_AUDIT_SCHEDULE}` runs every 6 hours"
            )
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.arm_endpoint, DEFAULT_ARM_ENDPOINT);
        assert_eq!(s.credential, CredentialKind::ManagedIdentity);
        assert!(
            matches!(&s.reports, ReportDestination::Directory(p) if p == &PathBuf::from(DEFAULT_REPORTS))
        );
        assert!(s.event_topics.is_empty());
        assert_eq!(s.audit_schedule, DEFAULT_AUDIT_SCHEDULE);
        assert!(s.webhook_secret.is_none() && s.static_token.is_none());
        match s.policy {
            PolicyLocation::File(p) => assert!(p.ends_with(DEFAULT_POLICY_FILE)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blank_values_count_as_unset() {
        let s = settings(&[(ARM_ENDPOINT, "  "), (EVENT_TOPICS, "")]).unwrap();
        assert_eq!(s.arm_endpoint, DEFAULT_ARM_ENDPOINT);
    }

    #[test]
    fn every_malformed_setting_is_named_at_once() {
        let e = settings(&[
            (ARM_ENDPOINT, "management.azure.com"),
            (CREDENTIAL, "password"),
            (AUDIT_SCHEDULE, "0 */5 * * *"),
            (ARM_CA_CERT, "/nonexistent/ca.pem"),
            (EVENT_TOPICS, "/subscriptions/a /subscriptions/b"),
            (REPORTS, "ftp://example.com/reports"),
            (POLICY, "http://example.com/policy.toml"),
        ])
        .unwrap_err();
        for key in [
            ARM_ENDPOINT,
            CREDENTIAL,
            AUDIT_SCHEDULE,
            ARM_CA_CERT,
            EVENT_TOPICS,
            REPORTS,
            POLICY,
        ] {
            assert!(e.names(key), "{key} not named in {e}");
        }
        let text = e.to_string();
        assert!(text.contains("has 5 field(s)"), "{text}");
        assert!(
            text.contains("`password` is not a known credential"),
            "{text}"
        );
    }

    #[test]
    fn static_credential_needs_its_token_and_the_token_never_prints() {
        let e = settings(&[(CREDENTIAL, "static")]).unwrap_err();
        assert!(e.names(STATIC_TOKEN));
        let s = settings(&[(CREDENTIAL, "Static"), (STATIC_TOKEN, "tok-123")]).unwrap();
        assert_eq!(s.static_token.as_ref().map(Secret::expose), Some("tok-123"));
        assert!(!format!("{s:?}").contains("tok-123"));
        // A token left over for another credential is dropped.
        let s = settings(&[(STATIC_TOKEN, "tok-123")]).unwrap();
        assert!(s.static_token.is_none());
    }

    #[test]
    fn reports_use_the_sink_parser_and_secrets_stay_hidden() {
        let s = settings(&[(
            REPORTS,
            "https://acct.blob.core.windows.net/linkguard-reports?sv=2024&sig=SECRETSIG",
        )])
        .unwrap();
        assert!(matches!(s.reports, ReportDestination::Blob(_)));
        assert!(!s.reports.to_string().contains("SECRETSIG"));
        assert!(!format!("{s:?}").contains("SECRETSIG"));
        let e = settings(&[(REPORTS, "https://acct.blob.core.windows.net/a/b")]).unwrap_err();
        assert!(
            e.names(REPORTS) && e.to_string().contains("below a container"),
            "{e}"
        );
        let s = settings(&[(REPORTS, "/var/reports")]).unwrap();
        assert!(
            matches!(&s.reports, ReportDestination::Directory(p) if p.as_path() == std::path::Path::new("/var/reports"))
        );
    }

    #[test]
    fn endpoint_is_normalised() {
        let s = settings(&[(ARM_ENDPOINT, "http://127.0.0.1:8443/")]).unwrap();
        assert_eq!(s.arm_endpoint, "http://127.0.0.1:8443");
        assert!(
            settings(&[(ARM_ENDPOINT, "https://management.azure.com/?x=1")])
                .unwrap_err()
                .names(ARM_ENDPOINT)
        );
        assert!(
            settings(&[(ARM_ENDPOINT, "ftp://x")])
                .unwrap_err()
                .names(ARM_ENDPOINT)
        );
        let e = settings(&[(ARM_ENDPOINT, "http://arm.example.com")]).unwrap_err();
        assert!(e.to_string().contains("clear text"), "{e}");
        assert!(settings(&[(ARM_ENDPOINT, "http://localhost:1234")]).is_ok());
    }

    #[test]
    fn ca_cert_must_be_pem() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "hello").unwrap();
        let e = settings(&[(ARM_CA_CERT, bad.to_str().unwrap())]).unwrap_err();
        assert!(e.to_string().contains("holds no PEM certificate"));
        let good = dir.path().join("good.pem");
        std::fs::write(
            &good,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let s = settings(&[(ARM_CA_CERT, good.to_str().unwrap())]).unwrap();
        assert_eq!(s.arm_ca_cert, Some(good));
    }

    #[test]
    fn ncrontab_is_six_fields_with_sunday_zero() {
        for ok in [
            "0 0 */6 * * *",
            "0 30 9 * * 1-5",
            "0 0 0 * * 0",
            "0 0 0 * * Sun",
            "*/30 * * * * *",
        ] {
            assert_eq!(validate_ncrontab(ok), Ok(()), "{ok}");
        }
        for bad in [
            "0 */5 * * *",
            "0 0 */6 * * * 2030",
            "@daily",
            "0 0 25 * * *",
            "0 61 * * * *",
            "00:05:00",
            "",
        ] {
            assert!(validate_ncrontab(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topics_and_policy_url() {
        let s = settings(&[(
            EVENT_TOPICS,
            "/subscriptions/A, /subscriptions/b/resourceGroups/rg ,",
        )])
        .unwrap();
        assert_eq!(s.event_topics.topics().len(), 2);
        assert!(s.event_topics.allows("/subscriptions/a"));
        let s = settings(&[(
            POLICY,
            "https://acct.blob.core.windows.net/cfg/policy.toml?sig=X",
        )])
        .unwrap();
        assert!(matches!(s.policy, PolicyLocation::Url(_)));
        assert!(!s.policy.to_string().contains("sig=X"));
        // Azurite on loopback may be plain http; any other host may not.
        let s = settings(&[(
            POLICY,
            "http://127.0.0.1:10000/devstoreaccount1/cfg/p.toml?sig=X",
        )])
        .unwrap();
        assert!(matches!(s.policy, PolicyLocation::Url(_)));
        let e = settings(&[(POLICY, "http://10.0.0.1/devstoreaccount1/cfg/p.toml")]).unwrap_err();
        assert!(
            e.names(POLICY) && e.to_string().contains("must be https"),
            "{e}"
        );
    }

    #[test]
    fn overlay_prefers_flags() {
        let overrides = [
            (ARM_ENDPOINT, Some("http://127.0.0.1:1".to_string())),
            (REPORTS, None),
        ];
        let base = |k: &str| match k {
            ARM_ENDPOINT => Some("https://management.azure.com".to_string()),
            REPORTS => Some("/from/env".to_string()),
            _ => None,
        };
        let s = Settings::from_lookup(overlay(&overrides, base)).unwrap();
        assert_eq!(s.arm_endpoint, "http://127.0.0.1:1");
        assert!(
            matches!(&s.reports, ReportDestination::Directory(p) if p == &PathBuf::from("/from/env"))
        );
    }
}
