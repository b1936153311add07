//! One module per subcommand.
use anyhow::Context as _;
use lamina_store::Store;
/// Opens (creating if needed) the store at `--root`.
pub fn open_store(cli: &crate::Cli) -> anyhow::Result<Store> {
    let root = cli.store_root();
    Store::open(&root).with_context(|| format!("cannot open the store at {}", root.display()))
}

pub mod analyze;
pub mod attach;
pub mod build;
pub mod build_check;
pub mod build_context;
pub mod build_source;
pub mod commit;
pub mod completion;
pub mod container;
pub mod container_cmd;
pub mod copy;
pub mod cp;
pub mod create;
pub mod diff;
pub mod exec;
pub mod export;
pub mod fsck;
pub mod history;
pub mod images;
pub mod import;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod login;
pub mod logs;
pub mod ls_layer;
pub mod manifest;
pub mod network;
pub mod parse;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod referrers;
pub mod remote_image;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod sbom;
pub mod sign;
pub mod signals;
pub mod start;
pub mod stats;
pub mod stop;
pub mod subject;
pub mod system;
pub mod tag;
pub mod tags;
pub mod top;
pub mod transfer;
pub mod tree;
pub mod unpack;
pub mod version;
pub mod wait;
