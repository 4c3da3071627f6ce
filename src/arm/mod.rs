//! The ARM client behind the `Resources` port (DESIGN 5).

pub mod operations;
