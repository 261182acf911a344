//! `phase1-demo`: the seed's seven-scenario Phase-1 demo, plus a live plugin upgrade.
//!
//! It starts the whole system as separate processes (regtest node, offline wallet, RabbitMQ,
//! covenant signer, engine with `phase1-staking` and `unbonding`), then walks the scenarios
//! through public interfaces only: bitcoind RPC, the staking API, the indexer's metrics and the
//! queues. It stops at the first failed check with what was expected and what was seen, and a
//! process that dies ends it with that process's name. Ctrl-C stops everything it started.
//! `demo/run.sh` builds everything and runs it.

mod chain;
mod checks;
mod deployment;
mod processes;
mod queues;
mod rpc;
mod scenarios;
mod upgrade;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::chain::Chain;
use crate::checks::Api;
use crate::deployment::{Build, Deployment, Options};
use crate::processes::Supervisor;
use crate::queues::Tap;
use crate::scenarios::Demo;

#[derive(Parser)]
#[command(name = "phase1-demo", about = "The seed's Phase-1 lifecycle demo (7 scenarios + a live plugin upgrade)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    local: Local,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Run the seed's seven scenarios against a deployment started elsewhere (docker/compose.yml),
    /// through its URLs only. Scenario 8 needs the engine's CLI and data dir, so it runs only in
    /// the default mode, where the demo starts the system itself.
    Attach(Attach),
}

#[derive(clap::Args)]
struct Attach {
    /// The node's RPC with credentials: http://USER:PASS@HOST:PORT.
    #[arg(long)]
    node_rpc: String,
    /// The engine's HTTP endpoint (staking API, status, plugin routes).
    #[arg(long)]
    api: String,
    /// The deployment's global-params.json.
    #[arg(long)]
    params: PathBuf,
    /// The broker's amqp:// URL (the demo consumes the Phase-1 queues).
    #[arg(long)]
    rabbitmq: Option<String>,
    /// The node's block interval (0 if it mines only on request).
    #[arg(long, default_value_t = 10)]
    block_interval: u32,
    /// The node wallet that pays for the stakes (bitcoindsim's blocks pay `miner`).
    #[arg(long, default_value = "miner")]
    wallet: String,
}

#[derive(clap::Args)]
struct Local {
    /// Seconds between blocks, mined by the node as the seed's bitcoindsim does (the seed's
    /// real-time mode is 10). 0 (the default): fast mode, blocks are mined when the demo needs them.
    #[arg(long, default_value_t = 0)]
    block_interval: u32,
    /// No RabbitMQ broker: the engine writes the queues as jsonl files.
    #[arg(long)]
    no_rabbitmq: bool,
    /// Leave the system running after the scenarios (until Ctrl-C).
    #[arg(long)]
    keep_running: bool,
    /// Where the run keeps its data, configuration and logs (emptied first).
    /// Default: demo-data/run in the repository.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Folder with the engine, regtest-node and covenant-signer binaries (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The rebuilt phase1-staking component of scenario 8 (demo/run.sh builds it with
    /// PHASE1_STAKING_BUILD=rebuilt). Default: phase1_staking_rebuilt.wasm beside the plugins.
    #[arg(long)]
    rebuilt_wasm: Option<PathBuf>,
}

fn main() {
    let started = Instant::now();
    let Cli { command, local: cli } = Cli::parse();
    if let Some(Sub::Attach(a)) = command {
        attach(a, started);
    }
    let build = match Build::locate(cli.bin_dir.clone()) {
        Ok(b) => b,
        Err(e) => fail_early(e),
    };
    let work = cli.work_dir.clone().unwrap_or_else(|| build.root.join("demo-data/run"));
    let rebuilt = cli.rebuilt_wasm.clone().unwrap_or_else(|| build.wasm_dir.join("phase1_staking_rebuilt.wasm"));
    if !rebuilt.is_file() {
        fail_early(anyhow::anyhow!(
            "no rebuilt phase1-staking component at {} for scenario 8: run `bash demo/build.sh` (demo/run.sh does), or give --rebuilt-wasm",
            rebuilt.display()
        ));
    }
    if let Err(e) = fresh_dir(&work) {
        fail_early(e);
    }
    let sup = match Supervisor::new(&work.join("logs")) {
        Ok(s) => s,
        Err(e) => fail_early(e),
    };
    on_signal_stop(&sup);

    let mode = if cli.block_interval == 0 {
        "fast mode: blocks are mined when the demo needs them".to_string()
    } else {
        format!("real-time mode: the node mines a block every {} seconds", cli.block_interval)
    };
    println!("===== Starting the Phase-1 system ({mode}); logs in {} =====", work.join("logs").display());
    let opt = Options { work: work.clone(), block_interval: cli.block_interval, rabbitmq: !cli.no_rabbitmq };
    let outcome = deployment::start(&sup, &build, &opt)
        .and_then(|dep| run(&sup, &dep, cli.block_interval, chain::WALLET, &rebuilt).map(|()| dep));
    match outcome {
        Ok(dep) => {
            println!(
                "\n===== All 8 scenarios passed in {:.1} s (wall time, after the build) =====",
                started.elapsed().as_secs_f64()
            );
            print_endpoints(&dep, &work);
            if cli.keep_running {
                println!("The system keeps running; Ctrl-C stops every process the demo started.");
                loop {
                    std::thread::park();
                }
            }
            sup.stop();
        }
        Err(e) => {
            // A dead part shows first as a refused connection: name it rather than the symptom.
            std::thread::sleep(std::time::Duration::from_millis(300));
            sup.fail_if_one_died();
            if sup.is_stopping() {
                // A signal is being handled.
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            eprintln!("\n demo FAILED: {e:#}");
            eprintln!(" Logs of every process: {}", work.join("logs").display());
            sup.stop();
            std::process::exit(1);
        }
    }
}

/// The scenarios, in the seed's order; ours (8) runs before the reorg so that scenario 7's
/// checks pass on the upgraded plugin.
fn run(sup: &Supervisor, dep: &Deployment, block_interval: u32, wallet: &str, rebuilt: &std::path::Path) -> Result<()> {
    let tap = match &dep.rabbitmq {
        Some(url) => Tap::rabbit(url).context("consuming the Phase-1 queues")?,
        None => Tap::files(dep.queues_dir.clone().unwrap_or_default()),
    };
    let chain = Chain::new(dep, sup, block_interval, wallet)?;
    chain.fund()?;
    let api = Api { base: dep.api.clone() };
    let mut d = Demo { chain: &chain, api: &api, queues: &tap, unbonded: None, unbonding_tx: None };
    type Step<'a> = (&'a str, Box<dyn Fn(&mut Demo) -> Result<()> + 'a>);
    let steps: Vec<Step> = vec![
        ("Scenario 1", Box::new(scenarios::one)),
        ("Scenario 2", Box::new(scenarios::two)),
        ("Scenario 3", Box::new(scenarios::three)),
        ("Scenario 4", Box::new(scenarios::four)),
        ("Scenario 5", Box::new(scenarios::five)),
        ("Scenario 6", Box::new(scenarios::six)),
        ("Scenario 8", Box::new(|d: &mut Demo| upgrade::eight(d, dep, rebuilt))),
        ("Scenario 7", Box::new(scenarios::seven)),
    ];
    for (name, step) in steps {
        if name == "Scenario 8" && dep.attached {
            println!("\n===== Scenario 8 (beyond the seed) is not run against an attached deployment: it upgrades the");
            println!("       plugin through the engine's CLI and data dir; `bash demo/run.sh` runs it. =====");
            continue;
        }
        let t = Instant::now();
        sup.doing(&format!("running {name}"));
        step(&mut d).with_context(|| format!("{name} failed at height {}", chain.height().unwrap_or(0)))?;
        println!(" ({name} passed in {:.1} s)", t.elapsed().as_secs_f64());
    }
    upgrade::expect_unique(&tap)
}

/// `phase1-demo attach`: the scenarios against a deployment started elsewhere.
fn attach(a: Attach, started: Instant) -> ! {
    let outcome = (|| {
        let node = rpc::Rpc::from_url("the regtest node", &a.node_rpc)?;
        let dep = Deployment::attached(node, &a.api, &a.params, a.rabbitmq.clone())?;
        let sup = Supervisor::new(&std::env::temp_dir().join("phase1-demo-attach-logs"))?;
        println!("===== Attached to the deployment at {} (node {}) =====", dep.api, dep.node.url);
        run(&sup, &dep, a.block_interval, &a.wallet, std::path::Path::new(""))
    })();
    match outcome {
        Ok(()) => {
            println!("\n===== The seed's 7 scenarios passed in {:.1} s =====", started.elapsed().as_secs_f64());
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("\n demo FAILED: {e:#}");
            std::process::exit(1)
        }
    }
}

fn print_endpoints(dep: &Deployment, work: &std::path::Path) {
    println!("  Staking API:          {}/v1/stats  (OpenAPI: {}/openapi.json)", dep.api, dep.api);
    println!("  Engine status:        {}/status   metrics: {}/metrics", dep.api, dep.api);
    println!("  Indexer metrics:      {}/plugins/phase1-staking/metrics", dep.api);
    println!("  Unbonding pipeline:   {}/plugins/unbonding/requests", dep.api);
    println!("  Covenant signer:      {}  (offline wallet RPC, loopback only: {})", dep.signer, dep.wallet);
    println!("  Global parameters:    {}", dep.params_file.display());
    println!("  Regtest node RPC:     {} (user demo, password demo)", dep.node.url);
    match &dep.rabbitmq_management {
        Some(m) => println!("  RabbitMQ management:  {m} (guest / guest)"),
        None => println!("  Queues (jsonl):       {}", dep.queues_dir.clone().unwrap_or_default().display()),
    }
    println!(
        "  Dashboard:            {}/  (served by the engine; stakes are signed by the node wallet {:?})",
        dep.api,
        chain::WALLET
    );
    println!("  Logs:                 {}", work.join("logs").display());
}

/// Empties the work folder of an earlier run (refusing folders that do not look like one).
fn fresh_dir(work: &std::path::Path) -> Result<()> {
    if work.exists() {
        let ours = work.join("logs").is_dir() || std::fs::read_dir(work)?.next().is_none();
        if !ours {
            bail!(
                "{} exists and is not an earlier demo run (no logs/ folder in it): give another --work-dir",
                work.display()
            );
        }
        std::fs::remove_dir_all(work).with_context(|| format!("removing the earlier run in {}", work.display()))?;
    }
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))
}

/// SIGINT / SIGTERM: stop every started process, then exit 130.
fn on_signal_stop(sup: &Supervisor) {
    let sup = sup.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a signal runtime");
    std::thread::spawn(move || {
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        if !sup.is_stopping() {
            eprintln!("\n interrupted: stopping every process the demo started...");
            sup.stop();
            eprintln!(" stopped.");
        }
        std::process::exit(130);
    });
}

fn fail_early(e: anyhow::Error) -> ! {
    eprintln!("phase1-demo: {e:#}");
    std::process::exit(2);
}
