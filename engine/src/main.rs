//! `engine`: the command line. `engine run runtime.toml` follows bitcoind and runs the plugins;
//! `engine check runtime.toml` validates the runtime file and what it points to.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use engine::follower::{self, Indexer};
use engine::runner::PluginRunner;
use engine::runtime::Runtime;
use engine::source::ReplaySource;
use engine::store::{Status, Store, StoreConfig};
use engine::wasm::WasmHost;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "engine", version, about = "Follows bitcoind and runs indexing rules as sandboxed Wasm plugins")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Follow bitcoind and run the plugins named in the runtime file.
    Run {
        /// The runtime file (see the documented runtime.toml at the repository root).
        #[arg(default_value = "runtime.toml")]
        runtime: PathBuf,
    },
    /// Check a runtime file: syntax, values, referenced files, plugin Wasm files.
    Check {
        #[arg(default_value = "runtime.toml")]
        runtime: PathBuf,
    },
    /// Run the runtime file's plugins over raw block files instead of bitcoind (conformance
    /// runs, benchmarks). Prints each plugin's height, state digest and throughput.
    Replay {
        #[arg(default_value = "runtime.toml")]
        runtime: PathBuf,
        /// Directory of raw blocks, one consensus-serialized block per `*.bin` file, in name order.
        #[arg(long)]
        blocks: PathBuf,
        /// Height of the first file's block.
        #[arg(long, default_value_t = 0)]
        start_height: u32,
        /// Do not require each file's block to build on the previous one.
        #[arg(long)]
        no_link_check: bool,
    },
    /// Show each plugin's cursor, state digest, status and version (engine not running).
    Status {
        #[arg(default_value = "runtime.toml")]
        runtime: PathBuf,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ENGINE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("engine: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check { runtime } => {
            let rt = Runtime::load(&runtime)?;
            describe(&runtime, &rt);
            let missing = rt.missing_wasm();
            for (name, path) in &missing {
                println!("  warning: plugin {name}: {} is not built yet", path.display());
            }
            Ok(())
        }
        Command::Run { runtime } => {
            let rt = Runtime::load(&runtime)?;
            describe(&runtime, &rt);
            let (_store, mut runners) = start_plugins(&rt)?;
            let mut source = engine::bitcoind::Bitcoind::new(rt.connection());
            let poll = Duration::from_millis(rt.engine.poll_interval_ms);
            loop {
                for r in runners.iter_mut() {
                    if matches!(r.status()?, Status::Halted { .. }) {
                        continue;
                    }
                    let start = r.start_height;
                    match follower::catch_up(&mut source, r, start) {
                        Ok((applied, undone)) if applied + undone > 0 => {
                            let c = r.cursor_with_digest()?.expect("applied");
                            tracing::info!(
                                "{}: height {} digest {} (+{applied} -{undone})",
                                r.name,
                                c.height,
                                hex::encode(c.digest)
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!("{}: {e:#}", r.name),
                    }
                }
                std::thread::sleep(poll);
            }
        }
        Command::Replay { runtime, blocks, start_height, no_link_check } => {
            let rt = Runtime::load(&runtime)?;
            let mut source = ReplaySource::open(&blocks, start_height, !no_link_check)?;
            let (_store, mut runners) = start_plugins(&rt)?;
            for r in runners.iter_mut() {
                let started = Instant::now();
                let from = r.cursor()?.map(|c| c.height + 1).unwrap_or(start_height.max(r.start_height));
                let start = r.start_height.max(start_height);
                let outcome = follower::catch_up(&mut source, r, start);
                let elapsed = started.elapsed();
                let c = r.cursor_with_digest()?;
                let (applied, undone) = match outcome {
                    Ok(x) => x,
                    Err(e) => {
                        println!("{}: stopped: {e:#}", r.name);
                        continue;
                    }
                };
                println!(
                    "{}: heights {from}..={} applied {applied} (undone {undone}) in {:.3} s = {:.1} blocks/s, digest {}",
                    r.name,
                    c.map(|c| c.height).unwrap_or(0),
                    elapsed.as_secs_f64(),
                    applied as f64 / elapsed.as_secs_f64().max(1e-9),
                    c.map(|c| hex::encode(c.digest)).unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Status { runtime } => {
            let rt = Runtime::load(&runtime)?;
            let store = open_store(&rt)?;
            for p in &rt.plugins {
                let ps = store.plugin(&p.name);
                let version = ps.get_meta("version")?.map(|v| String::from_utf8_lossy(&v).into_owned());
                match ps.cursor()? {
                    None => println!("{}: not started (version {})", p.name, version.unwrap_or_else(|| "-".into())),
                    Some(c) => println!(
                        "{}: height {} block {} digest {} status {:?} version {}",
                        p.name,
                        c.height,
                        engine::follower::hex_hash(&c.hash),
                        hex::encode(c.digest),
                        ps.status()?,
                        version.unwrap_or_else(|| "-".into())
                    ),
                }
            }
            Ok(())
        }
    }
}

fn open_store(rt: &Runtime) -> Result<Store> {
    let dir = rt.data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating [engine] data_dir {}", dir.display()))?;
    Store::open_with(&dir.join("state"), StoreConfig { undo_window: rt.engine.undo_window })
}

/// Opens the store and starts every plugin of the runtime file (each with its own limits).
fn start_plugins(rt: &Runtime) -> Result<(Store, Vec<PluginRunner>)> {
    if let Some((name, path)) = rt.missing_wasm().first() {
        bail!(
            "plugin {name}: {} does not exist; build it with `cargo build --release --target wasm32-wasip2 -p {name}`",
            path.display()
        );
    }
    let store = open_store(rt)?;
    let cache = rt.data_dir().join("wasm-cache");
    let mut runners = Vec::new();
    for p in &rt.plugins {
        let limits = engine::wasm::Limits {
            fuel: p.limits.fuel_per_block,
            memory_bytes: (p.limits.memory_mb as usize) << 20,
            timeout: Duration::from_millis(p.limits.timeout_ms),
            ..Default::default()
        };
        let host = WasmHost::new(&cache, limits)?;
        let config = rt.plugin_init_config(p)?;
        runners.push(PluginRunner::start(&host, &store, &p.name, &rt.resolve(&p.wasm), &config, p.start_height)?);
    }
    Ok((store, runners))
}

fn describe(path: &std::path::Path, rt: &Runtime) {
    println!(
        "{}: bitcoind {} ({}), state in {}, listening on {}, undo window {} blocks",
        path.display(),
        rt.bitcoind.url,
        rt.bitcoind.network,
        rt.data_dir().display(),
        rt.engine.listen,
        rt.engine.undo_window
    );
    for p in &rt.plugins {
        println!(
            "  plugin {} from {} at height {} (fuel {}, {} MiB, {} ms; queues: {})",
            p.name,
            rt.resolve(&p.wasm).display(),
            p.start_height,
            p.limits.fuel_per_block,
            p.limits.memory_mb,
            p.limits.timeout_ms,
            if p.capabilities.queues.is_empty() { "none".to_string() } else { p.capabilities.queues.join(", ") }
        );
    }
}
