//! The storage layout of DESIGN 6 and the rendered objects every sink writes, in write order.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::SinkError;
use crate::report::model::Report;
use crate::report::render;

pub const LATEST: &str = "latest.json";
pub const CONTENT_TYPE_JSON: &str = "application/json; charset=utf-8";
pub const CONTENT_TYPE_MARKDOWN: &str = "text/markdown; charset=utf-8";
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Json,
    Markdown,
    Html,
    Latest,
}

/// One object to write: its name under the sink root, content type and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedObject {
    pub kind: ObjectKind,
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Longest run id accepted (it becomes a file and blob name).
pub const MAX_RUN_ID_LEN: usize = 128;

/// A run id must be usable as one path segment everywhere: 1-128 of `A-Z a-z 0-9 . _ -`, starting
/// with a letter or digit and not ending with a dot. This also shuts out path traversal.
pub fn check_run_id(id: &str) -> Result<(), SinkError> {
    let problem = if id.is_empty() {
        Some("is empty")
    } else if id.len() > MAX_RUN_ID_LEN {
        Some("is longer than 128 characters")
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("may contain only letters, digits, `.`, `_` and `-`")
    } else if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("must start with a letter or digit")
    } else if id.ends_with('.') {
        Some("must not end with a dot")
    } else {
        None
    };
    match problem {
        Some(p) => Err(SinkError::InvalidReport {
            field: "run.id",
            problem: format!(
                "{p} (it names the stored files); got {:?}",
                crate::report::render::text::clean(id)
            ),
        }),
        None => Ok(()),
    }
}

fn parse_time(field: &'static str, value: &str) -> Result<OffsetDateTime, SinkError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| t.to_offset(UtcOffset::UTC))
        .map_err(|e| SinkError::InvalidReport {
            field,
            problem: format!(
                "is not an RFC 3339 timestamp ({e}); got {:?}",
                render::text::clean(value)
            ),
        })
}

/// `runs/YYYY/MM/DD` of the run's start, in UTC.
pub fn day_prefix(report: &Report) -> Result<String, SinkError> {
    let t = parse_time("run.started", &report.run.started)?;
    Ok(format!(
        "runs/{:04}/{:02}/{:02}",
        t.year(),
        u8::from(t.month()),
        t.day()
    ))
}

/// When the run finished (UTC): what decides which run `latest.json` holds.
pub fn finished(report: &Report) -> Result<OffsetDateTime, SinkError> {
    parse_time("run.finished", &report.run.finished)
}

/// Checks the report and renders every object to write, in order: the run's JSON, Markdown and
/// HTML, then `latest.json` (the same bytes as the run's JSON).
pub fn render_objects(report: &Report) -> Result<Vec<RenderedObject>, SinkError> {
    check_run_id(&report.run.id)?;
    let prefix = day_prefix(report)?;
    finished(report)?;
    let id = &report.run.id;
    let json = render::to_json(report).into_bytes();
    Ok(vec![
        RenderedObject {
            kind: ObjectKind::Json,
            name: format!("{prefix}/{id}.json"),
            content_type: CONTENT_TYPE_JSON,
            bytes: json.clone(),
        },
        RenderedObject {
            kind: ObjectKind::Markdown,
            name: format!("{prefix}/{id}.md"),
            content_type: CONTENT_TYPE_MARKDOWN,
            bytes: render::markdown::render(report).into_bytes(),
        },
        RenderedObject {
            kind: ObjectKind::Html,
            name: format!("{prefix}/{id}.html"),
            content_type: CONTENT_TYPE_HTML,
            bytes: render::html::render(report).into_bytes(),
        },
        RenderedObject {
            kind: ObjectKind::Latest,
            name: LATEST.to_string(),
            content_type: CONTENT_TYPE_JSON,
            bytes: json,
        },
    ])
}

/// Whether the `latest.json` already stored holds a run newer than `ours`; returns that run's id.
/// Anything unreadable in the stored copy is treated as older (it gets replaced).
pub fn newer_latest(existing: &[u8], ours: OffsetDateTime) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Run {
        id: String,
        finished: String,
    }
    #[derive(serde::Deserialize)]
    struct Latest {
        run: Run,
    }
    let latest: Latest = serde_json::from_slice(existing).ok()?;
    let theirs = OffsetDateTime::parse(&latest.run.finished, &Rfc3339).ok()?;
    (theirs > ours).then_some(latest.run.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn run_ids_that_are_safe_names_pass() {
        for id in [
            "20261125T101500Z-3f2a",
            "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
            "a",
            "run_1.2",
        ] {
            assert!(check_run_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn run_ids_that_could_escape_or_break_names_fail() {
        for id in [
            "",
            "../etc/passwd",
            "a/b",
            ".hidden",
            "-x",
            "x.",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            let err = check_run_id(id).unwrap_err();
            assert!(err.to_string().contains("run.id"), "{err}");
        }
    }

    #[test]
    fn newer_latest_compares_finish_times() {
        let doc = br#"{"run":{"id":"r2","finished":"2026-11-25T10:00:05+01:00"}}"#;
        assert_eq!(
            newer_latest(doc, datetime!(2026-11-25 09:00:00 UTC)),
            Some("r2".into())
        );
        assert_eq!(newer_latest(doc, datetime!(2026-11-25 09:00:05 UTC)), None);
        assert_eq!(
            newer_latest(b"not json", datetime!(2026-11-25 09:00:00 UTC)),
            None
        );
    }
}
