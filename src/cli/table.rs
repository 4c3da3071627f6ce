//! Plain-text tables for people at a terminal.

use crate::plan::Plan;

/// Renders rows as left-aligned columns separated by two spaces.
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// The plan as a decisions table followed by findings.
pub fn plan_text(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .decisions
        .iter()
        .map(|d| {
            vec![
                d.registry.name().to_string(),
                d.connection.name().to_string(),
                d.status.to_string(),
                d.action.as_str().to_string(),
                d.rule.clone().unwrap_or_else(|| "-".into()),
                d.reason.clone(),
            ]
        })
        .collect();
    let mut out = format!("Decisions ({})\n", plan.decisions.len());
    out.push_str(&columns(
        &[
            "REGISTRY",
            "CONNECTION",
            "STATUS",
            "ACTION",
            "RULE",
            "REASON",
        ],
        &rows,
    ));
    let mut findings = plan.findings.clone();
    findings.sort_by_key(|f| f.severity);
    out.push_str(&format!("\nFindings ({})\n", findings.len()));
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let target = match &f.connection {
                Some(c) => format!("{}/{}", f.registry.name(), c.name()),
                None => f.registry.name().to_string(),
            };
            vec![
                f.severity.as_str().to_string(),
                f.code.as_str().to_string(),
                target,
                format!("{} Fix: {}", f.message, f.fix),
            ]
        })
        .collect();
    out.push_str(&columns(&["SEVERITY", "CODE", "WHERE", "MESSAGE"], &rows));
    if !plan.remediations.is_empty() {
        out.push_str(&format!("\nRemediations ({})\n", plan.remediations.len()));
        for r in &plan.remediations {
            let body = serde_json::to_string(&r.patch).unwrap_or_default();
            out.push_str(&format!("{}  PATCH {body}\n", r.registry.name()));
        }
    }
    out
}
