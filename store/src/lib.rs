//! lamina's store: everything that lives on disk under the store root, and the registry client.
//!
//! - [`digest`]: the strict [`Digest`] type and hashing readers/writers.
//! - [`reference`]: docker-style image references ([`Reference`]).
//! - [`blob`]: the verify-then-rename blob store ([`BlobStore`], [`BlobWriter`]).

pub mod blob;
pub mod digest;
pub mod reference;

pub use blob::{BlobError, BlobStore, BlobWriter};
pub use digest::{Algorithm, Digest, HashingReader, HashingWriter};
pub use reference::{Reference, ReferenceError};
