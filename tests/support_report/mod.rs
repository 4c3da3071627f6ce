//! Shared by the report tests (and usable by any test that produces reports):
//! - `schema::validate(&Value)`: checks a document against `schemas/report.schema.json`;
//! - `reports`: realistic `Report` values (several registries, every outcome and severity, errors,
//!   an incomplete run) and a hostile one;
//! - `chromium::dump_dom(path)`: renders a page in headless Chromium and returns the DOM.
//!
//! Use from a test file: `#[path = "support_report/mod.rs"] mod support_report;`
#![allow(dead_code)]

pub mod chromium;
pub mod reports;
pub mod schema;
