//! Re-export of the image model, which lives in `lamina_oci::image` (kept so `lamina_store::image::…`
//! paths keep working).

pub use lamina_oci::image::*;
