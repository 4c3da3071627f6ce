//! The ARM-compatible sandbox (`linkguard sim`).
