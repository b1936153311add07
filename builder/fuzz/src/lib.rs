//! The Dockerfile front end, compiled from the builder's sources for fuzzing.

#[path = "../../src/dockerfile/mod.rs"]
pub mod dockerfile;
