//! The in-process sandbox behind `serve` for the invocation figures (zero injected latency,
//! long-running operations that finish on the first poll with `Retry-After: 0`), and the prepared
//! invocations: each approval gets a fresh Pending connection on its own registry.

use std::sync::Arc;

use linkguard::sim::{NewConnection, RunningSandbox, Sandbox, SimOptions};

use crate::error::{BenchError, Result};
use crate::estate::{SPOKE_SUBSCRIPTION, Templates, endpoint_id, registry_id};
use crate::load::Prepared;
use crate::payloads::Payloads;
use crate::procs::BenchEnv;

pub struct Rig {
    pub sandbox: RunningSandbox,
    payloads: Payloads,
    registries: usize,
    batch: usize,
}

impl Rig {
    pub async fn start(env: &BenchEnv, registries: usize, per_registry: usize) -> Result<Self> {
        let templates = Templates::load(&env.repo)?;
        let options = SimOptions {
            lro_polls: 0,
            retry_after_secs: 0,
            ..SimOptions::default()
        };
        let sandbox = Sandbox::start(templates.estate(registries, per_registry), options)
            .await
            .map_err(|e| BenchError::msg(format!("in-process sandbox: {e}")))?;
        Ok(Self {
            sandbox,
            payloads: Payloads::load(&env.fixtures, &env.repo)?,
            registries,
            batch: 0,
        })
    }

    pub fn endpoint(&self) -> &str {
        self.sandbox.endpoint()
    }

    pub fn filtered(&self, n: usize) -> Arc<Vec<Prepared>> {
        Arc::new((0..n).map(|i| self.payloads.filtered(i)).collect())
    }

    /// Restores the estate, adds one Pending connection (approved by rule `spoke-networks`) to each
    /// of the first `n` registries, and returns the events that name them.
    pub fn approvals(&mut self, n: usize) -> Result<Arc<Vec<Prepared>>> {
        if n > self.registries {
            return Err(BenchError::msg(format!(
                "{n} approvals need {n} registries; the estate has {}",
                self.registries
            )));
        }
        self.batch += 1;
        self.sandbox.reset_estate();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let pe = format!("pe-new-{}-{i}", self.batch);
            let conn = self
                .sandbox
                .add_connection(
                    &registry_id(i),
                    NewConnection {
                        name: Some(format!("{pe}.{:08x}", i)),
                        private_endpoint: endpoint_id(SPOKE_SUBSCRIPTION, "net-spoke-1", &pe),
                        status: None,
                        description: Some("new workload, please approve".into()),
                    },
                )
                .map_err(|e| BenchError::msg(format!("adding a Pending connection: {e}")))?;
            let id = conn
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| BenchError::msg("the sandbox returned a connection without id"))?;
            out.push(self.payloads.connection_written(id));
        }
        Ok(Arc::new(out))
    }

    /// Connections the sandbox now holds as Approved among the `n` just added.
    pub fn approved_count(&self, n: usize) -> usize {
        (0..n)
            .filter_map(|i| self.sandbox.registry_json(&registry_id(i)))
            .map(|r| {
                r.pointer("/properties/privateEndpointConnections")
                    .and_then(|v| v.as_array())
                    .map_or(0, |cs| {
                        cs.iter()
                            .filter(|c| {
                                c.get("name").and_then(|v| v.as_str()).is_some_and(|n| {
                                    n.starts_with(&format!("pe-new-{}-", self.batch))
                                }) && c
                                    .pointer("/properties/privateLinkServiceConnectionState/status")
                                    .and_then(|v| v.as_str())
                                    == Some("Approved")
                            })
                            .count()
                    })
            })
            .sum()
    }
}
