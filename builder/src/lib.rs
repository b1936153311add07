//! lamina's builder: Dockerfile front end, build graph, cache keys and the build engine.

pub mod build;
