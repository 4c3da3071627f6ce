//! Where a fanned-out run keeps its objects in the reports store (extension of DESIGN 6, see
//! docs/fanout.md). The run's own report stays where DESIGN 6 puts every report:
//!
//! ```text
//! runs/YYYY/MM/DD/<run id>.json|.md|.html      the aggregated report (written by the finalizer)
//! latest.json                                  as for every run
//! runs/YYYY/MM/DD/<run id>/manifest.json       run id, expected subscriptions, deadline
//! runs/YYYY/MM/DD/<run id>/subscriptions/<subscription id>.json   one linkguard.report/v1 each
//! runs/YYYY/MM/DD/<run id>/failures/<subscription id>.json        poisoned subscriptions
//! runs/YYYY/MM/DD/<run id>/summary.json        written last: the run is finalized
//! fanout/open/<run id>.json                    runs not finalized yet (removed when they are)
//! ```
//!
//! `YYYY/MM/DD` is the run's start (UTC), so every worker finds the same place from the message.

use time::{OffsetDateTime, UtcOffset};

pub const OPEN_PREFIX: &str = "fanout/open/";

/// The names of one run's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLayout {
    /// `runs/YYYY/MM/DD/<run id>`
    base: String,
    run: String,
}

impl RunLayout {
    /// For a run id already checked with `check_run_id`.
    pub fn new(run: &str, started: OffsetDateTime) -> Self {
        let t = started.to_offset(UtcOffset::UTC);
        Self {
            base: format!(
                "runs/{:04}/{:02}/{:02}/{run}",
                t.year(),
                u8::from(t.month()),
                t.day()
            ),
            run: run.to_string(),
        }
    }

    pub fn manifest(&self) -> String {
        format!("{}/manifest.json", self.base)
    }
    pub fn subscriptions_prefix(&self) -> String {
        format!("{}/subscriptions/", self.base)
    }
    pub fn subscription_report(&self, subscription: &str) -> String {
        format!(
            "{}{}.json",
            self.subscriptions_prefix(),
            subscription.to_ascii_lowercase()
        )
    }
    pub fn failures_prefix(&self) -> String {
        format!("{}/failures/", self.base)
    }
    pub fn failure(&self, subscription: &str) -> String {
        format!(
            "{}{}.json",
            self.failures_prefix(),
            subscription.to_ascii_lowercase()
        )
    }
    pub fn summary(&self) -> String {
        format!("{}/summary.json", self.base)
    }
    /// The aggregated report, where DESIGN 6 puts a run's report.
    pub fn report(&self) -> String {
        format!("{}.json", self.base)
    }
    pub fn open_entry(&self) -> String {
        open_entry(&self.run)
    }
}

pub fn open_entry(run: &str) -> String {
    format!("{OPEN_PREFIX}{run}.json")
}

/// `<prefix><name>.json` -> `<name>` for names listed under `prefix`.
pub fn stem<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    name.strip_prefix(prefix)?
        .strip_suffix(".json")
        .filter(|s| !s.contains('/'))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn names_follow_the_run_start_in_utc() {
        let l = RunLayout::new("r1", datetime!(2026-11-25 23:30:00 -02:00));
        assert_eq!(l.manifest(), "runs/2026/11/26/r1/manifest.json");
        assert_eq!(
            l.subscription_report("AAAA-1"),
            "runs/2026/11/26/r1/subscriptions/aaaa-1.json"
        );
        assert_eq!(l.failure("b"), "runs/2026/11/26/r1/failures/b.json");
        assert_eq!(l.summary(), "runs/2026/11/26/r1/summary.json");
        assert_eq!(l.report(), "runs/2026/11/26/r1.json");
        assert_eq!(l.open_entry(), "fanout/open/r1.json");
        assert_eq!(stem("fanout/open/r1.json", OPEN_PREFIX), Some("r1"));
        assert_eq!(stem("fanout/open/x/r1.json", OPEN_PREFIX), None);
        assert_eq!(stem("other/r1.json", OPEN_PREFIX), None);
    }
}
