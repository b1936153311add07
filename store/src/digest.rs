//! Re-export of the digest model, which lives in `lamina_oci::digest` (kept so `lamina_store::digest::…`
//! paths keep working).

pub use lamina_oci::digest::*;
