//! Accumulates what a run saw and did into the `linkguard.report/v1` document.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{ConnectionStatus, Registry};
use crate::plan::{Action, Finding};
use crate::report::{
    ActionRecord, AttentionItem, Outcome, REPORT_SCHEMA, RegistrySummary, Report, RunError,
    RunInfo, RunMode, StateCounts, Totals, Trigger,
};

pub struct ReportBuilder {
    run: RunInfo,
    registries: Vec<RegistrySummary>,
    actions: Vec<ActionRecord>,
    needs_attention: Vec<AttentionItem>,
    errors: Vec<RunError>,
    complete: bool,
}

/// `YYYYMMDDThhmmssZ-xxxxxxxx`: sortable by time, unique by the random suffix.
pub fn new_run_id(now: OffsetDateTime) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        suffix.get(..8).unwrap_or(&suffix)
    )
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

impl ReportBuilder {
    pub fn new(trigger: Trigger, mode: RunMode, policy_sha256: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            run: RunInfo {
                id: new_run_id(now),
                trigger,
                mode,
                started: rfc3339(now),
                finished: String::new(),
                policy_sha256: policy_sha256.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                arm_requests: 0,
            },
            registries: Vec::new(),
            actions: Vec::new(),
            needs_attention: Vec::new(),
            errors: Vec::new(),
            complete: true,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    /// A registry as it stands after this run's actions (statuses already updated by the caller).
    pub fn registry(&mut self, registry: &Registry, statuses: &[ConnectionStatus]) {
        let mut by_state = StateCounts::default();
        for s in statuses {
            match s {
                ConnectionStatus::Approved => by_state.approved += 1,
                ConnectionStatus::Pending => by_state.pending += 1,
                ConnectionStatus::Rejected => by_state.rejected += 1,
                ConnectionStatus::Disconnected => by_state.disconnected += 1,
                ConnectionStatus::Other(_) => by_state.other += 1,
            }
        }
        self.registries.push(RegistrySummary {
            id: registry.id.to_string(),
            sku: registry.sku_name().to_string(),
            public_network_access: registry.public_network_access().to_string(),
            default_action: registry.default_action().to_string(),
            trusted_services: registry.bypass_options()
                == crate::model::BypassOptions::AzureServices,
            ip_rules: registry.ip_rules().len() as u64,
            vnet_rules: registry.vnet_rule_count() as u64,
            connections: statuses.len() as u64,
            by_state,
        });
    }

    pub fn action(&mut self, record: ActionRecord) {
        self.actions.push(record);
    }

    pub fn finding(&mut self, f: &Finding) {
        self.needs_attention.push(AttentionItem {
            registry: f.registry.to_string(),
            connection: f.connection.as_ref().map(ToString::to_string),
            code: f.code.as_str().to_string(),
            severity: f.severity.as_str().to_string(),
            message: f.message.clone(),
            fix: f.fix.clone(),
        });
    }

    /// An error that leaves the run incomplete (a registry or subscription could not be read).
    pub fn incomplete(&mut self, scope: impl Into<String>, message: impl Into<String>) {
        self.complete = false;
        self.error(scope, message);
    }

    /// An error worth reporting that does not make the run incomplete (a failed write).
    pub fn error(&mut self, scope: impl Into<String>, message: impl Into<String>) {
        self.errors.push(RunError {
            scope: scope.into(),
            message: message.into(),
        });
    }

    pub fn finish(mut self, arm_requests: u64) -> Report {
        self.run.finished = rfc3339(OffsetDateTime::now_utc());
        self.run.arm_requests = arm_requests;
        let mut totals = Totals {
            registries: self.registries.len() as u64,
            ..Totals::default()
        };
        for r in &self.registries {
            totals.connections += r.connections;
            totals.approved += r.by_state.approved;
            totals.pending += r.by_state.pending;
            totals.rejected += r.by_state.rejected;
            totals.disconnected += r.by_state.disconnected;
        }
        totals.failed = self
            .actions
            .iter()
            .filter(|a| a.outcome == Outcome::Failed)
            .count() as u64;
        self.needs_attention
            .sort_by_key(|a| severity_rank(&a.severity));
        Report {
            schema: REPORT_SCHEMA.to_string(),
            run: self.run,
            totals,
            registries: self.registries,
            actions: self.actions,
            needs_attention: self.needs_attention,
            errors: self.errors,
            complete: self.complete,
        }
    }
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "high" => 0,
        "medium" => 1,
        "low" => 2,
        _ => 3,
    }
}

/// The ARM verb an action record names.
pub fn action_name(a: Action) -> &'static str {
    a.as_str()
}
