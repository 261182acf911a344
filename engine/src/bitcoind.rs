//! bitcoind as a block source: the one place the engine talks to the node. Blocks are fetched
//! raw (`getblock <hash> 0`), never as verbose JSON; every call is retried with backoff while
//! the node is unreachable, so a stopped or restarting bitcoind delays the engine but never
//! makes it skip a height.

use crate::source::BlockSource;
use anyhow::{Context, Result};
use bitcoin::BlockHash;
use bitcoincore_rpc::{Auth, Client, RpcApi};
use std::path::PathBuf;
use std::time::Duration;

/// How to reach bitcoind.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    pub auth: Credentials,
}

#[derive(Debug, Clone)]
pub enum Credentials {
    UserPass(String, String),
    CookieFile(PathBuf),
}

pub struct Bitcoind {
    conn: Connection,
    client: Option<Client>,
    /// Longest wait between retries.
    max_backoff: Duration,
    /// Give up after this long without an answer (None: never).
    give_up_after: Option<Duration>,
}

impl Bitcoind {
    pub fn new(conn: Connection) -> Bitcoind {
        Bitcoind { conn, client: None, max_backoff: Duration::from_secs(5), give_up_after: None }
    }

    pub fn give_up_after(mut self, d: Duration) -> Bitcoind {
        self.give_up_after = Some(d);
        self
    }

    fn client(&mut self) -> Result<&Client> {
        if self.client.is_none() {
            let auth = match &self.conn.auth {
                Credentials::UserPass(u, p) => Auth::UserPass(u.clone(), p.clone()),
                Credentials::CookieFile(f) => Auth::CookieFile(f.clone()),
            };
            self.client = Some(Client::new(&self.conn.url, auth).context("creating the bitcoind RPC client")?);
        }
        Ok(self.client.as_ref().expect("just set"))
    }

    /// Runs `f` until it succeeds; transport errors (node down, restarting, cookie not yet
    /// written) are retried with exponential backoff; RPC errors the node answered are returned.
    fn retry<T>(&mut self, what: &str, f: impl Fn(&Client) -> bitcoincore_rpc::Result<T>) -> Result<T> {
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut warned = false;
        loop {
            let outcome = match self.client() {
                Ok(c) => f(c).map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(v) => {
                    if warned {
                        tracing::info!("bitcoind at {} answers again", self.conn.url);
                    }
                    return Ok(v);
                }
                Err(e) if is_rpc_answer(&e) => return Err(e).with_context(|| format!("bitcoind {what}")),
                Err(e) => {
                    if let Some(limit) = self.give_up_after {
                        if started.elapsed() > limit {
                            return Err(e).with_context(|| {
                                format!("bitcoind at {} unreachable for {:?} ({what})", self.conn.url, limit)
                            });
                        }
                    }
                    if !warned {
                        tracing::warn!("bitcoind at {} unreachable ({e:#}); retrying", self.conn.url);
                        warned = true;
                    }
                    // A cookie may be rewritten on restart: rebuild the client next time.
                    self.client = None;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }
}

/// The node answered with a JSON-RPC error (as opposed to not answering at all).
fn is_rpc_answer(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<bitcoincore_rpc::Error>(),
        Some(bitcoincore_rpc::Error::JsonRpc(bitcoincore_rpc::jsonrpc::Error::Rpc(_)))
    )
}

impl BlockSource for Bitcoind {
    fn tip(&mut self) -> Result<(u32, BlockHash)> {
        // Two calls can straddle a new block; the follower re-checks hashes, so that is harmless.
        let height = self.retry("getblockcount", |c| c.get_block_count())?;
        let hash = self.retry("getblockhash", |c| c.get_block_hash(height))?;
        Ok((height as u32, hash))
    }

    fn hash_at(&mut self, height: u32) -> Result<Option<BlockHash>> {
        match self.retry("getblockhash", |c| c.get_block_hash(height as u64)) {
            Ok(h) => Ok(Some(h)),
            Err(e) if format!("{e:#}").contains("Block height out of range") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>> {
        let hex = self.retry("getblock", |c| c.get_block_hex(hash))?;
        hex::decode(hex.trim()).context("bitcoind returned a block that is not hex")
    }
}

/// One JSON-RPC call for a plugin job (no retry: the job decides). Errors are the text a plugin
/// sees: the node's RPC error, or why it could not be reached.
pub fn call_json(
    conn: &Connection,
    method: &str,
    params: &[serde_json::Value],
) -> std::result::Result<serde_json::Value, String> {
    let auth = match &conn.auth {
        Credentials::UserPass(u, p) => Auth::UserPass(u.clone(), p.clone()),
        Credentials::CookieFile(f) => Auth::CookieFile(f.clone()),
    };
    let client = Client::new(&conn.url, auth).map_err(|e| format!("bitcoind at {}: {e}", conn.url))?;
    client.call::<serde_json::Value>(method, params).map_err(|e| match e {
        bitcoincore_rpc::Error::JsonRpc(bitcoincore_rpc::jsonrpc::Error::Rpc(r)) => {
            format!("bitcoind {method}: {} (code {})", r.message, r.code)
        }
        e => format!("bitcoind {method} at {}: {e}", conn.url),
    })
}
