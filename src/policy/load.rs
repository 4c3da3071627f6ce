//! Reading and validating the TOML policy (DESIGN 4). Validation is strict: unknown keys, bad enum
//! values, bad globs, regexes and CIDRs, duplicate rule names and empty lists are errors that name
//! the file, the line and the key, and say what would be valid.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::matchers::{NameGlobs, SubnetSet};
use super::{
    ConnectionPolicy, Mode, NetworkPolicy, PendingDefault, Policy, Rule, RuleAction, RuleMatch,
    Scope, Toggle,
};
use crate::model::{DefaultAction, PublicNetworkAccess};

/// A policy that cannot be used, pointing at the offending place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Line 0: the whole file is at fault (unreadable, empty).
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}: `{}`: {}",
                self.file, self.line, self.key, self.message
            )
        }
    }
}

impl std::error::Error for PolicyError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Option<Spanned<i64>>,
    mode: Option<Mode>,
    scope: Option<RawScope>,
    connections: Option<RawConnections>,
    network: Option<RawNetwork>,
}

type Patterns = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    subscriptions: Patterns,
    resource_groups: Patterns,
    registries: Patterns,
    exclude_registries: Patterns,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnections {
    default: Option<PendingDefault>,
    revoke_approved: Option<bool>,
    delete_disconnected: Option<bool>,
    rules: Option<Vec<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    action: RuleAction,
    description: Option<Spanned<String>>,
    #[serde(rename = "match")]
    matcher: Option<RawMatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    subscriptions: Patterns,
    resource_groups: Patterns,
    private_endpoint_names: Patterns,
    subnets: Patterns,
    request_message: Option<Spanned<String>>,
    registries: Patterns,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    public_network_access: Option<PublicAccessSetting>,
    default_action: Option<DefaultActionSetting>,
    trusted_services: Option<Toggle>,
    tasks_bypass: Option<Toggle>,
    allowed_ip_ranges: Patterns,
    forbid_vnet_rules: Option<bool>,
    remediate: Option<bool>,
}

#[derive(Deserialize)]
enum PublicAccessSetting {
    Enabled,
    Disabled,
}

#[derive(Deserialize)]
enum DefaultActionSetting {
    Allow,
    Deny,
}

/// Tracks the source so every error can point at a line.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text
            .get(..end)
            .map_or(1, |t| t.matches('\n').count() + 1)
    }
    fn error(&self, offset: usize, key: &str, message: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.file.to_string(),
            line: self.line_of(offset),
            key: key.to_string(),
            message: message.into(),
        }
    }
    /// The key a TOML error points at: the `key =` on that line, or the table header.
    fn key_at(&self, offset: usize) -> String {
        let line_no = self.line_of(offset);
        let line = self
            .text
            .lines()
            .nth(line_no.saturating_sub(1))
            .unwrap_or("")
            .trim();
        match line.split_once('=') {
            Some((k, _)) => k.trim().to_string(),
            None => line.trim_matches(|c| c == '[' || c == ']').to_string(),
        }
    }
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            line: 0,
            key: "(file)".into(),
            message: format!("cannot read the policy file: {e}; pass an existing TOML file (see examples/policy.toml)"),
        })?;
        Policy::parse(&file, &text)
    }

    /// Parses and validates policy text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let src = Source { file, text };
        if text.trim().is_empty() {
            return Err(src.error(
                0,
                "version",
                "the policy is empty; start with `version = 1` (see examples/policy.toml)",
            ));
        }
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let message = e.message().trim_end().replace('\n', " ");
            src.error(offset, &src.key_at(offset), message)
        })?;
        compile(&src, raw)
    }
}

fn compile(src: &Source<'_>, raw: RawPolicy) -> Result<Policy, PolicyError> {
    if let Some(v) = &raw.version
        && *v.get_ref() != 1
    {
        return Err(src.error(
            v.span().start,
            "version",
            format!(
                "unsupported version {}; this linkguard reads `version = 1`",
                v.get_ref()
            ),
        ));
    }
    let scope = match raw.scope {
        None => Scope::default(),
        Some(s) => Scope {
            subscriptions: lowered(src, "scope.subscriptions", s.subscriptions, true)?,
            resource_groups: globs(src, "scope.resource_groups", s.resource_groups, true)?,
            registries: globs(src, "scope.registries", s.registries, true)?,
            exclude_registries: globs(src, "scope.exclude_registries", s.exclude_registries, true)?,
        },
    };
    let connections = match raw.connections {
        None => ConnectionPolicy::default(),
        Some(c) => ConnectionPolicy {
            default: c.default.unwrap_or(PendingDefault::Leave),
            revoke_approved: c.revoke_approved.unwrap_or(false),
            delete_disconnected: c.delete_disconnected.unwrap_or(false),
            rules: rules(src, c.rules.unwrap_or_default())?,
        },
    };
    let network = match raw.network {
        None => NetworkPolicy::default(),
        Some(n) => NetworkPolicy {
            public_network_access: n.public_network_access.map(|p| match p {
                PublicAccessSetting::Enabled => PublicNetworkAccess::Enabled,
                PublicAccessSetting::Disabled => PublicNetworkAccess::Disabled,
            }),
            default_action: n.default_action.map(|d| match d {
                DefaultActionSetting::Allow => DefaultAction::Allow,
                DefaultActionSetting::Deny => DefaultAction::Deny,
            }),
            trusted_services: n.trusted_services,
            tasks_bypass: n.tasks_bypass,
            allowed_ip_ranges: cidrs(src, n.allowed_ip_ranges)?,
            forbid_vnet_rules: n.forbid_vnet_rules.unwrap_or(false),
            remediate: n.remediate.unwrap_or(false),
        },
    };
    let sha256 = Sha256::digest(src.text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Policy {
        mode: raw.mode.unwrap_or(Mode::Enforce),
        scope,
        connections,
        network,
        sha256,
        source: src.file.to_string(),
    })
}

fn rules(src: &Source<'_>, raw: Vec<RawRule>) -> Result<Vec<Rule>, PolicyError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let name = r.name.get_ref().trim().to_string();
        let at = r.name.span().start;
        if name.is_empty() {
            return Err(src.error(
                at,
                "connections.rules.name",
                "a rule name must not be empty; give every rule a unique name",
            ));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(src.error(at, "connections.rules.name", format!("duplicate rule name `{name}`; rule names must be unique (they identify decisions)")));
        }
        let matcher = match r.matcher {
            None => None,
            Some(m) => Some(RuleMatch {
                subscriptions: lowered(
                    src,
                    "connections.rules.match.subscriptions",
                    m.subscriptions,
                    false,
                )?,
                resource_groups: globs(
                    src,
                    "connections.rules.match.resource_groups",
                    m.resource_groups,
                    false,
                )?,
                private_endpoint_names: globs(
                    src,
                    "connections.rules.match.private_endpoint_names",
                    m.private_endpoint_names,
                    false,
                )?,
                subnets: subnets(src, m.subnets)?,
                request_message: match m.request_message {
                    None => None,
                    Some(re) => Some(regex::Regex::new(re.get_ref()).map_err(|e| {
                        src.error(
                            re.span().start,
                            "connections.rules.match.request_message",
                            format!(
                                "invalid regular expression: {}",
                                e.to_string().replace('\n', " ")
                            ),
                        )
                    })?),
                },
                registries: globs(
                    src,
                    "connections.rules.match.registries",
                    m.registries,
                    false,
                )?,
            }),
        };
        let description = match r.description {
            Some(d) => {
                let text = d.get_ref().clone();
                if let Some(bad) = unknown_placeholder(&text) {
                    return Err(src.error(d.span().start, "connections.rules.description", format!("unknown placeholder `{{{bad}}}`; valid placeholders are {{rule}}, {{registry}}, {{endpoint}}")));
                }
                Some(text)
            }
            None => None,
        };
        out.push(Rule {
            name,
            action: r.action,
            description,
            matcher,
        });
    }
    Ok(out)
}

fn unknown_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = rest.get(start + 1..).unwrap_or("");
        let end = after.find('}')?;
        let name = after.get(..end).unwrap_or("");
        if !matches!(name, "rule" | "registry" | "endpoint") {
            return Some(name.to_string());
        }
        rest = after.get(end + 1..).unwrap_or("");
    }
    None
}

/// A list key; `None` when absent. An empty list is an error where it would silently match nothing.
fn list(
    src: &Source<'_>,
    key: &str,
    raw: Patterns,
    empty_ok: bool,
) -> Result<Option<Vec<Spanned<String>>>, PolicyError> {
    let Some(raw) = raw else { return Ok(None) };
    let at = raw.span().start;
    let items = raw.into_inner();
    if items.is_empty() {
        if empty_ok {
            return Ok(None);
        }
        return Err(src.error(
            at,
            key,
            "an empty list matches nothing; remove the key to match any value, or list values",
        ));
    }
    for item in &items {
        if item.get_ref().trim().is_empty() {
            return Err(src.error(item.span().start, key, "empty value in list; remove it"));
        }
    }
    Ok(Some(items))
}

fn lowered(
    src: &Source<'_>,
    key: &str,
    raw: Patterns,
    empty_ok: bool,
) -> Result<Option<Vec<String>>, PolicyError> {
    Ok(list(src, key, raw, empty_ok)?.map(|items| {
        items
            .into_iter()
            .map(|s| s.into_inner().trim().to_ascii_lowercase())
            .collect()
    }))
}

fn globs(
    src: &Source<'_>,
    key: &str,
    raw: Patterns,
    empty_ok: bool,
) -> Result<Option<NameGlobs>, PolicyError> {
    let Some(items) = list(src, key, raw, empty_ok)? else {
        return Ok(None);
    };
    let mut patterns = Vec::with_capacity(items.len());
    for item in items {
        let at = item.span().start;
        patterns.push((item.into_inner(), at));
    }
    NameGlobs::new(patterns.iter().map(|(p, _)| p.as_str()))
        .map(Some)
        .map_err(|(index, e)| {
            let at = patterns.get(index).map_or(0, |(_, at)| *at);
            src.error(
                at,
                key,
                format!("invalid glob: {e}; globs use `*`, `?` and `[abc]`"),
            )
        })
}

fn subnets(src: &Source<'_>, raw: Patterns) -> Result<Option<SubnetSet>, PolicyError> {
    let key = "connections.rules.match.subnets";
    let Some(items) = list(src, key, raw, false)? else {
        return Ok(None);
    };
    let mut ids = Vec::new();
    for item in items {
        let id = crate::model::ResourceId::parse(item.get_ref())
            .map_err(|e| src.error(item.span().start, key, e.to_string()))?;
        let is_vnet = id.is_type("Microsoft.Network/virtualNetworks");
        let is_subnet = id.is_type("Microsoft.Network/virtualNetworks/subnets");
        if !is_vnet && !is_subnet {
            return Err(src.error(item.span().start, key, format!("`{id}` is not a subnet or virtual network id; expected .../providers/Microsoft.Network/virtualNetworks/{{vnet}}[/subnets/{{subnet}}]")));
        }
        ids.push(id);
    }
    Ok(Some(SubnetSet::new(ids)))
}

fn cidrs(src: &Source<'_>, raw: Patterns) -> Result<Option<Vec<ipnet::IpNet>>, PolicyError> {
    let key = "network.allowed_ip_ranges";
    let Some(items) = list(src, key, raw, true)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in items {
        let text = item.get_ref().trim();
        let net = super::matchers::parse_ip_range(text)
            .ok_or_else(|| src.error(item.span().start, key, format!("`{text}` is not an IP address or CIDR range; write e.g. \"203.0.113.0/24\" or \"198.51.100.7\"")))?;
        out.push(net);
    }
    Ok(Some(out))
}
