//! The queue side, as a legacy consumer sees it: a consumer on each Phase-1 queue of the
//! RabbitMQ broker (or the jsonl sink's files without RabbitMQ), keeping every message with its
//! message id so the demo can show that none is lost or duplicated.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;

use crate::deployment::QUEUES;

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub queue: String,
    /// `<plugin>:<height>:<block hash>:<n>`: deterministic, so a duplicate shows.
    pub message_id: String,
    pub body: Value,
    /// Delivery order on its queue (the consumer's delivery tag; the line number of a file).
    order: u64,
}

impl Msg {
    /// The block height in the message id.
    pub fn height(&self) -> u32 {
        self.message_id.split(':').nth(1).and_then(|h| h.parse().ok()).unwrap_or(0)
    }
}

pub enum Tap {
    Rabbit { got: Arc<Mutex<Vec<Msg>>>, errors: Arc<Mutex<Vec<String>>>, _rt: tokio::runtime::Runtime },
    Files(PathBuf),
}

/// Opens and closes one AMQP connection (the broker is up).
pub fn ping(url: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let c = tokio::time::timeout(Duration::from_secs(5), Connection::connect(url, ConnectionProperties::default()))
            .await
            .map_err(|_| anyhow!("timed out"))??;
        let _ = c.close(200, "ok".into()).await;
        Ok(())
    })
}

impl Tap {
    /// Consumes every Phase-1 queue of the broker at `url` from now on.
    pub fn rabbit(url: &str) -> Result<Tap> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let got: Arc<Mutex<Vec<Msg>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let conn = Arc::new(rt.block_on(Connection::connect(url, ConnectionProperties::default()))?);
        for q in QUEUES {
            let (got, errors, conn) = (got.clone(), errors.clone(), conn.clone());
            rt.spawn(async move {
                // A queue exists once the engine's sink declared it; a refused consume closes
                // its channel, so each try opens a new one.
                let consumer = loop {
                    let Ok(ch) = conn.create_channel().await else {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    };
                    match ch
                        .basic_consume(
                            q.into(),
                            format!("phase1-demo-{q}").as_str().into(),
                            BasicConsumeOptions { no_ack: true, ..Default::default() },
                            FieldTable::default(),
                        )
                        .await
                    {
                        Ok(c) => break (ch, c),
                        Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                    }
                };
                let (_channel, consumer) = consumer;
                let q = q.to_string();
                consumer.set_delegate(move |d: lapin::message::DeliveryResult| {
                    let (got, errors, q) = (got.clone(), errors.clone(), q.clone());
                    async move {
                        match d {
                            Ok(Some(d)) => {
                                let id = d.properties.message_id().as_ref().map(|s| s.as_str().to_string());
                                let body = serde_json::from_slice(&d.data).unwrap_or(Value::Null);
                                // Delegates may run concurrently: the delivery tag keeps the order.
                                let m =
                                    Msg { queue: q, message_id: id.unwrap_or_default(), body, order: d.delivery_tag };
                                got.lock().unwrap().push(m);
                            }
                            Ok(None) => {}
                            Err(e) => errors.lock().unwrap().push(format!("consuming {q}: {e}")),
                        }
                    }
                });
                // Keep the channel alive with the runtime.
                std::future::pending::<()>().await;
            });
        }
        Ok(Tap::Rabbit { got, errors, _rt: rt })
    }

    pub fn files(dir: PathBuf) -> Tap {
        Tap::Files(dir)
    }

    /// Every message delivered on `queue` so far, in delivery order.
    pub fn messages(&self, queue: &str) -> Result<Vec<Msg>> {
        match self {
            Tap::Rabbit { got, errors, .. } => {
                if let Some(e) = errors.lock().unwrap().first() {
                    return Err(anyhow!("{e}"));
                }
                let mut v: Vec<Msg> = got.lock().unwrap().iter().filter(|m| m.queue == queue).cloned().collect();
                v.sort_by_key(|m| m.order);
                Ok(v)
            }
            Tap::Files(dir) => {
                let text = std::fs::read_to_string(dir.join(format!("{queue}.jsonl"))).unwrap_or_default();
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .enumerate()
                    .map(|(i, l)| {
                        let line: Value = serde_json::from_str(l)?;
                        let body = serde_json::from_str(line["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
                        Ok(Msg {
                            queue: queue.to_string(),
                            message_id: line["message_id"].as_str().unwrap_or_default().to_string(),
                            body,
                            order: i as u64,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Every message on every queue.
    pub fn all(&self) -> Result<Vec<Msg>> {
        let mut v = Vec::new();
        for q in QUEUES {
            v.extend(self.messages(q)?);
        }
        Ok(v)
    }
}
