//! Native test harness: an in-memory host for running a plugin's handlers with `cargo test`.
//!
//! ```ignore
//! let mut h = guest_sdk::testing::TestHost::new("config");
//! let manifest = h.init::<MyPlugin>().unwrap();
//! h.apply_block::<MyPlugin>(&block, &txs).unwrap();
//! assert_eq!(h.store.len(), 3);
//! let resp = h.get::<MyPlugin>("/items/7?q=x");
//! assert_eq!(resp.status, 200);
//! h.stub_http(|call| Ok(HttpReply { status: 200, body: call.url.clone().into_bytes() }));
//! h.run_job::<MyPlugin>().unwrap();
//! ```
//!
//! Each harness call runs in a [`Context`] that mirrors the host's rules, and a call the host
//! would trap (a store write from a route, `local` from a block handler, `outbound` outside
//! the job, publishing outside block/undo handlers) panics with a message saying so. What the
//! host would not commit is rolled back: a block or undo handler's writes and messages when it
//! errs, a write route's `local` writes when it answers 400 or more, a job's `local` writes when
//! it errs; everything when the handler panics (the panic then continues). [`TestHost::run`]
//! runs any closure in [`Context::Free`], where every host call is allowed.

use crate::{BlockInfo, HttpReply, HttpRequest, HttpResponse, Level, Manifest, Plugin, Route, Tx};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which kind of call is running: decides which host calls are allowed (see the module docs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Anything goes (direct [`TestHost::run`] calls).
    #[default]
    Free,
    /// `init`: store and local reads are empty; writes, publish and outbound trap.
    Init,
    /// `apply-block`, `apply-raw-block`, `apply-unconfirmed`: store read/write, publish.
    Block,
    /// `undo-block`: store reads, publish.
    Undo,
    /// A read route: store and local reads.
    ReadRoute,
    /// A write route: store reads, local read/write.
    WriteRoute,
    /// `run-job`: store reads, local read/write, outbound.
    Job,
}

/// One `outbound.http-request` call the plugin made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Answers the plugin's `outbound.http-request` calls (see [`TestHost::stub_http`]).
pub type HttpStub = Arc<dyn Fn(&HttpCall) -> Result<HttpReply, String> + Send + Sync>;
/// Answers the plugin's `outbound.bitcoind` calls: `(method, params)` → the `result` value.
pub type BitcoindStub = Arc<dyn Fn(&str, &serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync>;

/// The in-memory host state a plugin sees while a harness call runs.
#[derive(Default, Clone)]
pub struct TestHost {
    pub config: String,
    /// The chain-state key/value space.
    pub store: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The off-chain key/value space.
    pub local: BTreeMap<Vec<u8>, Vec<u8>>,
    pub published: Vec<(String, Vec<u8>)>,
    pub logs: Vec<(Level, String)>,
    /// Every `outbound.http-request` call, in order (also the ones of rolled-back calls).
    pub http_calls: Vec<HttpCall>,
    /// Every `outbound.bitcoind` call as `(method, params)`, in order.
    pub bitcoind_calls: Vec<(String, serde_json::Value)>,
    /// `None`: http requests answer `Err("... not stubbed ...")`.
    pub http_stub: Option<HttpStub>,
    /// `None`: bitcoind calls answer `Err("... not stubbed ...")`.
    pub bitcoind_stub: Option<BitcoindStub>,
    /// The manifest of the last successful [`TestHost::init`] (routes for [`TestHost::request`]).
    pub manifest: Option<Manifest>,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("local", &self.local)
            .field("published", &self.published)
            .field("logs", &self.logs)
            .field("http_calls", &self.http_calls)
            .field("bitcoind_calls", &self.bitcoind_calls)
            .field("http_stub", &self.http_stub.as_ref().map(|_| "<fn>"))
            .field("bitcoind_stub", &self.bitcoind_stub.as_ref().map(|_| "<fn>"))
            .field("manifest", &self.manifest)
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Space {
    Store,
    Local,
}

/// The host installed for the running call, with what is needed to roll it back.
struct Installed {
    host: TestHost,
    context: Context,
    /// (space, key, previous value) for every write, oldest first.
    journal: Vec<(Space, Vec<u8>, Option<Vec<u8>>)>,
}

thread_local! {
    static CURRENT: RefCell<Option<Installed>> = const { RefCell::new(None) };
}

fn with_installed<R>(f: impl FnOnce(&mut Installed) -> R) -> R {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let installed = c.as_mut().expect("guest-sdk host call outside a guest_sdk::testing::TestHost call");
        f(installed)
    })
}

/// Panics (the native stand-in for a Wasm trap) unless `allowed`.
fn require(allowed: impl FnOnce(Context) -> bool, what: &str) {
    let context = with_installed(|i| i.context);
    if !allowed(context) {
        panic!("guest-sdk testing: {what} is not allowed in {context:?} (the host traps)");
    }
}

/// The native implementations of the host imports (used by the SDK's wrappers).
#[doc(hidden)]
pub(crate) mod host {
    use super::*;
    use Context::*;

    pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

    fn map(i: &mut Installed, space: Space) -> &mut BTreeMap<Vec<u8>, Vec<u8>> {
        match space {
            Space::Store => &mut i.host.store,
            Space::Local => &mut i.host.local,
        }
    }

    fn kv_get(space: Space, key: &[u8]) -> Option<Vec<u8>> {
        with_installed(|i| if i.context == Init { None } else { map(i, space).get(key).cloned() })
    }
    fn kv_set(space: Space, key: &[u8], value: Option<&[u8]>) {
        with_installed(|i| {
            let m = map(i, space);
            let old = match value {
                Some(v) => m.insert(key.to_vec(), v.to_vec()),
                None => m.remove(key),
            };
            i.journal.push((space, key.to_vec(), old));
        })
    }
    fn kv_scan_prefix(space: Space, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Entries {
        with_installed(|i| {
            if i.context == Init {
                return Vec::new();
            }
            map(i, space)
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }

    fn store_writable(c: Context) -> bool {
        matches!(c, Free | Block)
    }
    fn local_readable(c: Context) -> bool {
        !matches!(c, Block | Undo)
    }
    fn local_writable(c: Context) -> bool {
        matches!(c, Free | WriteRoute | Job)
    }

    pub fn store_get(key: &[u8]) -> Option<Vec<u8>> {
        kv_get(Space::Store, key)
    }
    pub fn store_put(key: &[u8], value: &[u8]) {
        require(store_writable, "store.put");
        kv_set(Space::Store, key, Some(value))
    }
    pub fn store_delete(key: &[u8]) {
        require(store_writable, "store.delete");
        kv_set(Space::Store, key, None)
    }
    pub fn store_scan_prefix(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Entries {
        kv_scan_prefix(Space::Store, prefix, after, limit)
    }
    pub fn store_scan_range(start: &[u8], end: &[u8], limit: u32) -> Entries {
        with_installed(|i| {
            if i.context == Init || start >= end {
                return Vec::new();
            }
            i.host
                .store
                .range(start.to_vec()..end.to_vec())
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
    pub fn watch_outpoint(txid: &[u8], vout: u32) {
        require(store_writable, "store.watch-outpoint");
        kv_set(Space::Store, &crate::store::watch_key(txid, vout), Some(&[]))
    }
    pub fn unwatch_outpoint(txid: &[u8], vout: u32) {
        require(store_writable, "store.unwatch-outpoint");
        kv_set(Space::Store, &crate::store::watch_key(txid, vout), None)
    }

    pub fn local_get(key: &[u8]) -> Option<Vec<u8>> {
        require(local_readable, "local.get");
        kv_get(Space::Local, key)
    }
    pub fn local_put(key: &[u8], value: &[u8]) {
        require(local_writable, "local.put");
        kv_set(Space::Local, key, Some(value))
    }
    pub fn local_delete(key: &[u8]) {
        require(local_writable, "local.delete");
        kv_set(Space::Local, key, None)
    }
    pub fn local_scan_prefix(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Entries {
        require(local_readable, "local.scan-prefix");
        kv_scan_prefix(Space::Local, prefix, after, limit)
    }

    pub fn http_request(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<HttpReply, String> {
        require(|c| matches!(c, Free | Job), "outbound.http-request");
        let call = HttpCall { method: method.into(), url: url.into(), headers: headers.to_vec(), body: body.to_vec() };
        let stub = with_installed(|i| {
            i.host.http_calls.push(call.clone());
            i.host.http_stub.clone()
        });
        match stub {
            Some(stub) => stub(&call),
            None => Err(format!("outbound http is not stubbed in this TestHost ({method} {url})")),
        }
    }
    pub fn bitcoind(method: &str, params: &str) -> Result<String, String> {
        require(|c| matches!(c, Free | Job), "outbound.bitcoind");
        let params: serde_json::Value =
            serde_json::from_str(params).map_err(|e| format!("bitcoind params are not JSON: {e}"))?;
        let stub = with_installed(|i| {
            i.host.bitcoind_calls.push((method.to_string(), params.clone()));
            i.host.bitcoind_stub.clone()
        });
        match stub {
            Some(stub) => stub(method, &params).map(|v| v.to_string()),
            None => Err(format!("outbound bitcoind is not stubbed in this TestHost ({method})")),
        }
    }

    pub fn publish(queue: &str, body: &[u8]) {
        require(|c| matches!(c, Free | Block | Undo), "queue.publish");
        with_installed(|i| i.host.published.push((queue.to_string(), body.to_vec())))
    }
    pub fn log(level: Level, message: &str) {
        with_installed(|i| i.host.logs.push((level, message.to_string())))
    }
    pub fn config() -> String {
        with_installed(|i| i.host.config.clone())
    }
}

impl TestHost {
    pub fn new(config: &str) -> Self {
        TestHost { config: config.to_string(), ..Default::default() }
    }

    /// Runs `f` with this host installed as the plugin's host, every host call allowed.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.run_as(Context::Free, f)
    }

    /// Runs `f` with this host installed, enforcing `context`'s rules (a panic rolls back).
    pub fn run_as<R>(&mut self, context: Context, f: impl FnOnce() -> R) -> R {
        self.call(context, f, |_| true)
    }

    /// Runs `f` in `context`; rolls back its writes and messages unless it returns and `keep`
    /// accepts the result.
    fn call<R>(&mut self, context: Context, f: impl FnOnce() -> R, keep: impl FnOnce(&R) -> bool) -> R {
        let published_before = self.published.len();
        let installed = Installed { host: std::mem::take(self), context, journal: Vec::new() };
        CURRENT.with(|c| *c.borrow_mut() = Some(installed));
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let Installed { host, journal, .. } = CURRENT.with(|c| c.borrow_mut().take()).expect("host state");
        *self = host;
        let commit = match &out {
            Ok(r) => keep(r),
            Err(_) => false,
        };
        if !commit {
            for (space, key, old) in journal.into_iter().rev() {
                let m = match space {
                    Space::Store => &mut self.store,
                    Space::Local => &mut self.local,
                };
                match old {
                    Some(v) => m.insert(key, v),
                    None => m.remove(&key),
                };
            }
            self.published.truncate(published_before);
        }
        match out {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Calls `init` with the config; remembers the manifest (for [`TestHost::request`]).
    pub fn init<P: Plugin>(&mut self) -> Result<Manifest, String> {
        let config = self.config.clone();
        let m = self.call(Context::Init, || P::init(&config), |_| true)?;
        self.manifest = Some(m.clone());
        Ok(m)
    }

    /// Applies a block, delivering `txs` as given (the harness does not prefilter).
    pub fn apply_block<P: Plugin>(&mut self, block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
        self.call(Context::Block, || P::apply_block(block, txs), Result::is_ok)
    }

    /// Applies a whole serialized block, as the engine does with `raw_block`.
    pub fn apply_raw_block<P: Plugin>(&mut self, block: &BlockInfo, raw: &[u8]) -> Result<(), String> {
        self.call(Context::Block, || P::apply_raw_block(block, raw), Result::is_ok)
    }

    /// Delivers an unconfirmed tip block, as the engine does with `unconfirmed_blocks`.
    pub fn apply_unconfirmed<P: Plugin>(&mut self, block: &BlockInfo, txs: &[Tx]) -> Result<(), String> {
        self.call(Context::Block, || P::apply_unconfirmed(block, txs), Result::is_ok)
    }

    /// Calls `undo-block` (the harness does not restore the store afterwards: the engine does
    /// that from its undo records).
    pub fn undo_block<P: Plugin>(&mut self, block: &BlockInfo) -> Result<(), String> {
        self.call(Context::Undo, || P::undo_block(block), Result::is_ok)
    }

    /// Calls `handle-request` with `req` as given, as a write route when `write`.
    pub fn handle_request<P: Plugin>(&mut self, req: &HttpRequest, write: bool) -> HttpResponse {
        let context = if write { Context::WriteRoute } else { Context::ReadRoute };
        self.call(context, || P::handle_request(req), |r| r.status < 400)
    }

    /// Routes `method target` (a path with an optional `?query`) through the manifest's routes
    /// as the host does (route paths match whether `legacy` or not: there is no mount point
    /// here) and calls `handle-request`. Answers 404 `{"error":"no such route"}` without calling
    /// the plugin when no route matches. Calls `init` first if it has not run.
    pub fn request<P: Plugin>(&mut self, method: &str, target: &str, body: &[u8]) -> HttpResponse {
        if self.manifest.is_none() {
            self.init::<P>().unwrap_or_else(|e| panic!("init failed: {e}"));
        }
        let routes = self.manifest.as_ref().map(|m| m.routes.clone()).unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let Some((route, params)) = routes.iter().find_map(|r| match_route(r, method, path).map(|p| (r, p))) else {
            return HttpResponse::not_found();
        };
        let req = HttpRequest {
            method: method.to_string(),
            route: route.path.clone(),
            path: path.to_string(),
            params,
            query: parse_query(query),
            body: body.to_vec(),
        };
        self.handle_request::<P>(&req, route.write)
    }

    /// `GET target` through [`TestHost::request`].
    pub fn get<P: Plugin>(&mut self, target: &str) -> HttpResponse {
        self.request::<P>("GET", target, &[])
    }

    /// `POST target` with `body` through [`TestHost::request`].
    pub fn post<P: Plugin>(&mut self, target: &str, body: impl AsRef<[u8]>) -> HttpResponse {
        self.request::<P>("POST", target, body.as_ref())
    }

    /// Calls `run-job`.
    pub fn run_job<P: Plugin>(&mut self) -> Result<(), String> {
        self.call(Context::Job, P::run_job, Result::is_ok)
    }

    /// Answers the plugin's `outbound.http-request` calls with `f`.
    pub fn stub_http(&mut self, f: impl Fn(&HttpCall) -> Result<HttpReply, String> + Send + Sync + 'static) {
        self.http_stub = Some(Arc::new(f));
    }

    /// Answers the plugin's `outbound.bitcoind` calls with `f(method, params)`.
    pub fn stub_bitcoind(
        &mut self,
        f: impl Fn(&str, &serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync + 'static,
    ) {
        self.bitcoind_stub = Some(Arc::new(f));
    }

    /// Messages published since the last call, drained.
    pub fn take_published(&mut self) -> Vec<(String, Vec<u8>)> {
        std::mem::take(&mut self.published)
    }
}

/// The `{name}` parameters when `path` matches `route` (method and segments).
fn match_route(route: &Route, method: &str, path: &str) -> Option<Vec<(String, String)>> {
    if !route.method.eq_ignore_ascii_case(method) {
        return None;
    }
    let want: Vec<&str> = route.path.split('/').collect();
    let got: Vec<&str> = path.split('/').collect();
    if want.len() != got.len() {
        return None;
    }
    let mut params = Vec::new();
    for (w, g) in want.iter().zip(&got) {
        match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !g.is_empty() => params.push((name.to_string(), percent_decode(g, false))),
            Some(_) => return None,
            None if w == g => {}
            None => return None,
        }
    }
    Some(params)
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() => {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 3;
                continue;
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `BlockInfo` for fixtures.
pub fn block_info(height: u32, hash: [u8; 32], prev_hash: [u8; 32], time: u32) -> BlockInfo {
    BlockInfo { height, hash: hash.to_vec(), prev_hash: prev_hash.to_vec(), time }
}

/// All transactions of a serialized block as delivered `Tx`s (no prefilter).
#[cfg(feature = "bitcoin")]
pub fn block_fixture(height: u32, raw_block: &[u8]) -> Result<(BlockInfo, Vec<Tx>), String> {
    use bitcoin::consensus::serialize;
    use bitcoin::hashes::Hash;
    let block = crate::tx::decode_block(raw_block)?;
    let info = BlockInfo {
        height,
        hash: block.block_hash().to_byte_array().to_vec(),
        prev_hash: block.header.prev_blockhash.to_byte_array().to_vec(),
        time: block.header.time,
    };
    let txs = block
        .txdata
        .iter()
        .enumerate()
        .map(|(i, tx)| Tx { index: i as u32, txid: tx.compute_txid().to_byte_array().to_vec(), raw: serialize(tx) })
        .collect();
    Ok((info, txs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{local, outbound, store, HttpResponse};

    /// Exercises every new host call.
    struct P;
    impl Plugin for P {
        fn init(_config: &str) -> Result<Manifest, String> {
            assert_eq!(store::get("k"), None, "store reads are empty in init");
            let mut m = crate::manifest("p", "0");
            m.routes = vec![
                crate::route_get("/kv/{key}"),
                crate::route_post("/kv/{key}", true),
                crate::legacy_get("/v1/store-write"),
            ];
            Ok(m)
        }
        fn apply_block(block: &BlockInfo, _txs: &[Tx]) -> Result<(), String> {
            store::put_u64("h", block.height as u64);
            crate::publish("q", b"m");
            if block.height == 13 {
                return Err("unlucky".into());
            }
            if block.height == 14 {
                local::put("x", "y");
            }
            Ok(())
        }
        fn handle_request(req: &HttpRequest) -> HttpResponse {
            match (req.method.as_str(), req.route.as_str()) {
                ("GET", "/kv/{key}") => {
                    let key = req.param("key").unwrap_or_default();
                    let value = local::get(key).map(|v| String::from_utf8_lossy(&v).into_owned());
                    HttpResponse::json(
                        200,
                        &serde_json::json!({ "key": key, "value": value, "q": req.query_param("q") }),
                    )
                }
                ("POST", "/kv/{key}") => {
                    local::put(req.param("key").unwrap_or_default(), &req.body);
                    let status = req.query_param("status").and_then(|s| s.parse().ok()).unwrap_or(201);
                    HttpResponse::json(status, &serde_json::json!({}))
                }
                ("GET", "/v1/store-write") => {
                    store::put("k", "v");
                    HttpResponse::json(200, &true)
                }
                _ => HttpResponse::not_found(),
            }
        }
        fn run_job() -> Result<(), String> {
            let reply = outbound::http_get("http://x/y")?;
            local::put("reply", reply.text());
            let count = outbound::bitcoind("getblockcount", serde_json::json!([]))?;
            local::put_json("count", &count)?;
            if count == 0 {
                return Err("zero".into());
            }
            Ok(())
        }
    }

    fn trap_message(p: Box<dyn std::any::Any + Send>) -> String {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn block_errors_roll_back_and_local_traps_in_blocks() {
        let mut h = TestHost::new("");
        h.store.insert(b"k".to_vec(), b"v".to_vec());
        h.init::<P>().unwrap();
        h.apply_block::<P>(&block_info(12, [1; 32], [0; 32], 0), &[]).unwrap();
        assert_eq!(store_u64(&h, "h"), 12);
        assert_eq!(h.take_published().len(), 1);
        assert_eq!(h.apply_block::<P>(&block_info(13, [1; 32], [0; 32], 0), &[]), Err("unlucky".into()));
        assert_eq!(store_u64(&h, "h"), 12, "an erring block commits nothing");
        assert!(h.published.is_empty());
        let trap = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            h.apply_block::<P>(&block_info(14, [1; 32], [0; 32], 0), &[])
        }))
        .unwrap_err();
        assert!(trap_message(trap).contains("local.put is not allowed in Block"));
        assert_eq!(store_u64(&h, "h"), 12, "a trapping block commits nothing");
        assert!(h.local.is_empty() && h.published.is_empty());
    }

    fn store_u64(h: &TestHost, key: &str) -> u64 {
        u64::from_be_bytes(h.store[key.as_bytes()].as_slice().try_into().unwrap())
    }

    #[test]
    fn routes_match_and_write_routes_commit_below_400() {
        let mut h = TestHost::new("");
        let r = h.post::<P>("/kv/a%20b", "one");
        assert_eq!(r.status, 201);
        assert_eq!(h.local[b"a b".as_slice()], b"one");
        let r = h.get::<P>("/kv/a%20b?q=x+y&z");
        assert_eq!(r.content_type, "application/json");
        // Compared as JSON: key order depends on serde_json's `preserve_order`, which feature
        // unification turns on in a workspace build.
        let body: serde_json::Value = serde_json::from_str(&r.text_body()).unwrap();
        assert_eq!(body, serde_json::json!({"key": "a b", "q": "x y", "value": "one"}));
        // 400 and more: the local writes are discarded.
        assert_eq!(h.post::<P>("/kv/c?status=409", "two").status, 409);
        assert!(!h.local.contains_key(b"c".as_slice()));
        // No route: 404 without calling the plugin; wrong method too.
        assert_eq!(h.get::<P>("/nope").text_body(), r#"{"error":"no such route"}"#);
        assert_eq!(h.request::<P>("DELETE", "/kv/a", b"").status, 404);
        assert_eq!(h.get::<P>("/kv/a/b").status, 404);
    }

    #[test]
    fn store_writes_trap_in_routes() {
        let mut h = TestHost::new("");
        let trap =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.get::<P>("/v1/store-write"))).unwrap_err();
        assert!(trap_message(trap).contains("store.put is not allowed in ReadRoute"));
        assert!(h.store.is_empty());
    }

    #[test]
    fn jobs_use_stubbed_outbound_and_commit_on_ok() {
        let mut h = TestHost::new("");
        assert!(h.run_job::<P>().unwrap_err().contains("not stubbed"));
        h.stub_http(|call| Ok(HttpReply { status: 200, body: format!("{} {}", call.method, call.url).into_bytes() }));
        h.stub_bitcoind(|method, params| {
            assert_eq!((method, params), ("getblockcount", &serde_json::json!([])));
            Ok(serde_json::json!(0))
        });
        assert_eq!(h.run_job::<P>(), Err("zero".into()));
        assert!(h.local.is_empty(), "an erring job commits nothing");
        h.stub_bitcoind(|_, _| Ok(serde_json::json!(101)));
        h.run_job::<P>().unwrap();
        assert_eq!(h.local[b"reply".as_slice()], b"GET http://x/y");
        assert_eq!(h.local[b"count".as_slice()], b"101");
        assert_eq!(h.http_calls.len(), 3, "the unstubbed call is recorded too");
        assert_eq!(h.bitcoind_calls.len(), 2);
        // Outbound outside the job traps.
        let trap = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            h.run_as(Context::ReadRoute, || outbound::http_get("http://x"))
        }))
        .unwrap_err();
        assert!(trap_message(trap).contains("outbound.http-request is not allowed in ReadRoute"));
    }

    #[test]
    fn response_helpers() {
        assert_eq!(
            HttpResponse::not_found(),
            HttpResponse {
                status: 404,
                content_type: "application/json".into(),
                body: br#"{"error":"no such route"}"#.to_vec()
            }
        );
        let r = crate::legacy_post("/v1/x", true);
        assert!(r.legacy && r.write && r.method == "POST");
        assert_eq!(crate::hash_hex(&[1, 2, 0xab]), "ab0201");
    }
}
