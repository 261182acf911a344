//! bitcoind JSON-RPC (the chain node and the offline wallet speak it): one small client.

use anyhow::{anyhow, Result};
use bitcoin::base64::Engine as _;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Rpc {
    /// `http://host:port` (no credentials).
    pub url: String,
    auth: String,
    /// What it is, for error messages ("the regtest node").
    what: String,
}

impl Rpc {
    pub fn new(what: &str, url: &str, user: &str, password: &str) -> Rpc {
        let auth = bitcoin::base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Rpc { url: url.trim_end_matches('/').to_string(), auth: format!("Basic {auth}"), what: what.to_string() }
    }

    /// From `http://user:pass@host:port`.
    pub fn from_url(what: &str, url: &str) -> Result<Rpc> {
        let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("{what}: {url} is not an http:// URL"))?;
        let (cred, host) = rest
            .split_once('@')
            .ok_or_else(|| anyhow!("{what}: give the RPC credentials in the URL: http://USER:PASS@HOST:PORT"))?;
        let (user, pass) = cred.split_once(':').ok_or_else(|| anyhow!("{what}: write the credentials as USER:PASS"))?;
        Ok(Rpc::new(what, &format!("http://{host}"), user, pass))
    }

    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.call_at("/", method, params)
    }

    pub fn wallet(&self, wallet: &str, method: &str, params: Value) -> Result<Value> {
        self.call_at(&format!("/wallet/{wallet}"), method, params)
    }

    fn call_at(&self, path: &str, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "1.0", "id": "demo", "method": method, "params": params}).to_string();
        let resp = minreq::post(format!("{}{path}", self.url))
            .with_header("Authorization", &self.auth)
            .with_header("Content-Type", "application/json")
            .with_body(body)
            .with_timeout(60)
            .send()
            .map_err(|e| anyhow!("{} at {} does not answer {method}: {e}", self.what, self.url))?;
        let text = resp.as_str().unwrap_or_default();
        let v: Value = serde_json::from_str(text)
            .map_err(|_| anyhow!("{} answered {method} with HTTP {}: {}", self.what, resp.status_code, text.trim()))?;
        if !v["error"].is_null() {
            return Err(anyhow!("{} refused {method}: {}", self.what, v["error"]["message"].as_str().unwrap_or("?")));
        }
        Ok(v["result"].clone())
    }

    pub fn height(&self) -> Result<u32> {
        Ok(self.call("getblockcount", json!([]))?.as_u64().unwrap_or(0) as u32)
    }

    /// Height and hash of the best block.
    pub fn tip(&self) -> Result<(u32, String)> {
        loop {
            let h = self.height()?;
            let hash = self.call("getblockhash", json!([h]))?;
            // The tip may move between the two calls; then ask again.
            if self.height()? == h {
                return Ok((h, hash.as_str().unwrap_or_default().to_string()));
            }
        }
    }
}
