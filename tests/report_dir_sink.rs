//! The local-directory sink: DESIGN 6 layout, atomic writes (no temporary file left), no overwrite
//! of a stored run, `latest.json` holding the newest run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support_report/mod.rs"]
mod support_report;

use std::path::Path;

use linkguard::report::sink::{
    DirSink, ObjectKind, ReportDestination, ReportSink, SinkError, WriteOutcome,
};
use linkguard::report::{Report, render};
use support_report::{reports, schema};

fn report(id: &str, started: &str, finished: &str) -> Report {
    reports::sample(id, started, finished, true)
}

/// Every file under `root`, relative, sorted.
fn files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn layout_content_and_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirSink::new(dir.path());
    // Started just before midnight in UTC+02:00: the day folder is the UTC date.
    let r = report(
        "20261124T220000Z-a1",
        "2026-11-25T00:00:00+02:00",
        "2026-11-24T22:03:00Z",
    );
    let stored = sink.store(&r).await.unwrap();

    assert_eq!(
        files(dir.path()),
        [
            "latest.json",
            "runs/2026/11/24/20261124T220000Z-a1.html",
            "runs/2026/11/24/20261124T220000Z-a1.json",
            "runs/2026/11/24/20261124T220000Z-a1.md",
        ]
    );
    let kinds: Vec<ObjectKind> = stored.objects.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            ObjectKind::Json,
            ObjectKind::Markdown,
            ObjectKind::Html,
            ObjectKind::Latest
        ],
        "latest written last"
    );
    assert!(
        stored
            .objects
            .iter()
            .all(|o| o.outcome == WriteOutcome::Created)
    );

    let json = std::fs::read_to_string(stored.location(ObjectKind::Json).unwrap()).unwrap();
    assert_eq!(json, render::to_json(&r));
    schema::validate(&serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("latest.json")).unwrap(),
        json
    );
    assert_eq!(
        std::fs::read_to_string(stored.location(ObjectKind::Markdown).unwrap()).unwrap(),
        render::markdown::render(&r)
    );
    assert_eq!(
        std::fs::read_to_string(stored.location(ObjectKind::Html).unwrap()).unwrap(),
        render::html::render(&r)
    );
}

#[tokio::test]
async fn a_stored_run_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirSink::new(dir.path());
    let first = report(
        "run-same-id",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
    );
    sink.store(&first).await.unwrap();
    let json_path = dir.path().join("runs/2026/11/25/run-same-id.json");
    let before = std::fs::read(&json_path).unwrap();

    // Same run stored again (a retried invocation): recognised, nothing rewritten.
    let again = sink.store(&first).await.unwrap();
    assert!(
        again.objects[..3]
            .iter()
            .all(|o| o.outcome == WriteOutcome::AlreadyStored),
        "{:?}",
        again.objects
    );

    // A different report under the same run id: refused, the stored one intact.
    let mut other = first.clone();
    other.totals.pending += 1;
    let err = sink.store(&other).await.unwrap_err();
    assert!(matches!(err, SinkError::AlreadyExists { .. }), "{err:?}");
    assert!(
        err.to_string().contains("run-same-id.json")
            && err.to_string().contains("never overwritten"),
        "{err}"
    );
    assert_eq!(std::fs::read(&json_path).unwrap(), before);
    assert_eq!(
        files(dir.path()).len(),
        4,
        "no temporary file left: {:?}",
        files(dir.path())
    );
}

#[tokio::test]
async fn two_runs_in_the_same_second_keep_both_and_latest_is_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirSink::new(dir.path());
    let a = report(
        "20261125T100000Z-aaaa",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:00:30.100Z",
    );
    let b = report(
        "20261125T100000Z-bbbb",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:00:30.200Z",
    );
    sink.store(&a).await.unwrap();
    sink.store(&b).await.unwrap();
    let latest: Report =
        serde_json::from_slice(&std::fs::read(dir.path().join("latest.json")).unwrap()).unwrap();
    assert_eq!(latest.run.id, b.run.id);

    // An older run stored late (a platform retry) keeps latest.json on the newer run.
    let old = report(
        "20261125T095500Z-cccc",
        "2026-11-25T09:55:00Z",
        "2026-11-25T09:56:00Z",
    );
    let stored = sink.store(&old).await.unwrap();
    assert_eq!(
        stored.object(ObjectKind::Latest).unwrap().outcome,
        WriteOutcome::KeptNewer {
            run_id: b.run.id.clone()
        }
    );
    let latest: Report =
        serde_json::from_slice(&std::fs::read(dir.path().join("latest.json")).unwrap()).unwrap();
    assert_eq!(latest.run.id, b.run.id);
    assert_eq!(
        files(dir.path()).len(),
        1 + 3 * 3,
        "{:?}",
        files(dir.path())
    );
}

#[tokio::test]
async fn incomplete_reports_are_written_and_bad_run_ids_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ReportDestination::parse(dir.path().to_str().unwrap())
        .unwrap()
        .into_sink(None, Default::default())
        .unwrap();
    let partial = reports::sample(
        "run-partial",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
        false,
    );
    let stored = sink.store(&partial).await.unwrap();
    let json: Report =
        serde_json::from_slice(&std::fs::read(stored.location(ObjectKind::Json).unwrap()).unwrap())
            .unwrap();
    assert!(!json.complete);

    let mut evil = partial.clone();
    evil.run.id = "../../outside".into();
    let err = sink.store(&evil).await.unwrap_err();
    assert!(err.to_string().contains("run.id"), "{err}");
    assert!(!dir.path().parent().unwrap().join("outside.json").exists());
}

#[tokio::test]
async fn a_path_that_cannot_be_written_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("reports");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("runs"), b"a file where the runs folder should be").unwrap();
    let err = DirSink::new(&root)
        .store(&report(
            "run-x",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:01:00Z",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("runs"), "{err}");
}

#[tokio::test]
async fn concurrent_stores_leave_the_newest_run_in_latest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = std::sync::Arc::new(DirSink::new(dir.path()));
    let runs: Vec<Report> = (0..8)
        .map(|i| {
            report(
                &format!("run-concurrent-{i}"),
                "2026-11-25T10:00:00Z",
                &format!("2026-11-25T10:01:0{i}Z"),
            )
        })
        .collect();
    let tasks: Vec<_> = runs
        .iter()
        .rev()
        .cloned()
        .map(|r| {
            let sink = sink.clone();
            tokio::spawn(async move { sink.store(&r).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let latest: Report =
        serde_json::from_slice(&std::fs::read(dir.path().join("latest.json")).unwrap()).unwrap();
    assert_eq!(latest.run.id, "run-concurrent-7");
    assert_eq!(
        files(dir.path()).len(),
        1 + 8 * 3,
        "{:?}",
        files(dir.path())
    );
}
