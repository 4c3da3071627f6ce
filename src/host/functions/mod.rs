//! The Azure Functions custom handler (`linkguard serve`, DESIGN 7.1).
//!
//! The Functions host starts the binary, probes `GET /` until it answers, then posts each
//! invocation to `POST /<FunctionName>` as `{"Data", "Metadata"}` and reads back
//! `{"Outputs", "Logs", "ReturnValue"}`. Functions: `ConnectionEvents` (Event Grid), `ScheduledAudit`
//! (timer), `ManualAudit` (HTTP). `POST /webhook/eventgrid` takes raw Event Grid deliveries when
//! `serve` is reached without the host (needs `LINKGUARD_WEBHOOK_SECRET`).

pub mod cli;
pub mod connection_events;
mod dedupe;
pub mod invocation;
pub mod log;
pub mod manual_audit;
pub mod response;
pub mod scheduled_audit;
pub mod server;
pub mod state;
pub mod subscription_audit;
mod summary;
pub mod webhook;

pub use cli::{ServeArgs, run_cli, run_with};
pub use dedupe::Dedupe;
pub use server::{FUNCTIONS, MAX_BODY_BYTES, router, serve};
pub use state::{
    AppState, HandlerOptions, PolicyFailure, PolicySource, ReportStore, ReportStoreError, SinkStore,
};
