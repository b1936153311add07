//! lamina's builder: the Dockerfile front end ([`dockerfile`]: parse → typed instructions with spans →
//! stage graph with BuildKit's expansion and ARG scoping), build graph, cache keys and the build engine.
//! [`glob`] is the one glob matcher (COPY sources, `--exclude`).

pub mod dockerfile;
pub mod engine;
pub mod glob;
