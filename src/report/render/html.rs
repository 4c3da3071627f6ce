//! One self-contained HTML page: inline CSS, an inline SVG bar chart of connections by state per
//! registry, tables sorted server-side (needs attention by severity), and a tiny inline script that
//! only adds click-to-sort. Readable without JavaScript; nothing is fetched (a Content-Security-Policy
//! forbids it, and admits only the one script by its hash).
//!
//! Stable hooks for tools and tests: `data-total="<totals field>"`, `data-attention="<severity>"`,
//! `data-outcome="<outcome>"`, `data-state="<state>"` inside `tr[data-registry]`, `main[data-complete]`.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::{
    OUTCOMES, SEVERITIES, attention_count, attention_other_count, mode_str, outcome_count,
    outcome_str, severity_label, severity_rank, short_name, sorted_attention, trigger_str,
};
use crate::report::model::{Report, StateCounts};

/// Escapes text and attribute values (always double-quoted here).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// Connection states in chart order, with their labels.
const STATES: [(&str, &str); 5] = [
    ("approved", "Approved"),
    ("pending", "Pending"),
    ("rejected", "Rejected"),
    ("disconnected", "Disconnected"),
    ("other", "Other"),
];

fn state_count(s: &StateCounts, state: &str) -> u64 {
    match state {
        "approved" => s.approved,
        "pending" => s.pending,
        "rejected" => s.rejected,
        "disconnected" => s.disconnected,
        _ => s.other,
    }
}

fn state_total(s: &StateCounts) -> u64 {
    s.approved + s.pending + s.rejected + s.disconnected + s.other
}

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--card:#f6f8fa;--approved:#1a7f37;--pending:#bf8700;--rejected:#cf222e;--disconnected:#6e7781;--other:#8250df;--high:#cf222e;--medium:#bc4c00;--low:#9a6700;--info:#0969da;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--line:#3d444d;--card:#151b23}}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1280px;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
.meta{color:var(--muted);margin:0}
.meta code{color:var(--fg)}
.banner{border:1px solid var(--rejected);border-left-width:6px;border-radius:6px;padding:8px 12px;margin:16px 0}
.ok{border-color:var(--approved)}
.grid{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.grid table{width:auto;min-width:220px}
table{border-collapse:collapse;width:100%}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
thead th{background:var(--card)}
.num{text-align:right;font-variant-numeric:tabular-nums}
.id{display:block;color:var(--muted);font-size:12px;word-break:break-all}
.sev{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;font-weight:600;background:var(--muted)}
.sev-high{background:var(--high)}.sev-medium{background:var(--medium)}.sev-low{background:var(--low)}.sev-info{background:var(--info)}
.out-failed{color:var(--rejected);font-weight:600}
.fix{color:var(--muted)}
td code{white-space:nowrap}
th[data-sort]{cursor:pointer}
th[aria-sort=ascending]::after{content:" \25B2"}
th[aria-sort=descending]::after{content:" \25BC"}
svg text{fill:var(--fg);font-size:12px}
svg .muted{fill:var(--muted)}
.st-approved{fill:var(--approved);background:var(--approved)}.st-pending{fill:var(--pending);background:var(--pending)}.st-rejected{fill:var(--rejected);background:var(--rejected)}.st-disconnected{fill:var(--disconnected);background:var(--disconnected)}.st-other{fill:var(--other);background:var(--other)}
.legend{display:flex;flex-wrap:wrap;gap:16px;margin:4px 0 0;padding:0;list-style:none;color:var(--muted)}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
footer{margin-top:40px;color:var(--muted);font-size:12px}
"#;

/// Adds click (and Enter) to sort on `th[data-sort]` of `table[data-sortable]`; `rank` sorts on the
/// rows' `data-rank`, anything else on the cell text. Marks each table `data-sort-ready`.
const SCRIPT: &str = r#"(function(){
document.querySelectorAll('table[data-sortable]').forEach(function(table){
var heads=table.tHead.rows[0].cells;
Array.prototype.forEach.call(heads,function(th,col){
if(!th.hasAttribute('data-sort'))return;
th.tabIndex=0;
if(!th.hasAttribute('aria-sort'))th.setAttribute('aria-sort','none');
var sort=function(){
var body=table.tBodies[0];
var asc=th.getAttribute('aria-sort')!=='ascending';
var key=function(row){return th.getAttribute('data-sort')==='rank'?Number(row.getAttribute('data-rank')):row.cells[col].textContent.trim().toLowerCase();};
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a),y=key(b);return (x<y?-1:x>y?1:0)*(asc?1:-1);});
rows.forEach(function(r){body.appendChild(r);});
Array.prototype.forEach.call(heads,function(h){if(h.hasAttribute('data-sort'))h.setAttribute('aria-sort','none');});
th.setAttribute('aria-sort',asc?'ascending':'descending');
};
th.addEventListener('click',sort);
th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();sort();}});
});
table.setAttribute('data-sort-ready','true');
});
})();"#;

/// `sha256-<base64>` of the inline script, for the Content-Security-Policy.
fn script_hash() -> String {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    format!("sha256-{}", azure_core::base64::encode(digest))
}

/// Name in bold with the full id below it.
fn resource_cell(id: &str) -> String {
    let name = short_name(id);
    if name == id {
        format!("<strong>{}</strong>", escape(id))
    } else {
        format!(
            "<strong>{}</strong><span class=\"id\">{}</span>",
            escape(name),
            escape(id)
        )
    }
}

/// Just the name, with the full id on hover: findings and actions rows stay short (registry names
/// are globally unique, and the registries table lists every full id).
fn name_cell(id: &str) -> String {
    format!(
        "<strong title=\"{}\">{}</strong>",
        escape(id),
        escape(short_name(id))
    )
}

fn optional_name_cell(id: Option<&str>) -> String {
    id.map(name_cell).unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn chart(report: &Report, out: &mut String) {
    const WIDTH: f64 = 800.0;
    const LABEL: f64 = 210.0;
    const BAR_AREA: f64 = 520.0;
    const ROW: f64 = 30.0;
    const BAR: f64 = 18.0;
    let max = report
        .registries
        .iter()
        .map(|r| state_total(&r.by_state))
        .max()
        .unwrap_or(0)
        .max(1);
    let height = (report.registries.len().max(1) as f64) * ROW + 6.0;
    let _ = write!(
        out,
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"chart-title\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" style=\"max-width:{WIDTH}px\" preserveAspectRatio=\"xMinYMin meet\"><title id=\"chart-title\">Private endpoint connections by state, per registry</title>"
    );
    if report.registries.is_empty() {
        let _ = write!(
            out,
            "<text x=\"0\" y=\"20\" class=\"muted\">No registry was read.</text>"
        );
    }
    for (i, r) in report.registries.iter().enumerate() {
        let y = i as f64 * ROW + 6.0;
        let total = state_total(&r.by_state);
        let _ = write!(
            out,
            "<g data-registry=\"{}\"><title>{}</title><text x=\"0\" y=\"{:.1}\">{}</text>",
            escape(&r.id),
            escape(&r.id),
            y + BAR - 4.0,
            escape(&truncate(short_name(&r.id), 30))
        );
        let mut x = LABEL;
        for (state, label) in STATES {
            let n = state_count(&r.by_state, state);
            if n == 0 {
                continue;
            }
            let w = n as f64 * BAR_AREA / max as f64;
            let _ = write!(
                out,
                "<rect class=\"st-{state}\" data-state=\"{state}\" data-count=\"{n}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"2\"><title>{label}: {n}</title></rect>"
            );
            x += w;
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"muted\">{}</text></g>",
            x + 6.0,
            y + BAR - 4.0,
            if total == 0 {
                "no connections".to_string()
            } else {
                total.to_string()
            }
        );
    }
    out.push_str("</svg>\n<ul class=\"legend\">");
    for (state, label) in STATES {
        let _ = write!(out, "<li><span class=\"sw st-{state}\"></span>{label}</li>");
    }
    out.push_str("</ul>\n");
}

fn count_row(out: &mut String, label: &str, attr: &str, key: &str, n: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "<tr><th scope=\"row\">{label}</th><td class=\"num\" {attr}=\"{key}\">{n}</td></tr>"
    );
}

pub fn render(report: &Report) -> String {
    let run = &report.run;
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src '{}'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
<meta name=\"generator\" content=\"linkguard {}\">\n<title>linkguard report {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        script_hash(),
        escape(&run.version),
        escape(&run.id)
    );
    let _ = writeln!(
        out,
        "<main data-complete=\"{}\" data-run-id=\"{}\">",
        report.complete,
        escape(&run.id)
    );
    let _ = writeln!(out, "<header><h1>linkguard health report</h1>");
    let _ = writeln!(
        out,
        "<p class=\"meta\">Run <code id=\"run-id\">{}</code> · trigger <span id=\"run-trigger\">{}</span> · mode <span id=\"run-mode\">{}</span> · started <time>{}</time> · finished <time>{}</time></p>",
        escape(&run.id),
        trigger_str(run.trigger),
        mode_str(run.mode),
        escape(&run.started),
        escape(&run.finished)
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\">policy sha256 <code title=\"{}\">{}</code> · linkguard {} · <span data-total=\"arm_requests\">{}</span> ARM requests</p></header>",
        escape(&run.policy_sha256),
        escape(super::short_digest(&run.policy_sha256, 12)),
        escape(&run.version),
        run.arm_requests
    );
    if report.complete {
        let _ = writeln!(
            out,
            "<p class=\"banner ok\" id=\"completeness\">Complete: every governed registry was read.</p>"
        );
    } else {
        let _ = writeln!(
            out,
            "<p class=\"banner\" id=\"completeness\" role=\"alert\"><strong>Incomplete run:</strong> some registries could not be read, so this report is partial. See <a href=\"#errors\">errors</a>.</p>"
        );
    }

    // Summary counts.
    let t = &report.totals;
    out.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"grid\">\n");
    out.push_str("<table id=\"totals\"><caption>Totals</caption><tbody>\n");
    count_row(
        &mut out,
        "Registries",
        "data-total",
        "registries",
        t.registries,
    );
    count_row(
        &mut out,
        "Connections",
        "data-total",
        "connections",
        t.connections,
    );
    count_row(&mut out, "Approved", "data-total", "approved", t.approved);
    count_row(&mut out, "Pending", "data-total", "pending", t.pending);
    count_row(&mut out, "Rejected", "data-total", "rejected", t.rejected);
    count_row(
        &mut out,
        "Disconnected",
        "data-total",
        "disconnected",
        t.disconnected,
    );
    count_row(&mut out, "Failed actions", "data-total", "failed", t.failed);
    out.push_str("</tbody></table>\n");
    out.push_str("<table id=\"attention-counts\"><caption>Needs attention</caption><tbody>\n");
    for s in SEVERITIES {
        count_row(
            &mut out,
            &capitalise(s),
            "data-attention",
            s,
            attention_count(report, s),
        );
    }
    let other = attention_other_count(report);
    if other > 0 {
        count_row(&mut out, "Other", "data-attention", "other", other);
    }
    count_row(
        &mut out,
        "All",
        "data-attention",
        "all",
        report.needs_attention.len(),
    );
    out.push_str("</tbody></table>\n");
    out.push_str("<table id=\"action-counts\"><caption>Actions</caption><tbody>\n");
    for o in OUTCOMES {
        count_row(
            &mut out,
            &capitalise(outcome_str(o)),
            "data-outcome",
            outcome_str(o),
            outcome_count(report, o),
        );
    }
    count_row(
        &mut out,
        "Errors",
        "data-total",
        "errors",
        report.errors.len(),
    );
    out.push_str("</tbody></table>\n</div></section>\n");

    // Chart.
    out.push_str("<section id=\"connections\"><h2>Connections by state</h2>\n");
    chart(report, &mut out);
    out.push_str("</section>\n");

    // Registries.
    out.push_str("<section id=\"registries\"><h2>Registries</h2>\n");
    if report.registries.is_empty() {
        out.push_str("<p>No registry was read.</p>\n");
    } else {
        out.push_str("<table id=\"registry-table\" data-sortable><thead><tr><th data-sort=\"text\">Registry</th><th data-sort=\"text\">SKU</th><th data-sort=\"text\">Public network access</th><th data-sort=\"text\">Default action</th><th data-sort=\"text\">Trusted services</th><th class=\"num\">IP rules</th><th class=\"num\">VNet rules</th>");
        for (_, label) in STATES {
            let _ = write!(out, "<th class=\"num\">{label}</th>");
        }
        out.push_str("</tr></thead><tbody>\n");
        for r in &report.registries {
            let _ = write!(
                out,
                "<tr data-registry=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                escape(&r.id),
                resource_cell(&r.id),
                escape(&r.sku),
                escape(&r.public_network_access),
                escape(&r.default_action),
                if r.trusted_services {
                    "allowed"
                } else {
                    "blocked"
                },
                r.ip_rules,
                r.vnet_rules
            );
            for (state, _) in STATES {
                let _ = write!(
                    out,
                    "<td class=\"num\" data-state=\"{state}\">{}</td>",
                    state_count(&r.by_state, state)
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");

    // Needs attention, most severe first.
    let _ = writeln!(
        out,
        "<section id=\"attention\"><h2>Needs attention ({})</h2>",
        report.needs_attention.len()
    );
    if report.needs_attention.is_empty() {
        out.push_str("<p>Nothing needs attention.</p>\n");
    } else {
        out.push_str("<table id=\"findings\" data-sortable><thead><tr><th data-sort=\"rank\" aria-sort=\"ascending\">Severity</th><th data-sort=\"text\">Code</th><th data-sort=\"text\">Registry</th><th data-sort=\"text\">Connection</th><th>Message and fix</th></tr></thead><tbody>\n");
        for item in sorted_attention(report) {
            let rank = severity_rank(&item.severity);
            let class = SEVERITIES.get(rank).copied().unwrap_or("other");
            let _ = writeln!(
                out,
                "<tr data-severity=\"{}\" data-rank=\"{rank}\"><td><span class=\"sev sev-{class}\">{}</span></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}<div class=\"fix\">Fix: {}</div></td></tr>",
                escape(&item.severity),
                escape(severity_label(&item.severity)),
                escape(&item.code),
                name_cell(&item.registry),
                optional_name_cell(item.connection.as_deref()),
                escape(&item.message),
                escape(&item.fix)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");

    // Actions.
    let _ = writeln!(
        out,
        "<section id=\"actions\"><h2>Actions taken ({})</h2>",
        report.actions.len()
    );
    if report.actions.is_empty() {
        out.push_str("<p>No action was needed.</p>\n");
    } else {
        out.push_str("<table id=\"action-table\" data-sortable><thead><tr><th data-sort=\"text\">Outcome</th><th data-sort=\"text\">Action</th><th data-sort=\"text\">Registry</th><th data-sort=\"text\">Connection</th><th data-sort=\"text\">Rule</th><th>Error</th></tr></thead><tbody>\n");
        for a in &report.actions {
            let outcome = outcome_str(a.outcome);
            let _ = writeln!(
                out,
                "<tr data-outcome=\"{outcome}\"><td class=\"out-{outcome}\">{outcome}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&a.action),
                name_cell(&a.registry),
                optional_name_cell(a.connection.as_deref()),
                a.rule.as_deref().map(escape).unwrap_or_default(),
                a.error.as_deref().map(escape).unwrap_or_default()
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");

    // Errors.
    let _ = writeln!(
        out,
        "<section id=\"errors\"><h2>Errors ({})</h2>",
        report.errors.len()
    );
    if report.errors.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<table id=\"error-table\"><thead><tr><th>Scope</th><th>Message</th></tr></thead><tbody>\n");
        for e in &report.errors {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                resource_cell(&e.scope),
                escape(&e.message)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n</main>\n");
    let _ = writeln!(
        out,
        "<footer>Generated by linkguard {} from a {} document. Self-contained: this page loads nothing.</footer>",
        escape(&run.version),
        escape(&report.schema)
    );
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_text_and_attribute_contexts() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn script_hash_is_base64_sha256() {
        let h = script_hash();
        assert!(h.starts_with("sha256-"));
        assert_eq!(h.len(), "sha256-".len() + 44);
    }
}
