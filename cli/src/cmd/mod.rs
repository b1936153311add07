//! One module per subcommand.

pub mod container;
pub mod copy;
pub mod exec;
pub mod kill;
pub mod login;
pub mod logs;
pub mod manifest;
pub mod parse;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rm;
pub mod run;
pub mod signals;
pub mod stop;
pub mod tags;
pub mod transfer;
