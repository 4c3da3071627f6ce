//! `linkguard report render|summary` through `run_cli` (the lead wires it into the binary).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support_report/mod.rs"]
mod support_report;

use std::process::ExitCode;

use linkguard::report::cli::{ReportArgs, ReportCommand, run_cli};
use linkguard::report::render::{self, Format};
use support_report::reports;

fn write_report(dir: &std::path::Path, complete: bool, clean: bool) -> std::path::PathBuf {
    let mut r = reports::sample(
        "run-cli",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
        complete,
    );
    if clean {
        r.needs_attention.clear();
        r.actions
            .retain(|a| a.outcome != linkguard::report::Outcome::Failed);
        r.totals.failed = 0;
    }
    let path = dir.join(if clean { "clean.json" } else { "report.json" });
    std::fs::write(&path, render::to_json(&r)).unwrap();
    path
}

#[test]
fn render_writes_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_report(dir.path(), false, false);
    let report = linkguard::report::cli::read_report(&file).unwrap();
    for format in [Format::Text, Format::Markdown, Format::Html, Format::Json] {
        let output = dir.path().join(format!("out.{format}"));
        let code = run_cli(ReportArgs {
            command: ReportCommand::Render {
                file: file.clone(),
                format,
                output: Some(output.clone()),
            },
        });
        assert_eq!(code, ExitCode::SUCCESS, "{format}");
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            render::render(&report, format),
            "{format}"
        );
    }
}

#[test]
fn summary_exit_codes_say_whether_a_person_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let needs = write_report(dir.path(), false, false);
    let clean = write_report(dir.path(), true, true);
    assert_eq!(
        run_cli(ReportArgs {
            command: ReportCommand::Summary { file: needs }
        }),
        ExitCode::from(1)
    );
    assert_eq!(
        run_cli(ReportArgs {
            command: ReportCommand::Summary { file: clean }
        }),
        ExitCode::SUCCESS
    );
}

#[test]
fn bad_input_exits_2_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"schema":"linkguard.report/v1","run":{"id":"x","trigger":"cron"}}"#,
    )
    .unwrap();
    let err = linkguard::report::cli::read_report(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.json") && err.contains("run.trigger"),
        "{err}"
    );
    assert_eq!(
        run_cli(ReportArgs {
            command: ReportCommand::Summary { file: bad.clone() }
        }),
        ExitCode::from(2)
    );
    let missing = dir.path().join("missing.json");
    assert_eq!(
        run_cli(ReportArgs {
            command: ReportCommand::Render {
                file: missing,
                format: Format::Html,
                output: None
            }
        }),
        ExitCode::from(2)
    );
}
