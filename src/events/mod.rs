//! Event Grid and CloudEvents parsing and selection (DESIGN 7.2): pure, shared by every host, so no
//! host reads events its own way.
//!
//! ```text
//! parse_text / parse_value  ->  ParsedBatch { events, malformed }
//! select(&events, &topics)  ->  Selection { registries, endpoints, ignored, event_ids }
//! validation_code(&events)  ->  Some(code) for a subscription-validation delivery (raw webhooks)
//! ```

mod parse;
mod select;

pub use parse::{
    Event, EventsError, Malformed, ParsedBatch, ResourceData, Schema, kind, parse_text,
    parse_value, unwrap_json_text,
};
pub use select::{
    Ignored, Selected, Selection, Target, TopicAllowList, VALIDATION_EVENT_TYPE, classify, select,
    validation_code, validation_response,
};

#[cfg(test)]
mod tests;
