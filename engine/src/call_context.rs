//! What HTTP handlers and jobs may touch, as [`BlockContext`]s for the Wasm host:
//!
//! | call | chain state (`store`) | `local` | `queue` | `outbound` |
//! |---|---|---|---|---|
//! | read route | snapshot, read-only | snapshot, read-only | traps | traps |
//! | write route | snapshot, read-only | snapshot + own writes, committed if status < 400 | traps | traps |
//! | job | snapshot, read-only | snapshot + own writes, committed if it returns ok | traps | allow-listed |
//!
//! The snapshot is taken when the call starts; every store write is one atomic batch, so it is
//! always at a block boundary.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::plugin_api::{BlockContext, OutboundReply, OutboundRequest};
use crate::store::{PluginStore, Snapshot};

const READ_ONLY_STORE: &str =
    "the chain state (store) is written only by block handlers; HTTP routes and jobs may write `local`";
const READ_ONLY_LOCAL: &str = "local state is read-only in a read route; declare the route with write: true";
const NO_PUBLISH: &str = "only block and undo handlers may publish";

/// A request's or job's view: a snapshot, plus local writes when allowed.
pub struct SnapshotContext<'a> {
    snap: &'a Snapshot<'a>,
    ns: &'a PluginStore,
    /// `None`: read-only.
    local_writes: Option<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    outbound: Option<&'a Outbound>,
    /// First read error (reported as a 500 / failed job).
    pub error: Option<String>,
}

impl<'a> SnapshotContext<'a> {
    pub fn read_only(snap: &'a Snapshot<'a>, ns: &'a PluginStore) -> Self {
        SnapshotContext { snap, ns, local_writes: None, outbound: None, error: None }
    }

    pub fn writer(snap: &'a Snapshot<'a>, ns: &'a PluginStore) -> Self {
        SnapshotContext { snap, ns, local_writes: Some(BTreeMap::new()), outbound: None, error: None }
    }

    pub fn job(snap: &'a Snapshot<'a>, ns: &'a PluginStore, outbound: &'a Outbound) -> Self {
        SnapshotContext { snap, ns, local_writes: Some(BTreeMap::new()), outbound: Some(outbound), error: None }
    }

    /// The local writes made (to commit).
    pub fn take_writes(&mut self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.local_writes.take().unwrap_or_default()
    }

    fn note<T: Default>(&mut self, r: anyhow::Result<T>) -> T {
        r.unwrap_or_else(|e| {
            self.error.get_or_insert_with(|| format!("{e:#}"));
            T::default()
        })
    }
}

impl BlockContext for SnapshotContext<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let r = self.snap.get(self.ns, key);
        self.note(r)
    }
    fn put(&mut self, _: &[u8], _: &[u8]) -> Result<(), String> {
        Err(READ_ONLY_STORE.into())
    }
    fn delete(&mut self, _: &[u8]) -> Result<(), String> {
        Err(READ_ONLY_STORE.into())
    }
    fn scan_prefix(&mut self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let r = self.snap.scan_prefix(self.ns, prefix, after, limit);
        self.note(r)
    }
    fn scan_range(&mut self, start: &[u8], end: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let r = self.snap.scan_range(self.ns, start, end, limit);
        self.note(r)
    }
    fn publish(&mut self, _: &str, _: &[u8]) -> Result<(), String> {
        Err(NO_PUBLISH.into())
    }
    fn local_get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if let Some(v) = self.local_writes.as_ref().and_then(|w| w.get(key)) {
            return Ok(v.clone());
        }
        let r = self.snap.local_get(self.ns, key);
        Ok(self.note(r))
    }
    fn local_put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let w = self.local_writes.as_mut().ok_or(READ_ONLY_LOCAL)?;
        w.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }
    fn local_delete(&mut self, key: &[u8]) -> Result<(), String> {
        let w = self.local_writes.as_mut().ok_or(READ_ONLY_LOCAL)?;
        w.insert(key.to_vec(), None);
        Ok(())
    }
    fn local_scan_prefix(
        &mut self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        let empty = BTreeMap::new();
        let pending = self.local_writes.as_ref().unwrap_or(&empty);
        let r = self.snap.local_scan_prefix(self.ns, prefix, after, pending, limit);
        Ok(self.note(r))
    }
    fn http_request(&mut self, req: OutboundRequest) -> Result<Result<OutboundReply, String>, String> {
        match self.outbound {
            Some(o) => Ok(o.http(req)),
            None => Err(crate::plugin_api::NO_OUTBOUND.into()),
        }
    }
    fn bitcoind(&mut self, method: &str, params: &str) -> Result<Result<String, String>, String> {
        match self.outbound {
            Some(o) => Ok(o.bitcoind(method, params)),
            None => Err(crate::plugin_api::NO_OUTBOUND.into()),
        }
    }
}

/// A job's outbound capabilities (from the runtime file's `capabilities`).
pub struct Outbound {
    pub plugin: String,
    /// URL prefixes the job may call.
    pub http_allow: Vec<String>,
    /// bitcoind RPC methods the job may call.
    pub bitcoind_allow: Vec<String>,
    pub bitcoind: Option<crate::bitcoind::Connection>,
    pub timeout: Duration,
}

impl Outbound {
    fn http(&self, req: OutboundRequest) -> Result<OutboundReply, String> {
        if !self.http_allow.iter().any(|p| req.url.starts_with(p.as_str())) {
            return Err(format!(
                "{} is not allowed: plugin {}'s capabilities.http allows [{}]",
                req.url,
                self.plugin,
                self.http_allow.join(", ")
            ));
        }
        let method = match req.method.to_ascii_uppercase().as_str() {
            "GET" => minreq::Method::Get,
            "POST" => minreq::Method::Post,
            "PUT" => minreq::Method::Put,
            "DELETE" => minreq::Method::Delete,
            "HEAD" => minreq::Method::Head,
            m => return Err(format!("HTTP method {m} is not supported (GET, POST, PUT, DELETE, HEAD)")),
        };
        let mut r = minreq::Request::new(method, req.url.as_str())
            .with_timeout(self.timeout.as_secs().max(1))
            .with_body(req.body);
        for (k, v) in req.headers {
            r = r.with_header(k, v);
        }
        match r.send() {
            Ok(resp) => Ok(OutboundReply { status: resp.status_code as u16, body: resp.into_bytes() }),
            Err(e) => Err(format!("{}: {e}", req.url)),
        }
    }

    fn bitcoind(&self, method: &str, params: &str) -> Result<String, String> {
        if !self.bitcoind_allow.iter().any(|m| m == method) {
            return Err(format!(
                "bitcoind method {method} is not allowed: plugin {}'s capabilities.bitcoind allows [{}]",
                self.plugin,
                self.bitcoind_allow.join(", ")
            ));
        }
        let conn = self.bitcoind.as_ref().ok_or("no bitcoind connection is configured")?;
        let params: Vec<serde_json::Value> =
            serde_json::from_str(params).map_err(|e| format!("params must be a JSON array: {e}"))?;
        crate::bitcoind::call_json(conn, method, &params).map(|v| v.to_string())
    }
}
