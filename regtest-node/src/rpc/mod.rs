//! bitcoind's HTTP JSON-RPC interface: basic auth (rpcuser/rpcpassword or the `.cookie` file),
//! JSON-RPC 1.0 and 2.0 requests and batches at `/` and `/wallet/<name>`, Core's error codes and
//! HTTP statuses, plus the REST endpoints (see `rest.rs`). Handlers run on blocking threads
//! holding the node lock, so every call sees and leaves a consistent node. With `-walletonly` the
//! same server fronts the wallets alone (`walletonly.rs` says what it answers).

pub mod blockchain;
pub mod control;
pub mod encode;
pub mod error;
pub mod mining;
pub mod params;
pub mod rawtx;
pub mod wallet;
pub mod walletonly;

use crate::node::Node;
use crate::walletonly::WalletOnly;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use error::*;
use params::Params;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What the server answers for: a full node, or the wallets of a `-walletonly` node.
#[derive(Clone)]
pub enum Backend {
    Node(Arc<Mutex<Node>>),
    WalletOnly(Arc<Mutex<WalletOnly>>),
}

#[derive(Clone)]
pub struct Server {
    pub backend: Backend,
    /// The expected `Authorization: Basic …` value.
    auth: Arc<String>,
    pub shutdown: watch::Sender<bool>,
}

impl Server {
    pub fn new(backend: Backend, user: &str, password: &str, shutdown: watch::Sender<bool>) -> Server {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Server { backend, auth: Arc::new(format!("Basic {token}")), shutdown }
    }

    /// JSON-RPC at `/` and `/wallet/<name>`; REST only for a full node.
    pub fn router(self) -> Router {
        let router =
            Router::new().route("/", post(root)).route("/wallet/{name}", post(wallet)).route("/wallet/", post(root));
        let router = match self.backend {
            Backend::Node(_) => router.route("/rest/{*path}", get(crate::rest::handle)),
            Backend::WalletOnly(_) => router,
        };
        router.with_state(self)
    }

    /// The full node (None with `-walletonly`).
    pub fn node(&self) -> Option<&Arc<Mutex<Node>>> {
        match &self.backend {
            Backend::Node(node) => Some(node),
            Backend::WalletOnly(_) => None,
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        constant_time_eq(given.as_bytes(), self.auth.as_bytes())
    }

    /// Runs one request against the node (or the wallet-only host) under its lock.
    pub fn call(&self, wallet: Option<&str>, method: &str, params: &Params) -> RpcResult {
        match &self.backend {
            Backend::Node(node) => {
                let mut node = node.lock().unwrap_or_else(|p| p.into_inner());
                dispatch(&mut node, self, wallet, method, params)
            }
            Backend::WalletOnly(host) => {
                let mut host = host.lock().unwrap_or_else(|p| p.into_inner());
                walletonly::dispatch(&mut host, self, wallet, method, params)
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn root(State(s): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
    serve(s, headers, None, body).await
}

async fn wallet(State(s): State<Server>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    serve(s, headers, Some(name), body).await
}

async fn serve(s: Server, headers: HeaderMap, wallet: Option<String>, body: Bytes) -> Response {
    if !s.authorized(&headers) {
        // Core slows down password guessing the same way.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"jsonrpc\"")], "").into_response();
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                rpc_error_body(None, &RpcError::new(RPC_PARSE_ERROR, "Parse error"), false),
            )
        }
    };
    let server = s.clone();
    let result = tokio::task::spawn_blocking(move || match request {
        Value::Array(batch) => {
            let replies: Vec<Value> = batch.iter().map(|r| handle_one(&server, wallet.as_deref(), r).1).collect();
            (StatusCode::OK, Value::Array(replies))
        }
        single => handle_one(&server, wallet.as_deref(), &single),
    })
    .await;
    match result {
        Ok((status, body)) => reply(status, body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            rpc_error_body(None, &RpcError::new(RPC_INTERNAL_ERROR, format!("internal error: {e}")), false),
        ),
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut text = serde_json::to_string(&body).expect("json");
    text.push('\n');
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn rpc_error_body(id: Option<&Value>, e: &RpcError, v2: bool) -> Value {
    let id = id.cloned().unwrap_or(Value::Null);
    if v2 {
        json!({"jsonrpc": "2.0", "error": e.to_json(), "id": id})
    } else {
        json!({"result": Value::Null, "error": e.to_json(), "id": id})
    }
}

/// One JSON-RPC request object → (HTTP status as Core would send it alone, reply object).
fn handle_one(s: &Server, wallet: Option<&str>, request: &Value) -> (StatusCode, Value) {
    let Some(obj) = request.as_object() else {
        let e = RpcError::new(RPC_INVALID_REQUEST, "Invalid Request object");
        return (StatusCode::BAD_REQUEST, rpc_error_body(None, &e, false));
    };
    let id = obj.get("id");
    let v2 = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let method = match obj.get("method") {
        Some(Value::String(m)) => m.as_str(),
        None => {
            let e = RpcError::new(RPC_INVALID_REQUEST, "Missing method");
            return (StatusCode::BAD_REQUEST, rpc_error_body(id, &e, v2));
        }
        Some(_) => {
            let e = RpcError::new(RPC_INVALID_REQUEST, "Method must be a string");
            return (StatusCode::BAD_REQUEST, rpc_error_body(id, &e, v2));
        }
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Params::default(),
        Some(Value::Array(a)) => Params(a.clone()),
        Some(Value::Object(named)) => match params::named_to_positional(method, named) {
            Ok(p) => p,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, rpc_error_body(id, &e, v2)),
        },
        Some(_) => {
            let e = RpcError::new(RPC_INVALID_REQUEST, "Params must be an array or object");
            return (StatusCode::BAD_REQUEST, rpc_error_body(id, &e, v2));
        }
    };
    let wallet = wallet.map(percent_decode);
    let started = std::time::Instant::now();
    let result = s.call(wallet.as_deref(), method, &params);
    tracing::debug!("rpc {method} took {:?}", started.elapsed());
    match result {
        Ok(value) => {
            let body = if v2 {
                json!({"jsonrpc": "2.0", "result": value, "id": id.cloned().unwrap_or(Value::Null)})
            } else {
                json!({"result": value, "error": Value::Null, "id": id.cloned().unwrap_or(Value::Null)})
            };
            (StatusCode::OK, body)
        }
        Err(e) => {
            let status = if v2 {
                StatusCode::OK
            } else if e.code == RPC_METHOD_NOT_FOUND {
                StatusCode::NOT_FOUND
            } else if e.code == RPC_INVALID_REQUEST {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, rpc_error_body(id, &e, v2))
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn dispatch(node: &mut Node, s: &Server, wallet: Option<&str>, method: &str, params: &Params) -> RpcResult {
    if let Some(r) = blockchain::handle(node, method, params) {
        return r;
    }
    if let Some(r) = rawtx::handle(node, method, params) {
        return r;
    }
    if let Some(r) = mining::handle(node, wallet, method, params) {
        return r;
    }
    if let Some(r) = control::handle(node, s, method, params) {
        return r;
    }
    if let Some(r) = wallet_call(node, wallet, method, params) {
        return r;
    }
    Err(RpcError::new(RPC_METHOD_NOT_FOUND, "Method not found"))
}

/// Wallet methods, with the node's chain and mempool as the wallet's view of the world.
pub fn wallet_call(node: &mut Node, wallet: Option<&str>, method: &str, params: &Params) -> Option<RpcResult> {
    let Node { wallets, chain, mempool, config, .. } = node;
    // With -disablewallet, wallet methods do not exist (as in Core).
    let wallets = wallets.as_mut()?;
    let mut view = crate::walletview::NodeView { chain, mempool, min_relay_fee: config.min_relay_fee };
    wallet::handle(wallets, &mut view, wallet, method, params)
}
