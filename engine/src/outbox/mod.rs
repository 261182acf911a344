//! Delivery of the outbox: every message a block committed reaches every configured sink, at
//! least once, in outbox order (so in block order per queue), with a stable id.
//!
//! - One task per sink reads the outbox from the ack floor, delivers, and reports the highest
//!   sequence its sink has durably taken (RabbitMQ: publisher confirm; jsonl: fsync).
//! - [`Acks`] removes an outbox entry only once EVERY sink has taken it, in one synced batch
//!   per stretch of confirms (never one write per message).
//! - A sink that fails (broker down, channel closed, nack) reconnects with backoff and resends
//!   from its last confirmed sequence: duplicates are possible, loss is not. Consumers dedupe on
//!   the message id (`<plugin>:<height>:<block hash>:<n>`, see `OutboxEntry::message_id`).
//! - A crash (even kill -9) keeps every unacknowledged entry; the next start resends them.

pub mod jsonl;
pub mod rabbitmq;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::store::Store;

/// A sink from the runtime file (`[[sink]]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// RabbitMQ with the legacy Phase-1 topology (see [`rabbitmq`]).
    Rabbitmq {
        /// e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`
        url: String,
        /// `quorum` (Phase-1's default) or `classic`.
        #[serde(default = "default_queue_type")]
        queue_type: String,
        /// Publishes awaiting their confirm, at most.
        #[serde(default = "default_in_flight")]
        max_in_flight: usize,
    },
    /// One file per queue, `<dir>/<queue>.jsonl`, one JSON line per message.
    Jsonl { dir: std::path::PathBuf },
}

fn default_queue_type() -> String {
    "quorum".into()
}
fn default_in_flight() -> usize {
    4096
}

impl SinkConfig {
    pub fn describe(&self) -> String {
        match self {
            SinkConfig::Rabbitmq { url, queue_type, .. } => {
                format!("rabbitmq {} ({queue_type} queues)", rabbitmq::redact(url))
            }
            SinkConfig::Jsonl { dir } => format!("jsonl files in {}", dir.display()),
        }
    }

    pub fn check(&self) -> Result<()> {
        match self {
            SinkConfig::Rabbitmq { url, queue_type, max_in_flight } => {
                if !url.starts_with("amqp://") {
                    anyhow::bail!("[[sink]] rabbitmq: url {url:?} must start with amqp:// (e.g. amqp://guest:guest@127.0.0.1:5672/%2f)");
                }
                if queue_type != "quorum" && queue_type != "classic" {
                    anyhow::bail!("[[sink]] rabbitmq: queue_type {queue_type:?} must be \"quorum\" or \"classic\"");
                }
                if *max_in_flight == 0 {
                    anyhow::bail!("[[sink]] rabbitmq: max_in_flight must be at least 1");
                }
                Ok(())
            }
            SinkConfig::Jsonl { .. } => Ok(()),
        }
    }
}

/// Live figures of one sink (for /metrics and status).
#[derive(Debug, Default)]
pub struct SinkStats {
    pub name: String,
    /// Messages the sink confirmed since start.
    pub delivered: AtomicU64,
    /// Publishes sent and not yet confirmed.
    pub in_flight: AtomicU64,
    /// Reconnections after a failure.
    pub reconnects: AtomicU64,
    /// 1 while connected / writable.
    pub up: AtomicU64,
}

/// Tracks what each sink has taken and removes entries every sink has.
pub struct Acks {
    store: Store,
    /// Per sink: the next sequence it still needs (everything below is confirmed).
    done: Mutex<Vec<u64>>,
}

impl Acks {
    fn new(store: Store, sinks: usize) -> Acks {
        let (floor, _) = store.outbox_bounds();
        Acks { store, done: Mutex::new(vec![floor; sinks]) }
    }

    /// Sink `i` has taken everything below `next`; entries all sinks have are removed durably.
    pub fn confirmed(&self, i: usize, next: u64) -> Result<()> {
        let min = {
            let mut d = self.done.lock().unwrap_or_else(|p| p.into_inner());
            d[i] = d[i].max(next);
            d.iter().copied().min().unwrap_or(next)
        };
        let (floor, _) = self.store.outbox_bounds();
        if min > floor {
            self.store.outbox_ack(min - 1).context("removing delivered outbox entries")?;
        }
        Ok(())
    }

    /// Where sink `i` resumes (its first unconfirmed sequence).
    pub fn resume_at(&self, i: usize) -> u64 {
        let (floor, _) = self.store.outbox_bounds();
        self.done.lock().unwrap_or_else(|p| p.into_inner())[i].max(floor)
    }
}

/// The running publisher: one thread with an async runtime, one task per sink.
pub struct Publisher {
    pub stats: Vec<Arc<SinkStats>>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    store: Store,
}

/// How sink tasks read the outbox.
pub(crate) const READ_BATCH: usize = 2048;

impl Publisher {
    /// Starts delivering `store`'s outbox to `sinks`. `queues` are declared up front (RabbitMQ).
    pub fn start(store: &Store, sinks: Vec<SinkConfig>, queues: Vec<String>) -> Result<Publisher> {
        for s in &sinks {
            s.check()?;
        }
        let acks = Arc::new(Acks::new(store.clone(), sinks.len()));
        let stats: Vec<Arc<SinkStats>> =
            sinks.iter().map(|s| Arc::new(SinkStats { name: s.describe(), ..Default::default() })).collect();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the publisher runtime")?;
        let mut jsonl = Vec::new();
        for (i, s) in sinks.iter().enumerate() {
            if let SinkConfig::Jsonl { dir } = s {
                jsonl.push((i, jsonl::JsonlSink::open(dir)?));
            }
        }
        let st = stats.clone();
        let store2 = store.clone();
        let thread = std::thread::Builder::new()
            .name("publisher".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut tasks = Vec::new();
                    let mut jsonl = jsonl.into_iter();
                    for (i, s) in sinks.into_iter().enumerate() {
                        let (acks, stats, stopped, store) =
                            (acks.clone(), st[i].clone(), stopped.clone(), store2.clone());
                        match s {
                            SinkConfig::Rabbitmq { url, queue_type, max_in_flight } => {
                                let cfg =
                                    rabbitmq::RabbitConfig { url, queue_type, max_in_flight, queues: queues.clone() };
                                tasks.push(tokio::spawn(rabbitmq::run(cfg, store, i, acks, stats, stopped)));
                            }
                            SinkConfig::Jsonl { .. } => {
                                let (_, sink) = jsonl.next().expect("opened above");
                                tasks.push(tokio::spawn(jsonl::run(sink, store, i, acks, stats, stopped)));
                            }
                        }
                    }
                    for t in tasks {
                        let _ = t.await;
                    }
                })
            })
            .context("starting the publisher thread")?;
        Ok(Publisher { stats, stop, thread: Some(thread), store: store.clone() })
    }

    /// Undelivered outbox entries (upper bound).
    pub fn depth(&self) -> u64 {
        let (floor, next) = self.store.outbox_bounds();
        next - floor
    }

    /// Waits up to `grace` for the outbox to drain, then stops the sinks (what is left is sent
    /// at the next start).
    pub fn shutdown(mut self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        while self.depth() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.depth();
        if left > 0 {
            tracing::warn!(left, "stopping with undelivered messages; they are sent at the next start");
        }
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the outbox has entries at or above `next`, or stop; false on stop.
pub(crate) async fn wait_for_entries(
    tip: &mut tokio::sync::watch::Receiver<u64>,
    next: u64,
    stopped: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    loop {
        if *stopped.borrow() {
            return false;
        }
        if *tip.borrow_and_update() > next {
            return true;
        }
        tokio::select! {
            r = tip.changed() => if r.is_err() { return false },
            _ = stopped.changed() => {}
        }
    }
}

/// Sleeps `d` unless stopped first; false on stop.
pub(crate) async fn pause(d: Duration, stopped: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    if *stopped.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stopped.changed() => !*stopped.borrow(),
    }
}
