//! The end of a fanned-out run: the subscription reports aggregated into one
//! `linkguard.report/v1` document (stored where DESIGN 6 stores a run's report), and a
//! `linkguard.fanout.summary/v1` document that lists, explicitly, which subscriptions reported,
//! which were poisoned and which never reported.
//!
//! Pure and deterministic: the same manifest and stored documents give the same bytes, so two
//! finalizers racing each other write identical objects (the store's create-only writes then keep
//! one).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::documents::{FailureMarker, Manifest};
use crate::report::{REPORT_SCHEMA, Report, RunInfo, Totals};

pub const SUMMARY_SCHEMA: &str = "linkguard.fanout.summary/v1";

/// What became of one expected subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscriptionResult {
    Reported(Box<Report>),
    /// Its stored report exists but cannot be read.
    Unreadable(String),
    Poisoned(Box<FailureMarker>),
    Missing,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonedSubscription {
    pub subscription: String,
    pub deliveries: u32,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOutSummary {
    pub schema: String,
    pub run: String,
    pub started: String,
    pub finished: String,
    pub deadline: String,
    /// `all-accounted` (every subscription reported or was poisoned) or `deadline` (some never
    /// reported; the run was closed after its deadline).
    pub closed: String,
    pub queue: String,
    pub poison_queue: String,
    pub expected: usize,
    pub reported: Vec<String>,
    pub poisoned: Vec<PoisonedSubscription>,
    /// Never reported: no report, no failure recorded (still queued, expired, or its worker died).
    pub missing: Vec<String>,
    /// Name of the aggregated report in the store.
    pub report: String,
    pub totals: Totals,
    pub complete: bool,
}

fn later(a: Option<OffsetDateTime>, b: &str) -> Option<OffsetDateTime> {
    let b = OffsetDateTime::parse(b, &Rfc3339).ok();
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    crate::engine::report_builder::rfc3339(t.to_offset(time::UtcOffset::UTC))
}

/// Aggregates the results of every subscription the manifest expected (`results` keyed by
/// subscription id as in the manifest; absent means missing). `report_name` is where the
/// aggregated report is stored.
pub fn aggregate(
    manifest: &Manifest,
    results: &BTreeMap<String, SubscriptionResult>,
    report_name: &str,
) -> (Report, FanOutSummary) {
    let mut totals = Totals::default();
    let mut registries = Vec::new();
    let mut actions = Vec::new();
    let mut needs_attention = Vec::new();
    let mut errors = Vec::new();
    let mut complete = true;
    let mut arm_requests = 0u64;
    let mut finished: Option<OffsetDateTime> = None;
    let mut reported = Vec::new();
    let mut poisoned = Vec::new();
    let mut missing = Vec::new();

    for sub in &manifest.subscriptions {
        let scope = format!("/subscriptions/{sub}");
        match results.get(sub).unwrap_or(&SubscriptionResult::Missing) {
            SubscriptionResult::Reported(r) => {
                reported.push(sub.clone());
                totals.registries += r.totals.registries;
                totals.connections += r.totals.connections;
                totals.approved += r.totals.approved;
                totals.pending += r.totals.pending;
                totals.rejected += r.totals.rejected;
                totals.disconnected += r.totals.disconnected;
                totals.failed += r.totals.failed;
                arm_requests += r.run.arm_requests;
                complete &= r.complete;
                finished = later(finished, &r.run.finished);
                registries.extend(r.registries.iter().cloned());
                actions.extend(r.actions.iter().cloned());
                needs_attention.extend(r.needs_attention.iter().cloned());
                errors.extend(r.errors.iter().cloned());
            }
            SubscriptionResult::Unreadable(why) => {
                reported.push(sub.clone());
                complete = false;
                errors.push(crate::report::RunError {
                    scope,
                    message: format!("its stored subscription report cannot be read: {why}"),
                });
            }
            SubscriptionResult::Poisoned(m) => {
                complete = false;
                finished = later(finished, &m.at);
                errors.push(crate::report::RunError {
                    scope,
                    message: format!(
                        "not audited: its audit failed on all {} deliveries and the message was moved to the poison queue `{}`. Last error: {}",
                        m.deliveries, m.poison_queue, m.error
                    ),
                });
                poisoned.push(PoisonedSubscription {
                    subscription: sub.clone(),
                    deliveries: m.deliveries,
                    error: m.error.clone(),
                });
            }
            SubscriptionResult::Missing => {
                complete = false;
                errors.push(crate::report::RunError {
                    scope,
                    message: format!(
                        "not audited: no report by the deadline {} (its message was still queued, expired, or its worker stopped); the next run audits it again",
                        manifest.deadline
                    ),
                });
                missing.push(sub.clone());
            }
        }
    }
    if !missing.is_empty() {
        finished = later(finished, &manifest.deadline);
    }
    let finished = finished
        .map(rfc3339)
        .unwrap_or_else(|| manifest.started.clone());
    // Like a single run's report: most severe first (stable, so subscription order stays within).
    needs_attention.sort_by_key(|a| match a.severity.as_str() {
        "high" => 0,
        "medium" => 1,
        "low" => 2,
        _ => 3,
    });
    let report = Report {
        schema: REPORT_SCHEMA.to_string(),
        run: RunInfo {
            id: manifest.run.clone(),
            trigger: manifest.trigger,
            mode: manifest.mode,
            started: manifest.started.clone(),
            finished: finished.clone(),
            policy_sha256: manifest.policy_sha256.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            arm_requests,
        },
        totals: totals.clone(),
        registries,
        actions,
        needs_attention,
        errors,
        complete,
    };
    let summary = FanOutSummary {
        schema: SUMMARY_SCHEMA.to_string(),
        run: manifest.run.clone(),
        started: manifest.started.clone(),
        finished,
        deadline: manifest.deadline.clone(),
        closed: if missing.is_empty() {
            "all-accounted"
        } else {
            "deadline"
        }
        .to_string(),
        queue: manifest.queue.clone(),
        poison_queue: manifest.poison_queue.clone(),
        expected: manifest.subscriptions.len(),
        reported,
        poisoned,
        missing,
        report: report_name.to_string(),
        totals,
        complete,
    };
    (report, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::report_builder::ReportBuilder;
    use crate::report::{RunMode, Trigger};

    fn manifest(subs: &[&str]) -> Manifest {
        Manifest {
            schema: super::super::documents::MANIFEST_SCHEMA.into(),
            run: "r1".into(),
            trigger: Trigger::Timer,
            mode: RunMode::Enforce,
            started: "2026-11-25T10:00:00Z".into(),
            deadline: "2026-11-25T12:00:00Z".into(),
            policy_sha256: "abc".into(),
            queue: "linkguard-audits".into(),
            poison_queue: "linkguard-audits-poison".into(),
            subscriptions: subs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn report(finished: &str, arm: u64) -> Box<Report> {
        let mut r = ReportBuilder::new(Trigger::Timer, RunMode::Enforce, "abc").finish(arm);
        r.run.finished = finished.into();
        r.totals.registries = 2;
        r.totals.connections = 3;
        Box::new(r)
    }

    #[test]
    fn every_subscription_is_accounted_for_and_the_result_is_deterministic() {
        let m = manifest(&["a", "b", "c", "d"]);
        let mut results = BTreeMap::new();
        results.insert(
            "a".to_string(),
            SubscriptionResult::Reported(report("2026-11-25T10:05:00Z", 7)),
        );
        results.insert(
            "b".to_string(),
            SubscriptionResult::Reported(report("2026-11-25T10:09:00+00:00", 5)),
        );
        results.insert(
            "c".to_string(),
            SubscriptionResult::Poisoned(Box::new(FailureMarker {
                schema: super::super::documents::FAILURE_SCHEMA.into(),
                run: "r1".into(),
                subscription: "c".into(),
                deliveries: 5,
                poison_queue: "linkguard-audits-poison".into(),
                error: "AuthorizationFailed".into(),
                at: "2026-11-25T10:07:00Z".into(),
                report: None,
            })),
        );
        let (r, s) = aggregate(&m, &results, "runs/2026/11/25/r1.json");
        assert_eq!(r.run.id, "r1");
        assert_eq!(r.totals.registries, 4);
        assert_eq!(r.totals.connections, 6);
        assert_eq!(r.run.arm_requests, 12);
        assert!(!r.complete);
        // d never reported: the run closed at its deadline.
        assert_eq!(r.run.finished, "2026-11-25T12:00:00Z");
        assert_eq!(s.reported, ["a", "b"]);
        assert_eq!(s.missing, ["d"]);
        assert_eq!(s.poisoned.len(), 1);
        assert_eq!(s.closed, "deadline");
        let scopes: Vec<_> = r.errors.iter().map(|e| e.scope.as_str()).collect();
        assert_eq!(scopes, ["/subscriptions/c", "/subscriptions/d"]);
        assert!(
            r.errors[0]
                .message
                .contains("poison queue `linkguard-audits-poison`")
        );
        assert_eq!(aggregate(&m, &results, "runs/2026/11/25/r1.json"), (r, s));

        results.insert(
            "d".to_string(),
            SubscriptionResult::Reported(report("2026-11-25T10:03:00Z", 1)),
        );
        let (r, s) = aggregate(&m, &results, "x");
        assert_eq!(
            r.run.finished, "2026-11-25T10:09:00Z",
            "latest subscription or marker"
        );
        assert_eq!(s.closed, "all-accounted");
        assert!(
            !s.complete,
            "a poisoned subscription leaves the run incomplete"
        );
    }

    #[test]
    fn an_empty_run_is_complete_and_finishes_when_it_started() {
        let (r, s) = aggregate(&manifest(&[]), &BTreeMap::new(), "x");
        assert!(r.complete && s.complete);
        assert_eq!(r.run.finished, r.run.started);
        assert_eq!(s.expected, 0);
    }
}
