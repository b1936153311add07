//! Shared by `run`, `ps`, `logs`, `stop`, `kill`, `rm`, `exec`: container records, image resolution,
//! option parsing.

pub mod archive;
pub mod confine;
pub mod create;
pub mod image;
pub mod inspect;
pub mod opts;
pub mod start;
pub mod state;
