//! Hosts: the Azure Functions custom handler and the AWS Lambda entry.

pub mod functions;
pub mod lambda;
