//! A minimal bitcoind JSON-RPC client: enough to find a transaction's inclusion height.

use phase1_primitives::bitcoin::Txid;
use serde_json::{json, Value};

use crate::Error;

/// bitcoind's JSON-RPC endpoint with basic authentication.
#[derive(Debug, Clone)]
pub struct RpcClient {
    url: String,
    auth: Option<String>,
}

impl RpcClient {
    /// A client for `url` (e.g. `http://127.0.0.1:18443`, or `.../wallet/<name>`), with `user` and
    /// `password` when given.
    pub fn new(url: &str, user: Option<&str>, password: Option<&str>) -> RpcClient {
        use bitcoin::base64::Engine as _;
        let auth = user.map(|u| {
            let token = format!("{u}:{}", password.unwrap_or(""));
            format!("Basic {}", bitcoin::base64::engine::general_purpose::STANDARD.encode(token))
        });
        let url = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
        RpcClient { url, auth }
    }

    /// One call; the node's error object becomes [`Error::Rpc`].
    pub fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        let body = json!({"jsonrpc": "1.0", "id": "staking-cli", "method": method, "params": params}).to_string();
        let mut req =
            minreq::post(&self.url).with_header("Content-Type", "application/json").with_body(body).with_timeout(60);
        if let Some(a) = &self.auth {
            req = req.with_header("Authorization", a.as_str());
        }
        let resp = req
            .send()
            .map_err(|e| Error::Rpc(format!("{method} at {}: {e} (is bitcoind running? check --rpc-url)", self.url)))?;
        if resp.status_code == 401 {
            return Err(Error::Rpc(format!("{method}: HTTP 401 unauthorized (check --rpc-user and --rpc-password)")));
        }
        let v: Value = serde_json::from_slice(resp.as_bytes())
            .map_err(|e| Error::Rpc(format!("{method}: HTTP {} with a non-JSON answer: {e}", resp.status_code)))?;
        match v.get("error") {
            Some(err) if !err.is_null() => {
                let msg =
                    err.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| err.to_string());
                Err(Error::Rpc(format!("{method}: {msg}")))
            }
            _ => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// The height of the block that includes `txid`: `getrawtransaction <txid> true`, then
    /// `getblockheader <blockhash>` (needs `-txindex` unless the tx is in the wallet's node mempool).
    pub fn inclusion_height(&self, txid: &Txid) -> Result<u64, Error> {
        let tx = self.call("getrawtransaction", json!([txid.to_string(), true])).map_err(|e| {
            Error::Rpc(format!("{e} (bitcoind needs -txindex to find a confirmed transaction; or pass --height)"))
        })?;
        let Some(block) = tx.get("blockhash").and_then(Value::as_str) else {
            return Err(Error::Rpc(format!(
                "transaction {txid} is not confirmed yet (it is in the mempool): wait for a block, then run again"
            )));
        };
        let header = self.call("getblockheader", json!([block]))?;
        header
            .get("height")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::Rpc(format!("getblockheader {block}: the answer has no height")))
    }
}
