//! A minimal bitcoind JSON-RPC 1.0 client: HTTP POST with basic auth to `http://host:port[/wallet/<name>]`.
//!
//! Blocking (minreq, one connection per call); the server calls it from `spawn_blocking`. It
//! speaks the plain JSON-RPC bitcoind expects, so it works unchanged against Bitcoin Core.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// Bitcoin Core's error code for a locked wallet (`RPC_WALLET_UNLOCK_NEEDED`).
pub const RPC_WALLET_UNLOCK_NEEDED: i64 = -13;
/// `RPC_INVALID_ADDRESS_OR_KEY` (e.g. "No such mempool or blockchain transaction").
pub const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;
/// `RPC_WALLET_NOT_FOUND` (the `/wallet/<name>` is not loaded).
pub const RPC_WALLET_NOT_FOUND: i64 = -18;
/// `RPC_METHOD_NOT_FOUND`.
pub const RPC_METHOD_NOT_FOUND: i64 = -32601;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// No HTTP answer (connection refused, timeout, ...).
    Transport(String),
    /// HTTP 401/403: wrong user or password.
    Auth(u16),
    /// The node answered with a JSON-RPC error object.
    Rpc {
        /// Error code (`-13` locked wallet, `-5` not found, ...).
        code: i64,
        /// The node's message.
        message: String,
    },
    /// An answer that is not JSON-RPC (e.g. HTTP 404 from a proxy).
    BadAnswer(String),
}

impl RpcError {
    /// The JSON-RPC error code, if the node answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Transport(e) => write!(f, "no answer: {e}"),
            RpcError::Auth(s) => write!(f, "HTTP {s}: authentication failed (check user and pass)"),
            RpcError::Rpc { code, message } => write!(f, "RPC error {code}: {message}"),
            RpcError::BadAnswer(e) => write!(f, "not a JSON-RPC answer: {e}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// One bitcoind RPC endpoint.
#[derive(Clone)]
pub struct RpcClient {
    url: String,
    auth: String,
    timeout: Duration,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient").field("url", &self.url).field("timeout", &self.timeout).finish()
    }
}

impl RpcClient {
    /// A client for `url` (`http://host:port[/wallet/<name>]`) with basic-auth `user`/`pass`.
    pub fn new(url: &str, user: &str, pass: &str, timeout: Duration) -> RpcClient {
        let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")));
        RpcClient { url: url.to_string(), auth, timeout }
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with positional `params` and returns its `result`.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body = json!({ "jsonrpc": "1.0", "id": "covenant-signer", "method": method, "params": params });
        let resp = minreq::post(&self.url)
            .with_header("Authorization", &self.auth)
            .with_header("Content-Type", "application/json")
            .with_body(body.to_string())
            .with_timeout(self.timeout.as_secs().max(1))
            .send()
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        let status = resp.status_code;
        if status == 401 || status == 403 {
            return Err(RpcError::Auth(status as u16));
        }
        let v: Value = serde_json::from_slice(resp.as_bytes()).map_err(|_| {
            let text = String::from_utf8_lossy(resp.as_bytes());
            let text: String = text.chars().take(200).collect();
            RpcError::BadAnswer(format!("HTTP {status}: {text:?}"))
        })?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError::Rpc {
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
            });
        }
        match v.get("result") {
            Some(r) => Ok(r.clone()),
            None => Err(RpcError::BadAnswer(format!("HTTP {status}: no \"result\" field"))),
        }
    }
}
