//! The AWS Lambda host (`linkguard lambda`, DESIGN 7.3), on `lambda_runtime` with the event shapes
//! of `aws_lambda_events`.
//!
//! One function takes every kind of invocation, told apart by shape ([`invocation`]):
//! - a Function URL / API Gateway v2 HTTP request: Event Grid (or CloudEvents) pushing to the URL as
//!   a webhook. The shared secret (`LINKGUARD_WEBHOOK_SECRET`, as `?code=` or `x-linkguard-secret`)
//!   is checked before anything else; then the handshakes, then the events, processed exactly as the
//!   Functions host processes them ([`crate::host::functions::connection_events::process`]).
//! - an EventBridge "Scheduled Event" (EventBridge rule or Scheduler): the audit.
//! - `{"action": "audit" | "evaluate", ...}` from an operator (`aws lambda invoke`).
//!
//! Status codes follow Event Grid's retry rules (DESIGN 7.2): 5xx for anything transient, 400 only
//! for a body that can never be processed, 200 for events that are not for linkguard.

pub mod auth;
pub mod cli;
pub mod error;
pub mod handler;
pub mod http;
pub mod invocation;
pub mod operator;
pub mod run;
pub mod secrets;
pub mod state;
pub mod webhook;

pub use cli::{LambdaArgs, run_cli, runtime_api_present};
pub use error::HandlerError;
pub use handler::handle;
pub use state::LambdaState;
