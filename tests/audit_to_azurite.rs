//! A live audit against the sandbox stores its report in Blob Storage (Azurite, pinned, started by
//! the test): every blob reads back byte-identical, the JSON validates against the shipped schema,
//! and an incomplete run is still written (issue 5).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_support;
#[path = "support_azurite/mod.rs"]
mod support_azurite;

use std::time::Duration;

use azure_core::http::Url;
use azure_storage_blob::BlobContainerClient;
use engine_support::support_report;
use engine_support::*;
use linkguard::report::sink::{BlobSinkOptions, ObjectKind, ReportDestination, ReportSink};
use linkguard::report::{Report, render};
use support_azurite::Azurite;

async fn read_blob(container: &BlobContainerClient, name: &str) -> (Vec<u8>, String) {
    let response = container
        .blob_client(name)
        .download(None)
        .await
        .unwrap_or_else(|e| panic!("download {name}: {e}"));
    let content_type = response.properties.content_type.clone().unwrap_or_default();
    (
        response.body.collect().await.unwrap().to_vec(),
        content_type,
    )
}

fn sink(azurite: &Azurite) -> std::sync::Arc<dyn ReportSink> {
    let options = BlobSinkOptions::default().with_retries(
        2,
        Duration::from_millis(100),
        Duration::from_secs(5),
    );
    ReportDestination::parse(&azurite.connection_string())
        .unwrap()
        .into_sink(None, options)
        .unwrap()
}

async fn assert_round_trip(azurite: &Azurite, report: &Report) {
    support_report::schema::assert_valid(report);
    let stored = sink(azurite)
        .store(report)
        .await
        .expect("the report is stored");
    // Read back with an independently signed SAS, not through the sink.
    let sas = azurite.account_sas("b", "sco", "rl");
    let container = BlobContainerClient::new(
        Url::parse(&format!(
            "{}/linkguard-reports?{sas}",
            azurite.blob_endpoint()
        ))
        .unwrap(),
        None,
        None,
    )
    .unwrap();
    for (kind, bytes, content_type) in [
        (
            ObjectKind::Json,
            render::to_json(report),
            "application/json",
        ),
        (
            ObjectKind::Markdown,
            render::markdown::render(report),
            "text/markdown",
        ),
        (ObjectKind::Html, render::html::render(report), "text/html"),
    ] {
        let name = &stored.object(kind).unwrap().name;
        assert!(
            name.starts_with("runs/") && name.contains(&report.run.id),
            "{name}"
        );
        let (got, got_type) = read_blob(&container, name).await;
        assert!(got == bytes.as_bytes(), "{name} is byte-identical");
        assert!(got_type.starts_with(content_type), "{name}: {got_type}");
    }
    let (latest, _) = read_blob(&container, "latest.json").await;
    assert_eq!(
        serde_json::from_slice::<Report>(&latest).unwrap().run.id,
        report.run.id
    );
}

#[tokio::test]
async fn an_audit_report_lands_in_blob_storage_byte_identical() {
    let azurite = Azurite::start();
    let sim = sandbox(estate(5), 2, "").await;
    let result = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await
        .validated();
    assert!(result.report.complete);
    assert_eq!(result.report.actions.len(), 5);
    assert_round_trip(&azurite, &result.report).await;

    // An incomplete run (a subscription linkguard cannot read) is still written.
    let text = format!(
        "version = 1\n[scope]\nsubscriptions = [\"{SUB}\", \"99999999-9999-9999-9999-999999999999\"]\n"
    );
    let incomplete = engine(client(&sim, fast_retry()), policy(&text))
        .audit()
        .await
        .validated();
    assert!(!incomplete.report.complete);
    assert_round_trip(&azurite, &incomplete.report).await;
}
