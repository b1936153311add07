//! One module per subcommand.

pub mod copy;
pub mod login;
pub mod manifest;
pub mod parse;
pub mod pull;
pub mod push;
pub mod tags;
pub mod transfer;
pub mod container;
pub mod kill;
pub mod logs;
pub mod ps;
pub mod rm;
pub mod run;
pub mod signals;
pub mod stop;
