//! The ARM-compatible sandbox (`linkguard sim`): serves the ARM operations linkguard uses over an
//! estate file, with ARM's shapes (2025-11-01), paging, long-running operations that really go
//! through `InProgress`, api-version and bearer checks, ARM error bodies, and seeded fault
//! injection. Tests drive it in-process through [`Sandbox::start`] and the [`RunningSandbox`]
//! handle, or over HTTP through the `/_sim/` routes (see [`admin`]).
//!
//! ```no_run
//! # async fn demo(estate: serde_json::Value) -> Result<(), linkguard::sim::SimError> {
//! use linkguard::sim::{Sandbox, SimOptions, FaultSpec};
//! let sim = Sandbox::start(estate, SimOptions { tls: true, faults: FaultSpec::parse("seed=7,error503=0.1")?, ..Default::default() }).await?;
//! println!("{}", sim.ready_line());
//! assert_eq!(sim.requests().total, 0);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod cli;
mod error;
pub mod faults;
mod handlers;
mod log;
pub mod routing;
mod server;
mod state;
mod tls;

pub use cli::{SimArgs, run_cli};
pub use error::{ArmError, SimError};
pub use faults::{FaultSpec, FaultSpecError};
pub use log::{RequestRecord, RequestStats};
pub use server::{RunningSandbox, Sandbox, SimOptions, TokenCheck};
pub use state::NewConnection;
pub use tls::CA_FILE;
