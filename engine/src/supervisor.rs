//! The running engine: one thread per plugin, each driving its plugin toward the best chain
//! with the follower, and taking commands (upgrade, rewind) only between two blocks. A plugin
//! that halts stops alone; the others go on.
//!
//! Hot swap happens at a block boundary, in the plugin's own thread:
//! - keep: the new code continues from the cursor, in the same namespace;
//! - rebuild: the new code indexes from its start height in its own namespace, in a background
//!   thread, publishing nothing (its messages still enter its digest); once it reaches the tip
//!   both versions are brought to the same block and the new one takes over in one registry
//!   write. Messages up to that block came from the old version, after it from the new one:
//!   none is lost or sent twice. If the old version is halted, the rebuild publishes the
//!   blocks above the old version's cursor itself.

use crate::fetcher::{FetchHandle, Fetcher};
use crate::follower::{self, Indexer, Progress};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::progress::ProgressLog;
use crate::registry::{Active, Rebuild, Registry};
use crate::runner::{self, PluginCode, PluginRunner};
use crate::store::{PluginStore, Status, Store};
use crate::wasm::{CallBudget, WasmHost};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the engine needs to run one plugin (from runtime.toml).
pub struct PluginSpec {
    pub name: String,
    pub start_height: u32,
    pub config: String,
    /// The Wasm runtime.toml names (used on first start; later the recorded version wins).
    pub runtime_wasm: Vec<u8>,
    pub host: WasmHost,
    /// Queues it may publish to (`None`: any).
    pub queues: Option<Vec<String>>,
    /// Per-request and per-job budgets, and request concurrency.
    pub request_budget: CallBudget,
    pub job_budget: CallBudget,
    pub max_concurrent_requests: usize,
    /// What its job may call.
    pub http_allow: Vec<String>,
    pub bitcoind_allow: Vec<String>,
    pub bitcoind: Option<crate::bitcoind::Connection>,
}

impl PluginSpec {
    /// A spec with default budgets and no capabilities (tests, tools).
    pub fn new(name: &str, start_height: u32, config: &str, runtime_wasm: Vec<u8>, host: WasmHost) -> PluginSpec {
        PluginSpec {
            name: name.to_string(),
            start_height,
            config: config.to_string(),
            runtime_wasm,
            host,
            queues: None,
            request_budget: CallBudget { fuel: 1_000_000_000, timeout: Duration::from_secs(2) },
            job_budget: CallBudget { fuel: 20_000_000_000, timeout: Duration::from_secs(30) },
            max_concurrent_requests: 16,
            http_allow: Vec::new(),
            bitcoind_allow: Vec::new(),
            bitcoind: None,
        }
    }

    fn namespace(&self, store: &Store, ns: &str) -> PluginStore {
        let ps = store.plugin(ns).labelled(&self.name);
        match &self.queues {
            Some(q) => ps.with_queues(q),
            None => ps,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Keep,
    Rebuild,
}

impl std::str::FromStr for Mode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "keep" => Ok(Mode::Keep),
            "rebuild" => Ok(Mode::Rebuild),
            _ => bail!("unknown upgrade mode {s:?}: use `keep` (continue from the cursor) or `rebuild` (re-index from the start height, then take over)"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeOutcome {
    pub plugin: String,
    pub mode: Mode,
    pub version: String,
    pub wasm: String,
    /// keep: the cursor the new code continues from; rebuild: None (in progress).
    pub height: Option<u32>,
    /// Loading the Wasm: compile (or compile-cache hit) and `init`.
    pub load_ms: f64,
    /// From loaded code to the plugin running it (keep) or the rebuild running (rebuild).
    pub activation_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RewindOutcome {
    pub plugin: String,
    pub height: Option<u32>,
    pub undone: u32,
}

/// A plugin's state as `engine plugin status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStatus {
    pub name: String,
    pub namespace: String,
    pub version: Option<String>,
    pub wasm: Option<String>,
    pub start_height: Option<u32>,
    /// The cursor: last applied block.
    pub height: Option<u32>,
    /// Its hash (display order).
    pub block: Option<String>,
    /// The state digest after it.
    pub digest: Option<String>,
    pub confirmed_height: Option<u32>,
    /// "active" or "halted".
    pub status: String,
    pub halted_at: Option<u32>,
    pub reason: Option<String>,
    pub rebuild: Option<Box<PluginStatus>>,
}

/// Reads a plugin's status from the store (works with or without a running engine).
pub fn plugin_status(store: &Store, registry: &Registry, name: &str) -> Result<PluginStatus> {
    let active = registry.active(name)?;
    let ns = active.as_ref().map_or(name.to_string(), |a| a.namespace.clone());
    let mut s = namespace_status(&store.plugin(&ns), name)?;
    s.wasm = active.map(|a| a.wasm);
    if let Some(r) = registry.rebuild(name)? {
        let mut rs = namespace_status(&store.plugin(&r.namespace), name)?;
        rs.wasm = Some(r.wasm);
        s.rebuild = Some(Box::new(rs));
    }
    Ok(s)
}

fn namespace_status(ps: &PluginStore, name: &str) -> Result<PluginStatus> {
    let meta =
        |k: &str| -> Result<Option<String>> { Ok(ps.get_meta(k)?.map(|v| String::from_utf8_lossy(&v).into_owned())) };
    let cursor = ps.cursor()?;
    let (status, halted_at, reason) = match ps.status()? {
        Status::Active => ("active", None, None),
        Status::Halted { height, reason } => ("halted", Some(height), Some(reason)),
    };
    Ok(PluginStatus {
        name: name.to_string(),
        namespace: ps.name().to_string(),
        version: meta("version")?,
        wasm: None,
        start_height: meta("start_height")?.and_then(|s| s.parse().ok()),
        height: cursor.map(|c| c.height),
        block: cursor.map(|c| follower::hex_hash(&c.hash)),
        digest: cursor.map(|c| hex::encode(c.digest)),
        confirmed_height: runner::confirmed_height_of(ps)?,
        status: status.to_string(),
        halted_at,
        reason,
        rebuild: None,
    })
}

enum Cmd {
    Upgrade {
        wasm: Vec<u8>,
        mode: Mode,
        reply: Sender<Result<UpgradeOutcome, String>>,
    },
    Rewind {
        height: u32,
        reply: Sender<Result<RewindOutcome, String>>,
    },
    /// The background rebuild in this namespace reached the tip.
    ShadowReady(String),
}

/// The running plugins. Dropping it does not stop them; call [`Supervisor::shutdown`].
pub struct Supervisor {
    store: Store,
    registry: Registry,
    slots: BTreeMap<String, Slot>,
    shutdown: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

struct Slot {
    tx: Sender<Cmd>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    job: std::sync::Mutex<Option<JoinHandle<()>>>,
    live: Arc<Live>,
}

/// Loads the code a plugin should run now and its namespace, recording it (first start, or a
/// changed config). Used by `engine run` and by offline commands.
pub fn open_plugin(store: &Store, registry: &Registry, spec: &PluginSpec) -> Result<PluginRunner> {
    let name = &spec.name;
    let runtime_hash = registry.put_wasm(&spec.runtime_wasm)?;
    let active = registry.active(name)?;
    let (namespace, wasm_hash) = match &active {
        Some(a) if a.runtime_wasm.as_deref() == Some(runtime_hash.as_str()) => {
            if a.wasm != runtime_hash {
                tracing::info!(
                    "plugin {name}: runs Wasm {} installed by `engine plugin upgrade` (runtime.toml's file is unchanged)",
                    &a.wasm[..16]
                );
            }
            (a.namespace.clone(), a.wasm.clone())
        }
        Some(a) => {
            if a.wasm != runtime_hash {
                tracing::warn!(
                    "plugin {name}: runtime.toml's Wasm changed since the last run ({} → {}); switching to it and keeping the state (to re-index instead: `engine plugin upgrade {name} FILE --mode rebuild`)",
                    &a.wasm[..16],
                    &runtime_hash[..16]
                );
            }
            (a.namespace.clone(), runtime_hash.clone())
        }
        None => (name.clone(), runtime_hash.clone()),
    };
    let bytes = if wasm_hash == runtime_hash { spec.runtime_wasm.clone() } else { registry.wasm(&wasm_hash)? };
    let code = PluginCode::load(&spec.host, name, &bytes, &spec.config, store.undo_window())?;
    let version = hex::encode(code.version);
    let ps = spec.namespace(store, &namespace);
    let cursor = ps.cursor()?.map(|c| c.height);
    let since_height = match &active {
        Some(a) if a.version == version => a.since_height,
        Some(a) => {
            tracing::warn!(
                "plugin {name}: code or config changed since the last run (version {} → {}); continuing from \
                 height {:?}",
                &a.version[..16],
                &version[..16],
                cursor
            );
            cursor
        }
        None => None,
    };
    let record = Active { namespace, wasm: wasm_hash, version, since_height, runtime_wasm: Some(runtime_hash) };
    if active.as_ref() != Some(&record) {
        registry.set_active(name, &record)?;
    }
    for orphan in registry.orphans(store, name)? {
        tracing::info!("plugin {name}: dropping leftover namespace {orphan:?}");
        store.drop_plugin(&orphan)?;
    }
    PluginRunner::new(name, ps, code, spec.start_height)
}

impl Supervisor {
    /// Opens every plugin (errors here stop the start: bad Wasm, failing init, ...) and starts
    /// its thread, resuming any rebuild that was in progress.
    pub fn start(
        store: &Store,
        registry: &Registry,
        fetcher: &Fetcher,
        specs: Vec<PluginSpec>,
        poll: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Supervisor> {
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut opened = Vec::new();
        for spec in specs {
            let runner = open_plugin(store, registry, &spec)?;
            let shadow = match registry.rebuild(&spec.name)? {
                None => None,
                Some(r) => {
                    let bytes = registry.wasm(&r.wasm)?;
                    let code = PluginCode::load(&spec.host, &spec.name, &bytes, &spec.config, store.undo_window())
                        .with_context(|| format!("plugin {}: resuming its rebuild", spec.name))?;
                    Some((r, code))
                }
            };
            opened.push((spec, runner, shadow));
        }
        let mut slots = BTreeMap::new();
        let mut lives = Vec::new();
        for (spec, mut runner, shadow) in opened {
            let pm = Arc::new(metrics.plugin(&spec.name));
            runner.set_metrics(pm.clone());
            let outbound = crate::call_context::Outbound {
                plugin: spec.name.clone(),
                http_allow: spec.http_allow.clone(),
                bitcoind_allow: spec.bitcoind_allow.clone(),
                bitcoind: spec.bitcoind.clone(),
                timeout: spec.job_budget.timeout,
            };
            let live = Arc::new(Live::new(
                &spec.name,
                runner.serving(),
                spec.request_budget,
                spec.job_budget,
                outbound,
                pm,
                spec.max_concurrent_requests,
            ));
            lives.push(live.clone());
            let (tx, rx) = channel();
            let mut worker = Worker {
                name: spec.name.clone(),
                spec,
                store: store.clone(),
                registry: registry.clone(),
                fetcher: fetcher.clone(),
                source: fetcher.handle(),
                runner,
                rx,
                tx: tx.clone(),
                shadow: None,
                shutdown: shutdown.clone(),
                poll,
                live: live.clone(),
            };
            if let Some((r, code)) = shadow {
                tracing::info!("plugin {}: resuming the rebuild of version {}", worker.name, &r.version[..16]);
                worker.start_shadow(r, code)?;
            }
            let name = worker.name.clone();
            let thread = std::thread::Builder::new()
                .name(format!("plugin-{name}"))
                .spawn(move || worker.run())
                .context("spawning a plugin thread")?;
            let job = crate::jobs::spawn(live.clone(), shutdown.clone()).context("spawning a job thread")?;
            slots.insert(
                name,
                Slot { tx, thread: std::sync::Mutex::new(Some(thread)), job: std::sync::Mutex::new(Some(job)), live },
            );
        }
        if let Err(e) = crate::routes::check_conflicts(&lives) {
            shutdown.store(true, Ordering::SeqCst);
            for slot in slots.values() {
                for t in [&slot.thread, &slot.job] {
                    if let Some(t) = t.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = t.join();
                    }
                }
            }
            return Err(e);
        }
        Ok(Supervisor { store: store.clone(), registry: registry.clone(), slots, shutdown, metrics })
    }

    /// The plugins' shared serving state (HTTP routes, jobs, metrics).
    pub fn lives(&self) -> Vec<Arc<Live>> {
        self.slots.values().map(|s| s.live.clone()).collect()
    }

    /// Plugins that are not at the chain tip (halted, catching up, or not started): empty when
    /// the engine is ready.
    pub fn not_ready(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|(_, s)| {
                s.live.metrics.at_tip.get() != 1 || matches!(s.live.serving().store.status(), Ok(Status::Halted { .. }))
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.slots.keys().cloned().collect()
    }

    pub fn status(&self) -> Result<Vec<PluginStatus>> {
        self.slots.keys().map(|n| plugin_status(&self.store, &self.registry, n)).collect()
    }

    pub fn plugin_status(&self, name: &str) -> Result<PluginStatus> {
        self.slot(name)?;
        plugin_status(&self.store, &self.registry, name)
    }

    fn slot(&self, name: &str) -> Result<&Slot> {
        self.slots
            .get(name)
            .ok_or_else(|| anyhow!("no plugin named {name:?}; the engine runs: {}", self.names().join(", ")))
    }

    /// Upgrades `name` at its next block boundary; waits for the outcome.
    pub fn upgrade(&self, name: &str, wasm: Vec<u8>, mode: Mode) -> Result<UpgradeOutcome> {
        let (reply, rx) = channel();
        self.slot(name)?
            .tx
            .send(Cmd::Upgrade { wasm, mode, reply })
            .map_err(|_| anyhow!("plugin {name} is stopped"))?;
        wait(rx, name)
    }

    pub fn rewind(&self, name: &str, height: u32) -> Result<RewindOutcome> {
        let (reply, rx) = channel();
        self.slot(name)?.tx.send(Cmd::Rewind { height, reply }).map_err(|_| anyhow!("plugin {name} is stopped"))?;
        wait(rx, name)
    }

    /// Stops every plugin at its next block boundary and waits for them.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for slot in self.slots.values() {
            for t in [&slot.thread, &slot.job] {
                let thread = t.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(t) = thread {
                    let _ = t.join();
                }
            }
        }
    }
}

fn wait<T>(rx: Receiver<Result<T, String>>, name: &str) -> Result<T> {
    // A block in progress finishes first; plugin timeouts bound it.
    match rx.recv_timeout(Duration::from_secs(600)) {
        Ok(r) => r.map_err(|e| anyhow!(e)),
        Err(_) => bail!("plugin {name} did not reach a block boundary within 10 minutes"),
    }
}

struct Shadow {
    record: Rebuild,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<PluginRunner>>,
}

struct Worker {
    name: String,
    spec: PluginSpec,
    store: Store,
    registry: Registry,
    fetcher: Fetcher,
    source: FetchHandle,
    runner: PluginRunner,
    rx: Receiver<Cmd>,
    tx: Sender<Cmd>,
    shadow: Option<Shadow>,
    shutdown: Arc<AtomicBool>,
    poll: Duration,
    live: Arc<Live>,
}

impl Worker {
    fn run(mut self) {
        let mut progress = ProgressLog::new(&self.name);
        let mut failing = false;
        // Blocks undone in a row (a reorg or rewind in progress).
        let mut undoing = 0i64;
        let m = self.live.metrics.clone();
        while !self.shutdown.load(Ordering::SeqCst) {
            while let Ok(cmd) = self.rx.try_recv() {
                self.handle(cmd);
            }
            let halted = matches!(self.runner.status(), Ok(Status::Halted { .. }));
            if halted {
                self.idle();
                continue;
            }
            let step = follower::step(&mut self.source, &mut self.runner, self.spec.start_height);
            if !matches!(step, Ok(Progress::Undone(_))) && undoing > 0 {
                m.reorgs.inc();
                m.undo_depth.set(undoing);
                undoing = 0;
            }
            match step {
                Ok(Progress::Applied(h)) => {
                    failing = false;
                    m.at_tip.set(0);
                    progress.tick(h, &mut self.source, Some(&m));
                }
                Ok(Progress::Undone(h)) => {
                    failing = false;
                    undoing += 1;
                    m.at_tip.set(0);
                    progress.tick(h, &mut self.source, Some(&m));
                }
                Ok(Progress::AtTip) => {
                    failing = false;
                    m.at_tip.set(1);
                    m.tip_lag.set(0);
                    if let Ok(Some(c)) = self.runner.cursor() {
                        m.height.set(c.height as i64);
                    }
                    progress.at_tip(&self.runner);
                    self.idle();
                }
                Ok(Progress::Raced) => {}
                Err(e) => {
                    if matches!(self.runner.status(), Ok(Status::Halted { .. })) {
                        // The runner logged the fault in full; status shows it.
                        tracing::debug!("{}: {e:#}", self.name);
                    } else if !failing {
                        tracing::warn!("{}: {e:#}; retrying every {:?}", self.name, self.poll);
                        failing = true;
                    } else {
                        tracing::debug!("{}: {e:#}", self.name);
                    }
                    self.idle();
                }
            }
        }
        if let Some(s) = self.shadow.take() {
            s.stop.store(true, Ordering::SeqCst);
            let _ = s.thread.join();
        }
    }

    /// Waits for a command or the poll interval.
    fn idle(&mut self) {
        match self.rx.recv_timeout(self.poll) {
            Ok(cmd) => self.handle(cmd),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Upgrade { wasm, mode, reply } => {
                let r = self.upgrade(wasm, mode).map_err(|e| format!("{e:#}"));
                if let Err(e) = &r {
                    tracing::error!("{}: upgrade failed: {e}", self.name);
                }
                let _ = reply.send(r);
            }
            Cmd::Rewind { height, reply } => {
                let r = self.rewind(height).map_err(|e| format!("{e:#}"));
                let _ = reply.send(r);
            }
            // A rebuild replaced in the meantime may still report: only the current one counts.
            Cmd::ShadowReady(ns) if self.shadow.as_ref().is_some_and(|s| s.record.namespace == ns) => {
                if let Err(e) = self.take_over() {
                    tracing::error!("{}: takeover by the rebuilt version failed: {e:#}", self.name);
                }
            }
            Cmd::ShadowReady(_) => {}
        }
    }

    fn upgrade(&mut self, wasm: Vec<u8>, mode: Mode) -> Result<UpgradeOutcome> {
        let t0 = Instant::now();
        let code = PluginCode::load(&self.spec.host, &self.name, &wasm, &self.spec.config, self.store.undo_window())?;
        let wasm_hash = self.registry.put_wasm(&wasm)?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let version = hex::encode(code.version);
        self.cancel_shadow()?;
        match mode {
            Mode::Keep => {
                let height = self.runner.cursor()?.map(|c| c.height);
                let namespace = self.runner.store().name().to_string();
                self.runner.swap_code(code)?;
                self.live.set_serving(self.runner.serving());
                let runtime_wasm = self.registry.active(&self.name)?.and_then(|a| a.runtime_wasm);
                let record = Active {
                    namespace,
                    wasm: wasm_hash.clone(),
                    version: version.clone(),
                    since_height: height,
                    runtime_wasm,
                };
                self.registry.set_active(&self.name, &record)?;
                let activation_ms = t1.elapsed().as_secs_f64() * 1e3;
                tracing::info!(
                    "{}: upgraded to version {} keeping state at height {height:?} ({activation_ms:.1} ms)",
                    self.name,
                    &version[..16]
                );
                Ok(UpgradeOutcome {
                    plugin: self.name.clone(),
                    mode,
                    version,
                    wasm: wasm_hash,
                    height,
                    load_ms,
                    activation_ms,
                })
            }
            Mode::Rebuild => {
                let namespace = Registry::new_namespace(&self.name, &version, self.runner.store().name());
                // A namespace left from an earlier attempt at the same version starts over.
                self.store.drop_plugin(&namespace)?;
                let record = Rebuild { namespace, wasm: wasm_hash.clone(), version: version.clone() };
                self.registry.set_rebuild(&self.name, Some(&record))?;
                self.start_shadow(record, code)?;
                let activation_ms = t1.elapsed().as_secs_f64() * 1e3;
                tracing::info!(
                    "{}: rebuilding version {} from height {} in the background",
                    self.name,
                    &version[..16],
                    self.spec.start_height
                );
                Ok(UpgradeOutcome {
                    plugin: self.name.clone(),
                    mode,
                    version,
                    wasm: wasm_hash,
                    height: None,
                    load_ms,
                    activation_ms,
                })
            }
        }
    }

    fn start_shadow(&mut self, record: Rebuild, code: PluginCode) -> Result<()> {
        let ps = self.spec.namespace(&self.store, &record.namespace).muted(true);
        let runner = PluginRunner::new(&self.name, ps, code, self.spec.start_height)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = ShadowCtx {
            name: self.name.clone(),
            source: self.fetcher.handle(),
            live: self.runner.store().clone(),
            start_height: self.spec.start_height,
            notify: self.tx.clone(),
            stop: stop.clone(),
            shutdown: self.shutdown.clone(),
            poll: self.poll,
        };
        let thread = std::thread::Builder::new()
            .name(format!("rebuild-{}", self.name))
            .spawn(move || ctx.run(runner))
            .context("spawning the rebuild thread")?;
        self.shadow = Some(Shadow { record, stop, thread });
        Ok(())
    }

    /// Stops and forgets a rebuild in progress (a newer upgrade replaces it).
    fn cancel_shadow(&mut self) -> Result<()> {
        if let Some(s) = self.shadow.take() {
            s.stop.store(true, Ordering::SeqCst);
            let _ = s.thread.join();
            self.registry.set_rebuild(&self.name, None)?;
            self.store.drop_plugin(&s.record.namespace)?;
            tracing::info!("{}: abandoned the rebuild of version {}", self.name, &s.record.version[..16]);
        }
        Ok(())
    }

    fn take_over(&mut self) -> Result<()> {
        let Some(shadow) = self.shadow.take() else { return Ok(()) };
        let t0 = Instant::now();
        shadow.stop.store(true, Ordering::SeqCst);
        let mut new = shadow.thread.join().map_err(|_| anyhow!("the rebuild thread panicked"))??;
        let live_halted = matches!(self.runner.status()?, Status::Halted { .. });
        // Bring both versions to the same block: the old one publishes up to it, the new one
        // after it.
        let start = self.spec.start_height;
        for _ in 0..100_000 {
            let (l, n) = (self.runner.cursor()?, new.cursor()?);
            if l == n || live_halted {
                break;
            }
            let (lh, nh) = (l.map(|c| c.height as i64).unwrap_or(-1), n.map(|c| c.height as i64).unwrap_or(-1));
            if lh <= nh {
                if let Err(e) = follower::step(&mut self.source, &mut self.runner, start) {
                    if matches!(self.runner.status()?, Status::Halted { .. }) {
                        break;
                    }
                    return Err(e).context("bringing the old version to the rebuild's block");
                }
            }
            if nh <= lh {
                follower::step(&mut self.source, &mut new, start).context("bringing the rebuild to the tip")?;
            }
        }
        new.set_muted(false);
        let height = new.cursor()?.map(|c| c.height);
        let record = Active {
            namespace: shadow.record.namespace.clone(),
            wasm: shadow.record.wasm.clone(),
            version: shadow.record.version.clone(),
            since_height: height,
            runtime_wasm: self.registry.active(&self.name)?.and_then(|a| a.runtime_wasm),
        };
        self.registry.take_over(&self.name, &record)?;
        new.store().raise_message_count(self.runner.store().message_count()?)?;
        new.set_metrics(self.live.metrics.clone());
        let old = std::mem::replace(&mut self.runner, new);
        self.live.set_serving(self.runner.serving());
        self.store.drop_plugin(old.store().name())?;
        tracing::info!(
            "{}: version {} took over at height {height:?} ({:.1} ms)",
            self.name,
            &record.version[..16],
            t0.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    }

    fn rewind(&mut self, height: u32) -> Result<RewindOutcome> {
        let undone = self.runner.rewind(height, &mut self.source)?;
        if matches!(self.runner.status()?, Status::Halted { .. }) {
            self.runner.store().set_status(&Status::Active)?;
        }
        let now = self.runner.cursor()?.map(|c| c.height);
        tracing::info!("{}: rewound {undone} blocks to height {now:?}", self.name);
        Ok(RewindOutcome { plugin: self.name.clone(), height: now, undone })
    }
}

struct ShadowCtx {
    name: String,
    source: FetchHandle,
    /// The live version's namespace: while it is halted, the rebuild publishes above its cursor.
    live: PluginStore,
    start_height: u32,
    notify: Sender<Cmd>,
    stop: Arc<AtomicBool>,
    shutdown: Arc<AtomicBool>,
    poll: Duration,
}

impl ShadowCtx {
    fn run(mut self, mut runner: PluginRunner) -> Result<PluginRunner> {
        let mut notified = false;
        let label = format!("{} (rebuild)", self.name);
        let mut progress = ProgressLog::new(&label);
        while !self.stop.load(Ordering::SeqCst) && !self.shutdown.load(Ordering::SeqCst) {
            if matches!(runner.status()?, Status::Halted { .. }) {
                std::thread::sleep(self.poll);
                continue;
            }
            let next = runner.cursor()?.map_or(self.start_height, |c| c.height + 1);
            let live_halted_below = match (self.live.status()?, self.live.cursor()?) {
                (Status::Halted { .. }, Some(c)) => next > c.height,
                (Status::Halted { .. }, None) => true,
                _ => false,
            };
            runner.set_muted(!live_halted_below);
            match follower::step(&mut self.source, &mut runner, self.start_height) {
                Ok(Progress::AtTip) => {
                    if !notified {
                        let _ = self.notify.send(Cmd::ShadowReady(runner.store().name().to_string()));
                        notified = true;
                    }
                    std::thread::sleep(self.poll.min(Duration::from_millis(100)));
                }
                Ok(Progress::Applied(h)) | Ok(Progress::Undone(h)) => progress.tick(h, &mut self.source, None),
                Ok(Progress::Raced) => {}
                Err(e) => {
                    tracing::warn!("{label}: {e:#}");
                    std::thread::sleep(self.poll);
                }
            }
        }
        Ok(runner)
    }
}
