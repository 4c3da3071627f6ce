//! Markdown (GitHub-flavoured: tables): run facts, summary counts, registries, needs attention sorted
//! by severity, actions taken and errors. Every string from the report goes through [`escape`], so
//! ids and messages stay text: no HTML, links, emphasis or extra table cells can come out of them.

use std::fmt::Write as _;

use super::{
    OUTCOMES, SEVERITIES, attention_count, attention_other_count, mode_str, outcome_count,
    outcome_str, severity_label, short_digest, short_name, sorted_attention, trigger_str,
};
use crate::report::model::Report;

/// Escapes a string for inline Markdown (also inside a table cell): HTML-significant characters
/// become entities, Markdown punctuation is backslash-escaped, line breaks become spaces and other
/// control characters are dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '{' | '}' | '|' | '~' | '!' | '#'
            | '+' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn row(out: &mut String, cells: &[String]) {
    out.push('|');
    for cell in cells {
        out.push(' ');
        out.push_str(if cell.is_empty() { " " } else { cell });
        out.push_str(" |");
    }
    out.push('\n');
}

fn header(out: &mut String, cells: &[&str], numeric_from: usize) {
    row(
        out,
        &cells.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
    );
    out.push('|');
    for i in 0..cells.len() {
        out.push_str(if i >= numeric_from {
            " ---: |"
        } else {
            " --- |"
        });
    }
    out.push('\n');
}

/// The registry name with its full id after it, both escaped.
fn resource(id: &str) -> String {
    let name = short_name(id);
    if name == id {
        escape(id)
    } else {
        format!("**{}** <br>{}", escape(name), escape(id))
    }
}

/// Just the name, bold: registry names are globally unique and the registries table has the ids.
fn name(id: &str) -> String {
    format!("**{}**", escape(short_name(id)))
}

fn optional(value: Option<&str>) -> String {
    value.map(escape).unwrap_or_default()
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let run = &report.run;
    let _ = writeln!(out, "# linkguard health report\n");
    let _ = writeln!(
        out,
        "Run **{}** · trigger {} · mode {} · started {} · finished {} · policy sha256 {} · linkguard {} · {} ARM requests\n",
        escape(&run.id),
        trigger_str(run.trigger),
        mode_str(run.mode),
        escape(&run.started),
        escape(&run.finished),
        escape(short_digest(&run.policy_sha256, 12)),
        escape(&run.version),
        run.arm_requests
    );
    if !report.complete {
        let _ = writeln!(
            out,
            "> **Incomplete run:** some registries could not be read, so this report is partial. See [Errors](#errors).\n"
        );
    }

    let t = &report.totals;
    let _ = writeln!(out, "## Summary\n");
    header(&mut out, &["", "count"], 1);
    for (label, n) in [
        ("Registries", t.registries),
        ("Connections", t.connections),
        ("Approved", t.approved),
        ("Pending", t.pending),
        ("Rejected", t.rejected),
        ("Disconnected", t.disconnected),
        ("Failed actions", t.failed),
        ("Needs attention", report.needs_attention.len() as u64),
        ("Errors", report.errors.len() as u64),
    ] {
        row(&mut out, &[label.to_string(), n.to_string()]);
    }
    out.push('\n');

    let _ = writeln!(out, "## Registries\n");
    if report.registries.is_empty() {
        let _ = writeln!(out, "No registry was read.\n");
    } else {
        header(
            &mut out,
            &[
                "Registry",
                "SKU",
                "Public network access",
                "Default action",
                "Trusted services",
                "IP rules",
                "VNet rules",
                "Approved",
                "Pending",
                "Rejected",
                "Disconnected",
                "Other",
            ],
            5,
        );
        for r in &report.registries {
            let s = &r.by_state;
            row(
                &mut out,
                &[
                    resource(&r.id),
                    escape(&r.sku),
                    escape(&r.public_network_access),
                    escape(&r.default_action),
                    (if r.trusted_services {
                        "allowed"
                    } else {
                        "blocked"
                    })
                    .to_string(),
                    r.ip_rules.to_string(),
                    r.vnet_rules.to_string(),
                    s.approved.to_string(),
                    s.pending.to_string(),
                    s.rejected.to_string(),
                    s.disconnected.to_string(),
                    s.other.to_string(),
                ],
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Needs attention\n");
    if report.needs_attention.is_empty() {
        let _ = writeln!(out, "Nothing needs attention.\n");
    } else {
        let mut counts: Vec<String> = SEVERITIES
            .iter()
            .map(|s| format!("{} {s}", attention_count(report, s)))
            .collect();
        let other = attention_other_count(report);
        if other > 0 {
            counts.push(format!("{other} other"));
        }
        let _ = writeln!(
            out,
            "{} in all: {}.\n",
            report.needs_attention.len(),
            counts.join(", ")
        );
        header(
            &mut out,
            &[
                "Severity",
                "Code",
                "Registry",
                "Connection",
                "Message",
                "Fix",
            ],
            6,
        );
        for item in sorted_attention(report) {
            row(
                &mut out,
                &[
                    format!("**{}**", escape(severity_label(&item.severity))),
                    escape(&item.code),
                    name(&item.registry),
                    item.connection.as_deref().map(name).unwrap_or_default(),
                    escape(&item.message),
                    escape(&item.fix),
                ],
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Actions taken\n");
    if report.actions.is_empty() {
        let _ = writeln!(out, "No action was needed.\n");
    } else {
        let counts: Vec<String> = OUTCOMES
            .iter()
            .map(|o| format!("{} {}", outcome_count(report, *o), outcome_str(*o)))
            .collect();
        let _ = writeln!(
            out,
            "{} in all: {}.\n",
            report.actions.len(),
            counts.join(", ")
        );
        header(
            &mut out,
            &[
                "Outcome",
                "Action",
                "Registry",
                "Connection",
                "Rule",
                "Error",
            ],
            6,
        );
        for a in &report.actions {
            row(
                &mut out,
                &[
                    outcome_str(a.outcome).to_string(),
                    escape(&a.action),
                    name(&a.registry),
                    a.connection.as_deref().map(name).unwrap_or_default(),
                    optional(a.rule.as_deref()),
                    optional(a.error.as_deref()),
                ],
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Errors\n");
    if report.errors.is_empty() {
        let _ = writeln!(out, "None.");
    } else {
        header(&mut out, &["Scope", "Message"], 2);
        for e in &report.errors {
            row(&mut out, &[escape(&e.scope), escape(&e.message)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_html_links_emphasis_and_cell_breaks() {
        let e = escape("<script>x</script> | *a* [l](javascript:x) `c`\nnext");
        assert!(!e.contains('<') && !e.contains('>'));
        assert!(e.contains("\\|"));
        assert!(e.contains("\\*a\\*"));
        assert!(e.contains("\\[l\\]\\(javascript:x\\)"));
        assert!(e.contains("\\`c\\`"));
        assert!(!e.contains('\n'));
    }

    #[test]
    fn escape_keeps_arm_ids_readable() {
        let id = "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/rg-prod/providers/Microsoft.ContainerRegistry/registries/acrprod";
        assert_eq!(escape(id), id);
    }
}
