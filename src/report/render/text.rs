//! Plain text for terminals: a short `summary` (a few lines, printed after a run) and the full
//! `render` (every registry, finding, action and error). Strings from the report are cleaned of
//! control and bidi characters so a hostile id cannot move the cursor or reorder what is shown.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{
    OUTCOMES, SEVERITIES, attention_count, attention_other_count, mode_str, outcome_count,
    outcome_str, severity_label, short_digest, short_name, sorted_attention, trigger_str,
};
use crate::report::model::Report;

/// Escapes control characters (ANSI escapes, newlines...) and bidi overrides as `\u{..}`.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A few lines: the run, completeness, totals, what needs attention, actions and errors.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let run = &report.run;
    let state = if report.complete {
        "complete"
    } else {
        "INCOMPLETE"
    };
    let _ = writeln!(
        out,
        "linkguard run {} ({}, {}): {state}",
        clean(&run.id),
        mode_str(run.mode),
        trigger_str(run.trigger)
    );
    let t = &report.totals;
    let _ = writeln!(
        out,
        "{}, {}: {} approved, {} pending, {} rejected, {} disconnected",
        plural(t.registries, "registry", "registries"),
        plural(t.connections, "connection", "connections"),
        t.approved,
        t.pending,
        t.rejected,
        t.disconnected
    );
    let mut by_severity: Vec<String> = SEVERITIES
        .iter()
        .map(|s| (s, attention_count(report, s)))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let other = attention_other_count(report);
    if other > 0 {
        by_severity.push(format!("{other} other"));
    }
    let _ = write!(out, "needs attention: {}", report.needs_attention.len());
    if !by_severity.is_empty() {
        let _ = write!(out, " ({})", by_severity.join(", "));
    }
    out.push('\n');
    let actions: Vec<String> = OUTCOMES
        .iter()
        .map(|o| (o, outcome_count(report, *o)))
        .filter(|(_, n)| *n > 0)
        .map(|(o, n)| format!("{n} {}", outcome_str(*o)))
        .collect();
    let _ = write!(out, "actions: {}", report.actions.len());
    if !actions.is_empty() {
        let _ = write!(out, " ({})", actions.join(", "));
    }
    let _ = writeln!(out, "; errors: {}", report.errors.len());
    if !report.complete {
        let _ = writeln!(
            out,
            "the run could not read everything: see the errors; the report is partial"
        );
    }
    out
}

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let mut out = summary(report);
    let run = &report.run;
    let _ = writeln!(
        out,
        "started {}  finished {}  policy {}  linkguard {}  ARM requests {}",
        clean(&run.started),
        clean(&run.finished),
        clean(short_digest(&run.policy_sha256, 12)),
        clean(&run.version),
        run.arm_requests
    );

    let _ = writeln!(out, "\nRegistries ({})", report.registries.len());
    if report.registries.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for r in &report.registries {
        let s = &r.by_state;
        let _ = writeln!(
            out,
            "  {}  [{}] public {}, default {}, trusted services {}, {} IP / {} VNet rules",
            clean(short_name(&r.id)),
            clean(&r.sku),
            clean(&r.public_network_access),
            clean(&r.default_action),
            if r.trusted_services {
                "allowed"
            } else {
                "blocked"
            },
            r.ip_rules,
            r.vnet_rules
        );
        let _ = writeln!(
            out,
            "      {}: {} approved, {} pending, {} rejected, {} disconnected, {} other",
            plural(r.connections, "connection", "connections"),
            s.approved,
            s.pending,
            s.rejected,
            s.disconnected,
            s.other
        );
        let _ = writeln!(out, "      {}", clean(&r.id));
    }

    let _ = writeln!(out, "\nNeeds attention ({})", report.needs_attention.len());
    if report.needs_attention.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for item in sorted_attention(report) {
        let _ = write!(
            out,
            "  {:<6}  {}  {}",
            clean(&severity_label(&item.severity).to_ascii_uppercase()),
            clean(&item.code),
            clean(short_name(&item.registry))
        );
        if let Some(c) = &item.connection {
            let _ = write!(out, " / {}", clean(short_name(c)));
        }
        out.push('\n');
        let _ = writeln!(out, "          {}", clean(&item.message));
        let _ = writeln!(out, "          fix: {}", clean(&item.fix));
    }

    let _ = writeln!(out, "\nActions ({})", report.actions.len());
    if report.actions.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for a in &report.actions {
        let _ = write!(
            out,
            "  {:<8} {:<8} {}",
            outcome_str(a.outcome),
            clean(&a.action),
            clean(short_name(&a.registry))
        );
        if let Some(c) = &a.connection {
            let _ = write!(out, " / {}", clean(short_name(c)));
        }
        if let Some(rule) = &a.rule {
            let _ = write!(out, "  rule {}", clean(rule));
        }
        if let Some(e) = &a.error {
            let _ = write!(out, "  error: {}", clean(e));
        }
        out.push('\n');
    }

    let _ = writeln!(out, "\nErrors ({})", report.errors.len());
    if report.errors.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for e in &report.errors {
        let _ = writeln!(out, "  {}: {}", clean(&e.scope), clean(&e.message));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_terminal_control_and_bidi_characters() {
        assert_eq!(clean("acr\u{1b}[2Jx"), "acr\\u{1b}[2Jx");
        assert_eq!(clean("a\nb"), "a\\u{a}b");
        assert_eq!(clean("x\u{202e}y"), "x\\u{202e}y");
        assert!(matches!(clean("plain-acr"), Cow::Borrowed(_)));
    }
}
