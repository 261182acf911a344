//! The `rabbitmq` sink: publishes over AMQP 0.9.1 (lapin) with the legacy Phase-1 topology, so
//! the staking API and the expiry checker consume the messages unchanged
//! (`babylon-phase1-spec.md` section 5):
//!
//! - exchange `common_dlx` (direct, durable); per queue `Q`: `Q` (durable, `x-queue-type`,
//!   dead-lettering to `common_dlx` with key `Q_routing_key`) and `Q_delay` (durable, same type,
//!   dead-lettering back to `Q` through the default exchange), `Q_delay` bound to `common_dlx`
//!   with `Q_routing_key`;
//! - publish to the default exchange with routing key `Q`, `mandatory`, persistent
//!   (`delivery_mode` 2), `content_type` `text/plain`, header `x-processing-attempts` = 0 (int32),
//!   and `message_id` = the entry's deterministic id.
//!
//! Publisher confirms are pipelined: up to `max_in_flight` publishes await their confirm at once;
//! confirms are taken in order and acknowledged to the outbox in stretches. A nack, a return
//! (unroutable), a closed channel or a lost connection ends the session: the sink reconnects with
//! backoff and resends everything from its first unconfirmed entry (same ids). After a nack or a
//! return of one message while later ones were accepted, the resend puts it after them: order per
//! queue holds for connection failures (the common case), not for a single refused message.
//! Phase-1's consumers do not rely on order (spec 5.3); they are idempotent.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use lapin::{Confirmation, PublisherConfirm};

use super::{Acks, SinkStats, READ_BATCH};
use crate::store::{OutboxEntry, Store};

pub const DLX: &str = "common_dlx";

#[derive(Debug, Clone)]
pub struct RabbitConfig {
    pub url: String,
    pub queue_type: String,
    pub max_in_flight: usize,
    /// Declared at every (re)connect.
    pub queues: Vec<String>,
}

/// The URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            let user = cred.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// Declares the legacy topology for `queue` on `ch` (the shared `common_dlx` exchange included).
pub async fn declare_queue(ch: &Channel, queue: &str, queue_type: &str) -> Result<()> {
    declare_dlx(ch).await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut main = FieldTable::default();
    main.insert("x-queue-type".into(), long_string(queue_type));
    main.insert("x-dead-letter-exchange".into(), long_string(DLX));
    main.insert("x-dead-letter-routing-key".into(), long_string(&format!("{queue}_routing_key")));
    ch.queue_declare(queue.into(), durable, main).await.with_context(|| format!("declaring queue {queue}"))?;
    let delay = format!("{queue}_delay");
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string(queue_type));
    args.insert("x-dead-letter-exchange".into(), long_string(""));
    args.insert("x-dead-letter-routing-key".into(), long_string(queue));
    ch.queue_declare(delay.as_str().into(), durable, args).await.with_context(|| format!("declaring queue {delay}"))?;
    ch.queue_bind(
        delay.as_str().into(),
        DLX.into(),
        format!("{queue}_routing_key").as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("binding {delay} to {DLX}"))?;
    Ok(())
}

/// The AMQP properties of one outbox entry (what the legacy consumers expect, plus the id).
pub fn properties(e: &OutboxEntry) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("x-processing-attempts".into(), AMQPValue::LongInt(0));
    BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(e.message_id()))
        .with_headers(headers)
}

struct Session {
    _conn: Connection,
    ch: Channel,
}

async fn declare_dlx(ch: &Channel) -> Result<()> {
    ch.exchange_declare(
        DLX.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("declaring exchange {DLX}"))
}

async fn connect(cfg: &RabbitConfig) -> Result<Session> {
    let conn = Connection::connect(&cfg.url, ConnectionProperties::default())
        .await
        .map_err(|e| anyhow!("connecting to {}: {e}", redact(&cfg.url)))?;
    let ch = conn.create_channel().await.context("opening a channel")?;
    for q in &cfg.queues {
        declare_queue(&ch, q, &cfg.queue_type).await?;
    }
    ch.confirm_select(ConfirmSelectOptions::default()).await.context("enabling publisher confirms")?;
    Ok(Session { _conn: conn, ch })
}

/// The sink task: connect, stream the outbox with pipelined confirms, reconnect on failure.
pub async fn run(
    cfg: RabbitConfig,
    store: Store,
    index: usize,
    acks: Arc<Acks>,
    stats: Arc<SinkStats>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut declared: Vec<String> = cfg.queues.clone();
    let mut failures = 0u32;
    loop {
        if *stopped.borrow() {
            return;
        }
        let mut c = cfg.clone();
        c.queues = declared.clone();
        let session = match connect(&c).await {
            Ok(s) => s,
            Err(e) => {
                failures += 1;
                // Say it once, then every 10th attempt (a broker being down is loud enough).
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!("rabbitmq sink: {e:#}; retrying (attempt {failures})");
                }
                if !super::pause(backoff, &mut stopped).await {
                    return;
                }
                // A local broker restarting is back within seconds: retry at least every second.
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if failures > 0 {
            tracing::info!("rabbitmq sink: connected to {} after {failures} failed attempts", redact(&cfg.url));
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        backoff = Duration::from_millis(100);
        stats.up.store(1, Ordering::Relaxed);
        let x = Streaming { s: &session, cfg: &cfg, store: &store, index, acks: &acks, stats: &stats };
        let r = stream(&x, &mut stopped, &mut declared).await;
        stats.up.store(0, Ordering::Relaxed);
        stats.in_flight.store(0, Ordering::Relaxed);
        match r {
            Ok(()) => return, // stopped
            Err(e) => {
                tracing::warn!("rabbitmq sink: {e:#}; reconnecting and resending from the first unconfirmed message");
                failures = 1;
                if !super::pause(Duration::from_millis(200), &mut stopped).await {
                    return;
                }
            }
        }
    }
}

/// What one session streams with.
#[derive(Clone, Copy)]
struct Streaming<'a> {
    s: &'a Session,
    cfg: &'a RabbitConfig,
    store: &'a Store,
    index: usize,
    acks: &'a Acks,
    stats: &'a SinkStats,
}

/// Publishes from the sink's resume point until stopped (Ok) or a failure (Err). On a failure
/// what was confirmed before it is still acknowledged, so only unconfirmed messages are resent.
async fn stream(
    x: &Streaming<'_>,
    stopped: &mut tokio::sync::watch::Receiver<bool>,
    declared: &mut Vec<String>,
) -> Result<()> {
    let mut confirmed_upto = None;
    let r = stream_inner(x, stopped, declared, &mut confirmed_upto).await;
    if r.is_err() {
        if let Some(c) = confirmed_upto {
            if let Err(e) = x.acks.confirmed(x.index, c + 1) {
                tracing::error!("rabbitmq sink: {e:#}");
            }
        }
    }
    r
}

async fn stream_inner(
    x: &Streaming<'_>,
    stopped: &mut tokio::sync::watch::Receiver<bool>,
    declared: &mut Vec<String>,
    confirmed_upto: &mut Option<u64>,
) -> Result<()> {
    let Streaming { s, cfg, store, index, acks, stats } = *x;
    let mut tip = store.outbox_watch();
    // Next sequence to read, and the publishes awaiting their confirm (in order).
    let mut next = acks.resume_at(index);
    let mut in_flight: VecDeque<(u64, PublisherConfirm)> = VecDeque::new();
    let mut buffered: VecDeque<OutboxEntry> = VecDeque::new();
    let mut last_ack = Instant::now();
    loop {
        if *stopped.borrow() {
            return Ok(());
        }
        // Fill the window.
        while in_flight.len() < cfg.max_in_flight {
            if buffered.is_empty() {
                buffered.extend(store.outbox_read(next, READ_BATCH).context("reading the outbox")?);
                if buffered.is_empty() {
                    break;
                }
            }
            let e = buffered.pop_front().expect("not empty");
            if !declared.contains(&e.queue) {
                declare_queue(&s.ch, &e.queue, &cfg.queue_type).await?;
                declared.push(e.queue.clone());
            }
            let confirm =
                s.ch.basic_publish(
                    "".into(),
                    e.queue.as_str().into(),
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    &e.body,
                    properties(&e),
                )
                .await
                .with_context(|| format!("publishing outbox entry {}", e.seq))?;
            next = e.seq + 1;
            in_flight.push_back((e.seq, confirm));
        }
        stats.in_flight.store(in_flight.len() as u64, Ordering::Relaxed);
        match in_flight.pop_front() {
            Some((seq, confirm)) => {
                match confirm.await.with_context(|| format!("waiting for the confirm of entry {seq}"))? {
                    Confirmation::Ack(None) => {}
                    Confirmation::Ack(Some(ret)) => bail!(
                        "entry {seq} was returned as unroutable ({} {}); declaring its queue again",
                        ret.reply_code,
                        ret.reply_text
                    ),
                    Confirmation::Nack(_) => bail!("the broker refused entry {seq} (nack)"),
                    Confirmation::NotRequested => bail!("publisher confirms are off on the channel"),
                }
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                *confirmed_upto = Some(seq);
                // Acknowledge in stretches: when the window drains or every 2048 / 50 ms.
                let stretch = confirmed_upto.is_some_and(|c| c + 1 - acks.resume_at(index) >= 2048);
                if in_flight.is_empty() || stretch || last_ack.elapsed() > Duration::from_millis(50) {
                    acks.confirmed(index, seq + 1)?;
                    last_ack = Instant::now();
                }
            }
            None => {
                if let Some(c) = confirmed_upto.take() {
                    acks.confirmed(index, c + 1)?;
                }
                if !super::wait_for_entries(&mut tip, next, stopped).await {
                    return Ok(());
                }
            }
        }
    }
}
