//! `engine run runtime.toml` — the host engine. This is the skeleton laid down with the
//! workspace (issue 2): it reads and checks `runtime.toml`. Block following, plugin hosting
//! (wasmtime), RocksDB state and the RabbitMQ outbox arrive with issue 3.

mod runtime;

use anyhow::{bail, Result};

fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()) {
        eprintln!("engine: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> Result<()> {
    match args.as_slice() {
        [cmd, path] if cmd == "check" || cmd == "run" => {
            let rt = runtime::Runtime::load(std::path::Path::new(path))?;
            println!("{path}: bitcoind {}, state in {}", rt.bitcoind.rpc_url, rt.storage.path);
            for p in &rt.plugins {
                println!("  plugin {} from {} ({} config keys)", p.name, p.wasm, p.config.len());
            }
            if cmd == "run" {
                bail!("the engine's block loop is not built yet (issue 3); `engine check {path}` validates the file");
            }
            Ok(())
        }
        _ => bail!("usage: engine run <runtime.toml> | engine check <runtime.toml>"),
    }
}
