//! One module per subcommand.

pub mod copy;
pub mod login;
pub mod manifest;
pub mod parse;
pub mod pull;
pub mod push;
pub mod tags;
pub mod transfer;
