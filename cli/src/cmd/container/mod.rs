//! Shared by the container commands (`run`, `create`, `start`, `ps`, `logs`, `stop`, `inspect`, `cp`,
//! …): container records, image resolution, option parsing, creating and starting, the inspect
//! document, tar streams for `cp`.

pub mod archive;
pub mod confine;
pub mod create;
pub mod image;
pub mod inspect;
pub mod opts;
pub mod start;
pub mod state;
