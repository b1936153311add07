//! Re-export of the image config model, which lives in `lamina_oci::config` (kept so
//! `lamina_store::config::…` paths keep working).

pub use lamina_oci::config::*;
