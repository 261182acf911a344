//! `engine`: the command line. `engine run runtime.toml` follows bitcoind and runs the plugins;
//! `engine check runtime.toml` validates the runtime file and what it points to.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use engine::runtime::Runtime;
use std::path::PathBuf;

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
            if let Some((name, path)) = rt.missing_wasm().first() {
                bail!(
                    "plugin {name}: {} does not exist; build it with `cargo build --release --target wasm32-wasip2 -p {name}`",
                    path.display()
                );
            }
            bail!("the plugin runner lands with the rest of issue 3; `engine check` validates the file meanwhile")
        }
    }
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
