//! Renderings of the report: the numbers a person reads are the report's numbers (HTML read back
//! from headless Chromium's DOM), findings come most severe first, and hostile strings from the
//! report never become markup, scripts, links, table cells or terminal escapes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support_report/mod.rs"]
mod support_report;

use linkguard::report::render::{self, Format};
use linkguard::report::{Outcome, Report};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use regex::Regex;
use support_report::reports::{self, HOSTILE_IMG, HOSTILE_MARKDOWN, HOSTILE_SCRIPT, HOSTILE_TABLE};
use support_report::{chromium, schema};

fn sample() -> Report {
    reports::sample(
        "20261125T100000Z-7f3a9c",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:02:13Z",
        false,
    )
}

/// The integer inside the first element carrying `attr="key"` in a DOM dump.
fn read_count(dom: &str, attr: &str, key: &str) -> u64 {
    let re = Regex::new(&format!(r#"{attr}="{key}"[^>]*>\s*(\d+)\s*<"#)).unwrap();
    let caps = re
        .captures(dom)
        .unwrap_or_else(|| panic!("no element with {attr}=\"{key}\" in the DOM"));
    caps[1].parse().unwrap()
}

fn write_page(html: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, html).unwrap();
    (dir, path)
}

#[test]
fn html_counts_read_back_from_chromium_match_the_report() {
    let report = sample();
    schema::assert_valid(&report);
    let (_dir, page) = write_page(&render::html::render(&report));
    let dom = chromium::dump_dom(&page);

    let t = &report.totals;
    for (key, expected) in [
        ("registries", t.registries),
        ("connections", t.connections),
        ("approved", t.approved),
        ("pending", t.pending),
        ("rejected", t.rejected),
        ("disconnected", t.disconnected),
        ("failed", t.failed),
        ("errors", report.errors.len() as u64),
        ("arm_requests", report.run.arm_requests),
    ] {
        assert_eq!(
            read_count(&dom, "data-total", key),
            expected,
            "data-total={key}"
        );
    }
    for severity in ["high", "medium", "low", "info"] {
        let expected = report
            .needs_attention
            .iter()
            .filter(|a| a.severity == severity)
            .count() as u64;
        assert!(expected > 0, "the sample has a {severity} finding");
        assert_eq!(
            read_count(&dom, "data-attention", severity),
            expected,
            "data-attention={severity}"
        );
    }
    assert_eq!(
        read_count(&dom, "data-attention", "all"),
        report.needs_attention.len() as u64
    );
    for outcome in [
        Outcome::Applied,
        Outcome::DryRun,
        Outcome::Skipped,
        Outcome::Failed,
    ] {
        let name = render::outcome_str(outcome);
        let expected = report
            .actions
            .iter()
            .filter(|a| a.outcome == outcome)
            .count() as u64;
        assert_eq!(
            read_count(&dom, "data-outcome", name),
            expected,
            "data-outcome={name}"
        );
    }

    // Per-registry state counts, in the table and as chart bars.
    let count_re = Regex::new(r#"data-count="(\d+)""#).unwrap();
    for r in &report.registries {
        let row_re = Regex::new(&format!(
            r#"(?s)<tr data-registry="{}">(.*?)</tr>"#,
            regex::escape(&r.id)
        ))
        .unwrap();
        let row = &row_re
            .captures(&dom)
            .unwrap_or_else(|| panic!("no row for {}", r.id))[1];
        let s = &r.by_state;
        for (state, n) in [
            ("approved", s.approved),
            ("pending", s.pending),
            ("rejected", s.rejected),
            ("disconnected", s.disconnected),
            ("other", s.other),
        ] {
            assert_eq!(read_count(row, "data-state", state), n, "{} {state}", r.id);
        }
        let bars_re = Regex::new(&format!(
            r#"(?s)<g data-registry="{}">(.*?)</g>"#,
            regex::escape(&r.id)
        ))
        .unwrap();
        let bars = &bars_re
            .captures(&dom)
            .unwrap_or_else(|| panic!("no chart bars for {}", r.id))[1];
        let bar_total: u64 = count_re
            .captures_iter(bars)
            .map(|c| c[1].parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            bar_total,
            s.approved + s.pending + s.rejected + s.disconnected + s.other,
            "chart of {}",
            r.id
        );
    }

    // Incomplete run is flagged; the sort script ran (its CSP hash matched and it threw nothing).
    assert!(dom.contains(r#"data-complete="false""#));
    assert!(dom.contains("Incomplete run"));
    assert_eq!(
        dom.matches(r#"data-sort-ready="true""#).count(),
        3,
        "every sortable table got its script"
    );
}

#[test]
fn html_lists_findings_most_severe_first_without_javascript() {
    let report = sample();
    let html = render::html::render(&report);
    let ranks: Vec<u32> = Regex::new(r#"<tr data-severity="[a-z]+" data-rank="(\d)">"#)
        .unwrap()
        .captures_iter(&html)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(ranks.len(), report.needs_attention.len());
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "server-side order by severity: {ranks:?}"
    );
    // The report lists them unsorted, so the renderer did the sorting.
    let given: Vec<&str> = report
        .needs_attention
        .iter()
        .map(|a| a.severity.as_str())
        .collect();
    assert_ne!(
        given.first(),
        Some(&"high"),
        "sample should not come pre-sorted: {given:?}"
    );
    // Self-contained: no external reference of any kind.
    for needle in ["src=\"http", "href=\"http", "url(", "@import", "<link"] {
        assert!(
            !html.contains(needle),
            "external reference `{needle}` in the page"
        );
    }
}

#[test]
fn html_escapes_hostile_strings_in_a_real_browser() {
    let report = reports::hostile();
    let html = render::html::render(&report);
    for hostile in [
        HOSTILE_SCRIPT,
        HOSTILE_IMG,
        HOSTILE_TABLE,
        "<i>critical</i>",
    ] {
        assert!(
            !html.contains(hostile),
            "raw hostile string in HTML: {hostile}"
        );
    }
    let (_dir, page) = write_page(&html);
    let dom = chromium::dump_dom(&page);
    // The hostile text mentions data-pwned; only an executed script would set it as an attribute.
    assert!(
        dom.contains("data-pwned"),
        "the hostile text is on the page"
    );
    assert!(
        !dom.contains("data-pwned=\""),
        "an injected script or handler ran"
    );
    let html_tag = Regex::new(r"<html[^>]*>")
        .unwrap()
        .find(&dom)
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(html_tag, r#"<html lang="en">"#);
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(!dom.contains("<img"), "no injected element");
    assert!(!dom.contains("<h1 id=\"injected\""), "no injected element");
    assert!(!dom.contains("<i>"), "no injected element");
    // The hostile text is shown as text, and the page still has its structure and numbers.
    assert!(dom.contains("&lt;script&gt;document.documentElement.setAttribute"));
    assert_eq!(
        read_count(&dom, "data-total", "pending"),
        report.totals.pending
    );
    assert_eq!(
        dom.matches("<table").count(),
        7,
        "no table was closed or opened by report text"
    );
}

/// Table rows of rendered Markdown as cell counts, and every HTML fragment/link it produced.
fn markdown_structure(md: &str) -> (Vec<usize>, Vec<String>, Vec<String>) {
    let mut rows = Vec::new();
    let mut cells = 0;
    let mut html = Vec::new();
    let mut links = Vec::new();
    for event in Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => cells = 0,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableRow) | Event::End(TagEnd::TableHead) => rows.push(cells),
            Event::Html(h) | Event::InlineHtml(h) => html.push(h.to_string()),
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => links.push(dest_url.to_string()),
            _ => {}
        }
    }
    (rows, html, links)
}

#[test]
fn markdown_has_the_sections_and_numbers_and_sorts_by_severity() {
    let report = sample();
    let md = render::markdown::render(&report);
    for section in [
        "## Summary",
        "## Registries",
        "## Needs attention",
        "## Actions taken",
        "## Errors",
    ] {
        assert!(md.contains(section), "missing {section}");
    }
    assert!(md.contains(&format!("| Pending | {} |", report.totals.pending)));
    assert!(md.contains(&format!("| Failed actions | {} |", report.totals.failed)));
    assert!(md.contains("**Incomplete run:**"));
    let section = &md[md.find("## Needs attention").unwrap()..md.find("## Actions taken").unwrap()];
    let order: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| **"))
        .filter_map(|l| l.split("**").next())
        .collect();
    assert_eq!(
        order,
        [
            "high", "high", "high", "medium", "medium", "medium", "low", "info"
        ]
    );
    let (rows, html, _) = markdown_structure(&md);
    assert!(rows.iter().all(|&n| n > 0));
    assert!(
        html.iter().all(|h| h == "<br>"),
        "only the renderer's own line breaks: {html:?}"
    );
}

#[test]
fn markdown_escapes_hostile_strings() {
    let report = reports::hostile();
    let md = render::markdown::render(&report);
    let (rows, html, links) = markdown_structure(&md);
    assert!(
        html.iter().all(|h| h == "<br>"),
        "hostile HTML got through: {html:?}"
    );
    assert_eq!(
        links,
        ["#errors"],
        "only the renderer's own link to the errors section"
    );
    // Every row of a table has as many cells as its header: no `|` from the report split a cell.
    let tables = [2usize, 12, 6, 6, 2];
    let mut expected = Vec::new();
    expected.extend(std::iter::repeat_n(tables[0], 10));
    expected.extend(std::iter::repeat_n(tables[1], 1 + report.registries.len()));
    expected.extend(std::iter::repeat_n(
        tables[2],
        1 + report.needs_attention.len(),
    ));
    expected.extend(std::iter::repeat_n(tables[3], 1 + report.actions.len()));
    expected.extend(std::iter::repeat_n(tables[4], 1 + report.errors.len()));
    assert_eq!(rows, expected);
    assert!(!md.contains("<script") && !md.contains("<img") && !md.contains("</td>"));
    assert!(!md.contains('\u{1b}'));
    // The text itself survives, escaped.
    assert!(md.contains("\\[click\\]\\(javascript:alert\\(1\\)\\)"));
    let plain = pulldown_cmark_text(&md);
    assert!(
        plain.contains(
            HOSTILE_MARKDOWN
                .split('`')
                .next()
                .unwrap()
                .trim_start_matches("| ")
        )
    );
}

fn pulldown_cmark_text(md: &str) -> String {
    let mut text = String::new();
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        if let Event::Text(t) = event {
            text.push_str(&t);
        }
    }
    text
}

#[test]
fn text_summary_and_full_rendering() {
    let report = sample();
    let summary = render::text::summary(&report);
    assert!(
        summary.starts_with("linkguard run 20261125T100000Z-7f3a9c (enforce, timer): INCOMPLETE\n"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "5 registries, 13 connections: 6 approved, 3 pending, 2 rejected, 1 disconnected"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("needs attention: 8 (3 high, 3 medium, 1 low, 1 info)"),
        "{summary}"
    );
    assert!(
        summary.contains("actions: 4 (1 applied, 1 dry-run, 1 skipped, 1 failed); errors: 2"),
        "{summary}"
    );

    let full = render::text::render(&report);
    assert!(full.starts_with(&summary));
    let high = full.find("HIGH").unwrap();
    let info = full.find("INFO").unwrap();
    assert!(high < full.find("MEDIUM").unwrap() && full.find("LOW").unwrap() < info);
    assert!(full.contains("error: ARM 409 Conflict"));
}

#[test]
fn text_escapes_terminal_control_sequences() {
    let report = reports::hostile();
    for out in [
        render::text::summary(&report),
        render::text::render(&report),
    ] {
        assert!(!out.contains('\u{1b}'), "raw ESC in text output");
        assert!(
            !out.contains('\u{202e}'),
            "raw bidi override in text output"
        );
    }
    assert!(render::text::render(&report).contains("\\u{1b}[2J"));
}

#[test]
fn every_format_is_deterministic() {
    let report = sample();
    for format in [Format::Json, Format::Text, Format::Markdown, Format::Html] {
        assert_eq!(
            render::render(&report, format),
            render::render(&report, format),
            "{format}"
        );
    }
    let json: Report = serde_json::from_str(&render::render(&report, Format::Json)).unwrap();
    assert_eq!(json, report);
}
