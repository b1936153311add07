//! One module per subcommand.

pub mod parse;
pub mod copy;
pub mod login;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod tags;
pub mod transfer;
