//! Replays every committed fuzz input (fuzz/corpus/<target>/ seeds and fuzz/regressions/<target>/
//! kept crash inputs) through the checks the fuzz targets run (fuzz/src/lib.rs, included here), so
//! the corpora cannot rot and every fixed crash stays a regression test in plain `cargo test`.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod checks;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The targets declared in fuzz/Cargo.toml (`[[bin]] name = "..."`).
fn declared_targets() -> Vec<String> {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let value: toml::Value = toml::from_str(&manifest).unwrap();
    value["bin"]
        .as_array()
        .expect("fuzz/Cargo.toml declares [[bin]] targets")
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect()
}

/// The inputs of `fuzz/<kind>/<target>/`, sorted; READMEs are documentation, not inputs.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    out
}

fn check_of(target: &str) -> checks::Check {
    checks::CHECKS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("fuzz target `{target}` has no check in fuzz/src/lib.rs CHECKS"))
}

/// Runs one check on every input, naming the input that failed.
fn replay(kind: &str, target: &str) -> usize {
    let check = check_of(target);
    let files = inputs(kind, target);
    for path in &files {
        let data = fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!(
                "{} fails the `{target}` fuzz check (the panic is printed above); reproduce with \
                 `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run {target} {}`",
                path.display(),
                path.strip_prefix(fuzz_dir()).unwrap().display()
            );
        }
    }
    files.len()
}

#[test]
fn every_target_has_a_check_a_seed_corpus_and_a_regressions_dir() {
    let declared = declared_targets();
    let mut checked: Vec<&str> = checks::CHECKS.iter().map(|(n, _)| *n).collect();
    let mut targets: Vec<&str> = declared.iter().map(String::as_str).collect();
    checked.sort_unstable();
    targets.sort_unstable();
    assert_eq!(targets, checked, "fuzz/Cargo.toml targets vs CHECKS");
    for t in &declared {
        assert!(
            !inputs("corpus", t).is_empty(),
            "fuzz/corpus/{t}/ holds no seed"
        );
        assert!(
            fuzz_dir().join("regressions").join(t).is_dir(),
            "fuzz/regressions/{t}/ is missing (keep it, with its README, even when empty)"
        );
    }
    // A directory for a target that no longer exists would be silently ignored.
    for kind in ["corpus", "regressions"] {
        for entry in fs::read_dir(fuzz_dir().join(kind)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                assert!(
                    declared.contains(&name),
                    "fuzz/{kind}/{name}/: no such target"
                );
            }
        }
    }
}

#[test]
fn seed_corpora_pass_their_checks() {
    let mut total = 0;
    for t in declared_targets() {
        total += replay("corpus", &t);
    }
    assert!(total > 0);
}

#[test]
fn kept_crash_inputs_pass_their_checks() {
    for t in declared_targets() {
        replay("regressions", &t);
    }
}

/// The checks are not vacuous: the seeds reach the parsers' accepting paths, so a check that
/// returned early on everything would show here.
#[test]
fn seeds_reach_what_the_checks_assert() {
    use linkguard::events::{TopicAllowList, parse_text, select};
    use linkguard::fanout::message::AuditMessage;
    use linkguard::host::functions::invocation::{HttpRequestData, Invocation};
    use linkguard::host::functions::{manual_audit, subscription_audit};

    let mut selected = 0;
    for path in inputs("corpus", "events") {
        let text = fs::read_to_string(&path).unwrap();
        let batch = parse_text(&text).unwrap();
        let topics = TopicAllowList::new(batch.events.iter().filter_map(|e| e.topic.clone()));
        selected += select(&batch.events, &topics).selected.len();
    }
    assert!(selected > 0, "no events seed names a registry or endpoint");

    // Through the invocation: a ManualAudit naming a registry it accepts, and a queue message.
    let (mut registries, mut messages) = (0, 0);
    for path in inputs("corpus", "invocation") {
        let Ok(inv) = Invocation::parse(&fs::read(&path).unwrap()) else {
            continue;
        };
        // A lone input is found under any binding name, so not every `req` is an HTTP request.
        let req = inv.input(manual_audit::BINDING);
        if let Some(Ok(req)) = req.map(|(_, v)| HttpRequestData::from_value(v))
            && let Ok(Some(raw)) = manual_audit::parse_request(&req).map(|b| b.registry)
        {
            manual_audit::parse_registry(&raw).unwrap();
            registries += 1;
        }
        if let Some((_, message)) = inv.input(subscription_audit::BINDING)
            && AuditMessage::from_value(message.clone()).is_ok()
        {
            messages += 1;
        }
    }
    assert!(
        registries >= 2,
        "ManualAudit seeds naming a registry: {registries}"
    );
    assert!(messages >= 1, "queue message seeds that parse: {messages}");
}
