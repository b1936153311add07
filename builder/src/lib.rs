//! lamina's build engine: build graph → DAG solver → steps (cache keys, COPY/ADD, RUN through an executor),
//! layers and the image. The Dockerfile front end is its own crate, `lamina_dockerfile`, re-exported here as
//! [`dockerfile`] (with its one glob matcher as [`glob`]) so the engine and its callers keep their paths.

pub use lamina_dockerfile as dockerfile;
pub use lamina_dockerfile::glob;

pub mod engine;
