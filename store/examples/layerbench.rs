//! Benchmark driver for bench/layers.sh (not a test).
//!
//! layerbench write SRC STORE_ROOT COMPRESSION [THREADS]   → prints "<digest> <size> <seconds>"
//! layerbench apply BLOB DEST                              → prints "<entries> <seconds>"

use std::path::Path;
use std::time::Instant;

use lamina_store::BlobStore;
use lamina_store::layer::{ApplyOptions, Compression, WriteOptions, apply_layer, write_layer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") if args.len() >= 5 => {
            let store = BlobStore::open(Path::new(&args[3])).expect("open blob store");
            let compression = Compression::parse(&args[4]).expect("compression: gzip[:N], zstd[:N] or none");
            let mut opts = WriteOptions {
                compression,
                ..WriteOptions::default()
            };
            if let Some(t) = args.get(5) {
                opts.threads = t.parse().expect("threads");
            }
            let start = Instant::now();
            let info = write_layer(Path::new(&args[2]), &opts, &store).expect("write layer");
            println!(
                "{} {} {:.3}",
                info.digest,
                info.size,
                start.elapsed().as_secs_f64()
            );
        }
        Some("apply") if args.len() >= 4 => {
            let file = std::fs::File::open(&args[2]).expect("open blob");
            std::fs::create_dir_all(&args[3]).expect("create dest");
            let start = Instant::now();
            let stats =
                apply_layer(file, Path::new(&args[3]), &ApplyOptions::default()).expect("apply layer");
            println!("{} {:.3}", stats.entries, start.elapsed().as_secs_f64());
        }
        _ => {
            eprintln!("usage: layerbench write SRC STORE_ROOT gzip|zstd|none [THREADS] | apply BLOB DEST");
            std::process::exit(2);
        }
    }
}
