//! Renderings of a `linkguard.report/v1` document: JSON (the contract), plain text for terminals,
//! Markdown, and one self-contained HTML page. Pure functions of the report: the same report always
//! renders to the same bytes, which is what lets a sink tell "already stored" from "overwrite".

pub mod html;
pub mod markdown;
pub mod text;

use std::fmt;
use std::str::FromStr;

use super::model::{AttentionItem, Outcome, Report, RunMode, Trigger};

/// An output format of `linkguard report render` and of the sinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    Json,
    Text,
    #[value(name = "md", alias = "markdown")]
    Markdown,
    Html,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Text => "text",
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Format::Json),
            "text" => Ok(Format::Text),
            "md" | "markdown" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown report format `{other}`: use json, text, md or html"
            )),
        }
    }
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => to_json(report),
        Format::Text => text::render(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
    }
}

/// The JSON document, pretty-printed with a trailing newline.
pub fn to_json(report: &Report) -> String {
    // Serializing these plain structs cannot fail (string keys, no maps with non-string keys);
    // an empty object would still be valid JSON should serde ever disagree.
    let mut out = serde_json::to_string_pretty(report).unwrap_or_else(|_| String::from("{}"));
    out.push('\n');
    out
}

/// The severities of DESIGN 4.2, most urgent first.
pub const SEVERITIES: [&str; 4] = ["high", "medium", "low", "info"];

/// Sort key of a severity string: known severities in `SEVERITIES` order, anything else last.
pub fn severity_rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| s.eq_ignore_ascii_case(severity))
        .unwrap_or(SEVERITIES.len())
}

/// What to show for a severity: a report with only DESIGN's fields has none.
pub fn severity_label(severity: &str) -> &str {
    if severity.is_empty() {
        "unspecified"
    } else {
        severity
    }
}

/// Needs-attention items sorted by severity (stable: report order within a severity).
pub fn sorted_attention(report: &Report) -> Vec<&AttentionItem> {
    let mut items: Vec<&AttentionItem> = report.needs_attention.iter().collect();
    items.sort_by_key(|item| severity_rank(&item.severity));
    items
}

/// How many needs-attention items carry `severity`.
pub fn attention_count(report: &Report, severity: &str) -> usize {
    report
        .needs_attention
        .iter()
        .filter(|item| item.severity.eq_ignore_ascii_case(severity))
        .count()
}

/// Items whose severity is none of `SEVERITIES`.
pub fn attention_other_count(report: &Report) -> usize {
    report
        .needs_attention
        .iter()
        .filter(|item| severity_rank(&item.severity) == SEVERITIES.len())
        .count()
}

pub const OUTCOMES: [Outcome; 4] = [
    Outcome::Applied,
    Outcome::DryRun,
    Outcome::Skipped,
    Outcome::Failed,
];

pub fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "applied",
        Outcome::DryRun => "dry-run",
        Outcome::Skipped => "skipped",
        Outcome::Failed => "failed",
    }
}

pub fn outcome_count(report: &Report, outcome: Outcome) -> usize {
    report
        .actions
        .iter()
        .filter(|a| a.outcome == outcome)
        .count()
}

pub fn trigger_str(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Event => "event",
        Trigger::Timer => "timer",
        Trigger::Http => "http",
        Trigger::Cli => "cli",
    }
}

pub fn mode_str(mode: RunMode) -> &'static str {
    match mode {
        RunMode::Enforce => "enforce",
        RunMode::DryRun => "dry-run",
    }
}

/// The last segment of an ARM id (the registry or connection name), for compact display; the full
/// id is always shown or available next to it.
pub fn short_name(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// The first `n` characters of a digest, for display.
pub fn short_digest(digest: &str, n: usize) -> &str {
    match digest.char_indices().nth(n) {
        Some((i, _)) => digest.get(..i).unwrap_or(digest),
        None => digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_rank_orders_known_severities_and_puts_unknown_last() {
        assert!(severity_rank("high") < severity_rank("medium"));
        assert!(severity_rank("medium") < severity_rank("low"));
        assert!(severity_rank("low") < severity_rank("info"));
        assert!(severity_rank("info") < severity_rank("bogus"));
        assert_eq!(severity_rank("HIGH"), 0);
    }

    #[test]
    fn short_name_is_the_last_id_segment() {
        assert_eq!(
            short_name(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr1"
            ),
            "acr1"
        );
        assert_eq!(short_name("policy"), "policy");
        assert_eq!(short_name("a/b/"), "b");
    }

    #[test]
    fn format_parses_its_names() {
        assert_eq!("md".parse::<Format>(), Ok(Format::Markdown));
        assert_eq!("markdown".parse::<Format>(), Ok(Format::Markdown));
        assert!("pdf".parse::<Format>().is_err());
    }
}
