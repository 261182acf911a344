//! The `jsonl` sink: one file per queue, `<dir>/<queue>.jsonl`, one line per message:
//! `{"message_id":"…","seq":N,"queue":"…","body":"<the body as text>"}` (`body_base64` instead
//! of `body` when the body is not UTF-8). Lines are appended and fsynced before the entries are
//! acknowledged. At start the last line of each file tells which sequence it already holds, so a
//! crash between the write and the ack never duplicates a line: this sink is exactly once.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{Acks, SinkStats, READ_BATCH};
use crate::store::{OutboxEntry, Store};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    pub message_id: String,
    pub seq: u64,
    pub queue: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

impl Line {
    pub fn of(e: &OutboxEntry) -> Line {
        let (body, body_base64) = match std::str::from_utf8(&e.body) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (None, Some(base64(&e.body))),
        };
        Line { message_id: e.message_id(), seq: e.seq, queue: e.queue.clone(), body, body_base64 }
    }
}

pub struct JsonlSink {
    dir: PathBuf,
    files: BTreeMap<String, File>,
    /// Per queue: the highest sequence already in its file.
    written: BTreeMap<String, u64>,
}

impl JsonlSink {
    /// Opens `dir` (created if missing) and reads the last sequence of every `*.jsonl` in it.
    pub fn open(dir: &Path) -> Result<JsonlSink> {
        std::fs::create_dir_all(dir).with_context(|| format!("[[sink]] jsonl: creating {}", dir.display()))?;
        let mut written = BTreeMap::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let Some(queue) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            if let Some(seq) = last_seq(&path)? {
                written.insert(queue.to_string(), seq);
            }
        }
        Ok(JsonlSink { dir: dir.to_path_buf(), files: BTreeMap::new(), written })
    }

    fn file(&mut self, queue: &str) -> Result<&mut File> {
        if !self.files.contains_key(queue) {
            if queue.is_empty() || queue.contains(['/', '\\', '\0']) || queue.starts_with('.') {
                bail!("queue name {queue:?} cannot be a file name for the jsonl sink");
            }
            let path = self.dir.join(format!("{queue}.jsonl"));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            self.files.insert(queue.to_string(), f);
        }
        Ok(self.files.get_mut(queue).expect("inserted above"))
    }

    /// Appends the entries a file does not hold yet and fsyncs the files written.
    pub fn write(&mut self, entries: &[OutboxEntry]) -> Result<usize> {
        let mut touched: BTreeMap<String, (Vec<u8>, u64)> = BTreeMap::new();
        for e in entries {
            if self.written.get(&e.queue).is_some_and(|&s| s >= e.seq) {
                continue;
            }
            let (buf, last) = touched.entry(e.queue.clone()).or_default();
            serde_json::to_writer(&mut *buf, &Line::of(e))?;
            buf.push(b'\n');
            *last = e.seq;
        }
        let n = touched.len();
        for (queue, (buf, last)) in touched {
            let f = self.file(&queue)?;
            f.write_all(&buf).and_then(|_| f.sync_data()).with_context(|| format!("appending to {queue}.jsonl"))?;
            self.written.insert(queue, last);
        }
        Ok(n)
    }
}

/// The `seq` of the last complete line of `path` (a torn last line from a crash is cut off).
fn last_seq(path: &Path) -> Result<Option<u64>> {
    let mut f =
        OpenOptions::new().read(true).write(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f.metadata()?.len();
    let tail = len.min(1 << 20);
    f.seek(SeekFrom::Start(len - tail))?;
    let mut buf = Vec::with_capacity(tail as usize);
    f.read_to_end(&mut buf)?;
    // A last line without its newline was torn by a crash: cut it (its entry was not acked).
    let complete = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    if complete < buf.len() {
        f.set_len(len - (buf.len() - complete) as u64)?;
        f.sync_data()?;
        tracing::warn!(file = %path.display(), "cut a torn last line left by a crash");
    }
    let lines = &buf[..complete];
    let last = lines.strip_suffix(b"\n").unwrap_or(lines);
    let start = last.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if last[start..].is_empty() {
        return Ok(None);
    }
    let line: Line = serde_json::from_slice(&last[start..])
        .with_context(|| format!("{}: the last line is not a message line; move the file away", path.display()))?;
    Ok(Some(line.seq))
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The sink task: read, append, fsync, acknowledge; on an I/O error wait and retry.
pub async fn run(
    mut sink: JsonlSink,
    store: Store,
    index: usize,
    acks: Arc<Acks>,
    stats: Arc<SinkStats>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut tip = store.outbox_watch();
    stats.up.store(1, Ordering::Relaxed);
    loop {
        let next = acks.resume_at(index);
        let entries = match store.outbox_read(next, READ_BATCH) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("jsonl sink: reading the outbox: {e:#}");
                if !super::pause(Duration::from_secs(1), &mut stopped).await {
                    return;
                }
                continue;
            }
        };
        let Some(last) = entries.last().map(|e| e.seq) else {
            if !super::wait_for_entries(&mut tip, next, &mut stopped).await {
                return;
            }
            continue;
        };
        match sink.write(&entries) {
            Ok(_) => {
                stats.delivered.fetch_add(entries.len() as u64, Ordering::Relaxed);
                if let Err(e) = acks.confirmed(index, last + 1) {
                    tracing::error!("jsonl sink: {e:#}");
                }
            }
            Err(e) => {
                stats.up.store(0, Ordering::Relaxed);
                tracing::error!("jsonl sink: {e:#}; retrying in 1 s");
                if !super::pause(Duration::from_secs(1), &mut stopped).await {
                    return;
                }
                // Reopen: re-reads what each file holds and cuts a torn last line.
                match JsonlSink::open(&sink.dir) {
                    Ok(s) => {
                        sink = s;
                        stats.up.store(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::error!("jsonl sink: {e:#}"),
                }
            }
        }
    }
}
