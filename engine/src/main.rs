//! `engine`: the command line. `engine run runtime.toml` follows bitcoind and runs the plugins;
//! `engine check runtime.toml` validates the runtime file and what it points to.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use engine::follower::{self, Indexer};
use engine::runner::PluginRunner;
use engine::runtime::Runtime;
use engine::source::ReplaySource;
use engine::store::{Status, Store, StoreConfig};
use engine::supervisor::{Mode, PluginSpec, PluginStatus, Supervisor};
use engine::wasm::{CallBudget, WasmHost};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// Show each plugin's cursor, state digest, status and version (same as `plugin list`).
    Status {
        #[arg(default_value = "runtime.toml")]
        runtime: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Inspect and upgrade plugins (through the running engine's admin endpoint, or directly on
    /// the data dir when the engine is stopped).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Take a plugin back to height H (undoing blocks within the undo window); it then
    /// re-indexes from H+1. A halted plugin becomes active again.
    Rewind {
        name: String,
        #[arg(long)]
        height: u32,
        #[arg(long, default_value = "runtime.toml")]
        runtime: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Every plugin: height, digest, status, version.
    List {
        #[arg(long, default_value = "runtime.toml")]
        runtime: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// One plugin in detail (including a rebuild in progress).
    Status {
        name: String,
        #[arg(long, default_value = "runtime.toml")]
        runtime: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Replace a plugin's code at a block boundary, without restarting the engine.
    Upgrade {
        name: String,
        /// The new Wasm component.
        file: PathBuf,
        /// keep: continue from the cursor with the existing state; rebuild: index from the
        /// start height in the background, then take over at the tip.
        #[arg(long, default_value = "keep")]
        mode: Mode,
        #[arg(long, default_value = "runtime.toml")]
        runtime: PathBuf,
    },
}

fn main() {
    // ENGINE_LOG filters (e.g. "info,engine::outbox=debug"); ENGINE_LOG_FORMAT=json gives one JSON
    // object per line for log shippers.
    let filter = tracing_subscriber::EnvFilter::try_from_env("ENGINE_LOG").unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("ENGINE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
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
            // Each built plugin is loaded and its `init` runs with its config, so a bad
            // parameters file is reported here rather than when the engine starts.
            let mut failed = Vec::new();
            for p in rt.plugins.iter().filter(|p| !missing.iter().any(|(n, _)| *n == p.name)) {
                let outcome = host_for(&rt, p).and_then(|host| {
                    let mut plugin = host.load(&rt.resolve(&p.wasm))?;
                    let config = rt.plugin_init_config(p)?;
                    plugin.init(&config).map_err(|f| anyhow::anyhow!("init refused its config: {}", f.message))
                });
                match outcome {
                    Ok(m) => println!(
                        "  plugin {}: init ok ({} {}, {} routes, confirmation depths {:?})",
                        p.name,
                        m.name,
                        m.version,
                        m.routes.len(),
                        m.confirmation_depths
                    ),
                    Err(e) => {
                        println!("  error: plugin {}: {e:#}", p.name);
                        failed.push(p.name.clone());
                    }
                }
            }
            if !failed.is_empty() {
                bail!("{}: plugin(s) {} refused to load (see above)", runtime.display(), failed.join(", "));
            }
            Ok(())
        }
        Command::Run { runtime } => run_engine(&runtime),
        Command::Replay { runtime, blocks, start_height, no_link_check } => {
            let rt = Runtime::load(&runtime)?;
            let mut source = ReplaySource::open(&blocks, start_height, !no_link_check)?;
            let store = open_store(&rt)?;
            let mut runners = Vec::new();
            for p in &rt.plugins {
                let host = host_for(&rt, p)?;
                let config = rt.plugin_init_config(p)?;
                runners.push(PluginRunner::start(
                    &host,
                    &store,
                    &p.name,
                    &rt.resolve(&p.wasm),
                    &config,
                    p.start_height,
                )?);
            }
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
        Command::Status { runtime, json } => list(&runtime, None, json),
        Command::Plugin(PluginCommand::List { runtime, json }) => list(&runtime, None, json),
        Command::Plugin(PluginCommand::Status { name, runtime, json }) => list(&runtime, Some(&name), json),
        Command::Plugin(PluginCommand::Upgrade { name, file, mode, runtime }) => upgrade(&runtime, &name, &file, mode),
        Command::Rewind { name, height, runtime } => rewind(&runtime, &name, height),
    }
}

fn open_store(rt: &Runtime) -> Result<Store> {
    let dir = rt.data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating [engine] data_dir {}", dir.display()))?;
    Store::open_with(&dir.join("state"), StoreConfig { undo_window: rt.engine.undo_window })
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
    for s in rt.sinks() {
        println!("  sink: {}", s.describe());
    }
    if let Some(d) = &rt.devnet {
        println!("  devnet: signing with the node's wallet {:?} at /devnet/ (regtest only)", d.wallet);
    }
}

fn host_for(rt: &Runtime, p: &engine::runtime::PluginSection) -> Result<WasmHost> {
    let limits = engine::wasm::Limits {
        fuel: p.limits.fuel_per_block,
        memory_bytes: (p.limits.memory_mb as usize) << 20,
        timeout: Duration::from_millis(p.limits.timeout_ms),
        ..Default::default()
    };
    WasmHost::new(&rt.data_dir().join("wasm-cache"), limits)
}

fn specs(rt: &Runtime) -> Result<Vec<PluginSpec>> {
    if let Some((name, path)) = rt.missing_wasm().first() {
        bail!(
            "plugin {name}: {} does not exist; build it with `cargo build --release --target wasm32-wasip2 -p {name}`",
            path.display()
        );
    }
    rt.plugins
        .iter()
        .map(|p| {
            let path = rt.resolve(&p.wasm);
            let runtime_wasm =
                std::fs::read(&path).with_context(|| format!("plugin {}: reading {}", p.name, path.display()))?;
            let mut spec =
                PluginSpec::new(&p.name, p.start_height, &rt.plugin_init_config(p)?, runtime_wasm, host_for(rt, p)?);
            let l = &p.limits;
            spec.queues = Some(p.capabilities.queues.clone());
            spec.request_budget =
                CallBudget { fuel: l.request_fuel, timeout: Duration::from_millis(l.request_timeout_ms) };
            spec.job_budget = CallBudget { fuel: l.job_fuel, timeout: Duration::from_millis(l.job_timeout_ms) };
            spec.max_concurrent_requests = l.max_concurrent_requests as usize;
            spec.http_allow = p.capabilities.http.clone();
            spec.bitcoind_allow = p.capabilities.bitcoind.clone();
            spec.bitcoind = Some(rt.connection());
            Ok(spec)
        })
        .collect()
}

fn bitcoind_factory(rt: &Runtime) -> engine::fetcher::SourceFactory {
    let conn = rt.connection();
    Arc::new(move || {
        // Give up after a while so a plugin thread stays responsive (commands, shutdown) while
        // bitcoind is down; the thread retries from the same height.
        Box::new(engine::bitcoind::Bitcoind::new(conn.clone()).give_up_after(Duration::from_secs(5)))
            as Box<dyn engine::source::BlockSource>
    })
}

/// `engine run`: every plugin in its thread, the HTTP endpoint, until SIGINT/SIGTERM.
fn run_engine(runtime: &Path) -> Result<()> {
    let rt = Runtime::load(runtime)?;
    describe(runtime, &rt);
    let specs = specs(&rt)?;
    let store = open_store(&rt)?;
    let registry = engine::registry::Registry::open(&store, &rt.data_dir())?;
    let fetcher = engine::fetcher::Fetcher::new(bitcoind_factory(&rt), Default::default());
    let poll = Duration::from_millis(rt.engine.poll_interval_ms);
    let mut queues: Vec<String> = rt.plugins.iter().flat_map(|p| p.capabilities.queues.clone()).collect();
    queues.sort();
    queues.dedup();
    let sinks = rt.sinks();
    for s in &sinks {
        tracing::info!("delivering messages to {}", s.describe());
    }
    let publisher = engine::outbox::Publisher::start(&store, sinks, queues)?;
    let metrics = Arc::new(engine::metrics::Metrics::new());
    let supervisor = Arc::new(Supervisor::start(&store, &registry, &fetcher, specs, poll, metrics)?);
    let token = engine::admin::write_token(&rt.data_dir())?;
    let devnet = rt.devnet()?;
    let server = engine::admin::serve(
        &rt.engine.listen,
        supervisor.clone(),
        token,
        store.clone(),
        publisher.stats.clone(),
        devnet,
    )?;
    tracing::info!(
        "engine running: status at http://{}/status, admin token in {}",
        server.addr,
        engine::admin::token_path(&rt.data_dir()).display()
    );
    wait_for_signal()?;
    tracing::info!("stopping: finishing the blocks in progress and delivering queued messages (again to force)");
    std::thread::spawn(|| {
        if wait_for_signal().is_ok() {
            eprintln!("engine: second signal, exiting now (committed state and undelivered messages are kept)");
            std::process::exit(130);
        }
    });
    server.stop();
    supervisor.shutdown();
    publisher.shutdown(Duration::from_secs(5));
    tracing::info!("stopped");
    Ok(())
}

fn wait_for_signal() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })
    .context("waiting for a stop signal")
}

/// Talks to a running engine's HTTP endpoint; `None` from a call means "no engine there".
struct Admin {
    base: String,
    token_file: PathBuf,
}

impl Admin {
    fn new(rt: &Runtime) -> Admin {
        Admin { base: format!("http://{}", rt.engine.listen), token_file: engine::admin::token_path(&rt.data_dir()) }
    }

    fn call(&self, req: minreq::Request, admin: bool) -> Result<Option<serde_json::Value>> {
        let req = if admin {
            let token = std::fs::read_to_string(&self.token_file).with_context(|| {
                format!("reading the admin token {} (run as the engine's user)", self.token_file.display())
            })?;
            req.with_header("Authorization", format!("Bearer {}", token.trim()))
        } else {
            req
        };
        let resp = match req.with_timeout(900).send() {
            Ok(r) => r,
            Err(minreq::Error::IoError(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
            Err(e) => bail!("calling the engine at {}: {e}", self.base),
        };
        let body: serde_json::Value = serde_json::from_slice(resp.as_bytes())
            .with_context(|| format!("the engine at {} answered {} with non-JSON", self.base, resp.status_code))?;
        if resp.status_code != 200 {
            bail!("{}", body.get("error").and_then(|e| e.as_str()).unwrap_or("request failed"));
        }
        Ok(Some(body))
    }
}

fn print_status(s: &PluginStatus) {
    let state = match (&s.status[..], s.halted_at, &s.reason) {
        ("halted", Some(h), Some(r)) => format!("HALTED at {h}: {}", r.lines().next().unwrap_or_default()),
        (st, _, _) => st.to_string(),
    };
    match s.height {
        None => println!("{}: not started; {state}; version {}", s.name, short(&s.version)),
        Some(h) => println!(
            "{}: height {h} (confirmed {}) block {} digest {} {state}; version {}",
            s.name,
            s.confirmed_height.map_or("-".into(), |c| c.to_string()),
            s.block.as_deref().unwrap_or("-"),
            s.digest.as_deref().unwrap_or("-"),
            short(&s.version)
        ),
    }
    if let Some(r) = &s.rebuild {
        println!(
            "  rebuilding version {} in {}: height {} {}",
            short(&r.version),
            r.namespace,
            r.height.map_or("-".into(), |h| h.to_string()),
            r.status
        );
    }
}

fn short(v: &Option<String>) -> &str {
    v.as_deref().map_or("-", |v| &v[..16.min(v.len())])
}

/// `engine plugin list|status`, `engine status`.
fn list(runtime: &Path, name: Option<&str>, json: bool) -> Result<()> {
    let rt = Runtime::load(runtime)?;
    let admin = Admin::new(&rt);
    let path = match name {
        Some(n) => format!("{}/status/{n}", admin.base),
        None => format!("{}/status", admin.base),
    };
    let statuses: Vec<PluginStatus> = match admin.call(minreq::get(path), false)? {
        Some(v) if name.is_some() => vec![serde_json::from_value(v)?],
        Some(v) => serde_json::from_value(v)?,
        None => {
            // The engine is not running: read the data dir directly.
            let store = open_store(&rt)?;
            let registry = engine::registry::Registry::open(&store, &rt.data_dir())?;
            let names: Vec<&str> = match name {
                Some(n) => {
                    if !rt.plugins.iter().any(|p| p.name == n) {
                        bail!("no plugin named {n:?} in {}", runtime.display());
                    }
                    vec![n]
                }
                None => rt.plugins.iter().map(|p| p.name.as_str()).collect(),
            };
            names.iter().map(|n| engine::supervisor::plugin_status(&store, &registry, n)).collect::<Result<_>>()?
        }
    };
    if json {
        if name.is_some() {
            println!("{}", serde_json::to_string_pretty(&statuses[0])?);
        } else {
            println!("{}", serde_json::to_string_pretty(&statuses)?);
        }
    } else {
        statuses.iter().for_each(print_status);
    }
    Ok(())
}

/// `engine plugin upgrade`: through the running engine, or recorded for the next start.
fn upgrade(runtime: &Path, name: &str, file: &Path, mode: Mode) -> Result<()> {
    let rt = Runtime::load(runtime)?;
    let p = rt
        .plugins
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| anyhow::anyhow!("no plugin named {name:?} in {}", runtime.display()))?;
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let admin = Admin::new(&rt);
    let mode_s = if mode == Mode::Keep { "keep" } else { "rebuild" };
    let url = format!("{}/admin/plugins/{name}/upgrade?mode={mode_s}", admin.base);
    if let Some(out) = admin.call(minreq::post(url).with_body(wasm.clone()), true)? {
        let out: engine::supervisor::UpgradeOutcome = serde_json::from_value(out)?;
        match out.mode {
            Mode::Keep => println!(
                "{name}: now running version {} from height {} (loaded in {:.1} ms, activated in {:.1} ms)",
                &out.version[..16],
                out.height.map_or("-".into(), |h| h.to_string()),
                out.load_ms,
                out.activation_ms
            ),
            Mode::Rebuild => println!(
                "{name}: version {} is rebuilding from height {} in the background; it takes over at the tip \
                 (watch `engine plugin status {name}`)",
                &out.version[..16],
                p.start_height
            ),
        }
        return Ok(());
    }
    // Not running: validate the code and record it for the next start.
    let store = open_store(&rt)?;
    let registry = engine::registry::Registry::open(&store, &rt.data_dir())?;
    let host = host_for(&rt, p)?;
    let config = rt.plugin_init_config(p)?;
    let code = engine::runner::PluginCode::load(&host, name, &wasm, &config, store.undo_window())?;
    let version = hex::encode(code.version);
    let hash = registry.put_wasm(&wasm)?;
    let current = registry.active(name)?;
    match mode {
        Mode::Keep => {
            let runtime_wasm = current.as_ref().and_then(|a| a.runtime_wasm.clone());
            let namespace = current.map_or(name.to_string(), |a| a.namespace);
            let height = store.plugin(&namespace).cursor()?.map(|c| c.height);
            let record = engine::registry::Active {
                namespace,
                wasm: hash,
                version: version.clone(),
                since_height: height,
                runtime_wasm,
            };
            registry.set_active(name, &record)?;
            println!(
                "{name}: the engine is not running; version {} will run from height {height:?} at the next start",
                &version[..16]
            );
        }
        Mode::Rebuild => {
            let avoid = current.map_or(name.to_string(), |a| a.namespace);
            let namespace = engine::registry::Registry::new_namespace(name, &version, &avoid);
            store.drop_plugin(&namespace)?;
            registry.set_rebuild(
                name,
                Some(&engine::registry::Rebuild { namespace, wasm: hash, version: version.clone() }),
            )?;
            println!(
                "{name}: the engine is not running; version {} will rebuild in the background from the next start",
                &version[..16]
            );
        }
    }
    Ok(())
}

/// `engine rewind`: through the running engine, or directly on the data dir.
fn rewind(runtime: &Path, name: &str, height: u32) -> Result<()> {
    let rt = Runtime::load(runtime)?;
    let admin = Admin::new(&rt);
    let url = format!("{}/admin/plugins/{name}/rewind?height={height}", admin.base);
    if let Some(out) = admin.call(minreq::post(url), true)? {
        let out: engine::supervisor::RewindOutcome = serde_json::from_value(out)?;
        println!(
            "{name}: rewound {} blocks; now at height {}",
            out.undone,
            out.height.map_or("-".into(), |h| h.to_string())
        );
        return Ok(());
    }
    let spec = specs(&rt)?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| anyhow::anyhow!("no plugin named {name:?} in {}", runtime.display()))?;
    let store = open_store(&rt)?;
    let registry = engine::registry::Registry::open(&store, &rt.data_dir())?;
    let mut runner = engine::supervisor::open_plugin(&store, &registry, &spec)?;
    let mut source = engine::bitcoind::Bitcoind::new(rt.connection()).give_up_after(Duration::from_secs(5));
    let undone = runner.rewind(height, &mut source)?;
    if matches!(runner.status()?, Status::Halted { .. }) {
        runner.store().set_status(&Status::Active)?;
    }
    println!(
        "{name}: rewound {undone} blocks (engine not running); now at height {:?}",
        runner.cursor()?.map(|c| c.height)
    );
    Ok(())
}
