//! What the demo asserts, through the public read side only: the staking API (`/v1`), the
//! indexer's Prometheus series and the queues. Each check prints the seed's
//! "Target metrics achieved!" line, or fails with what was expected and what was seen.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bitcoin::Txid;
use serde_json::Value;

pub struct Api {
    pub base: String,
}

/// How long a check may wait for the system to catch up (the chain does not move meanwhile in
/// fast mode; in real-time mode it is far shorter than a block interval).
const SETTLE: Duration = Duration::from_secs(5);

impl Api {
    pub fn get(&self, path: &str) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let resp = minreq::get(&url).with_timeout(30).send().map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        let text = resp.as_str().unwrap_or_default().to_string();
        Ok((resp.status_code as u16, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// `(state, is_overflow)` of a delegation, or None when the API does not know it (404).
    pub fn delegation(&self, txid: &Txid) -> Result<Option<(String, bool)>> {
        let (status, v) = self.get(&format!("/v1/delegation?staking_tx_hash_hex={txid}"))?;
        match status {
            200 => Ok(Some((
                v["data"]["state"].as_str().unwrap_or_default().to_string(),
                v["data"]["is_overflow"].as_bool().unwrap_or(false),
            ))),
            404 => Ok(None),
            _ => bail!("GET /v1/delegation for {txid} answered HTTP {status}: {v}"),
        }
    }

    pub fn stats(&self) -> Result<Value> {
        let (status, v) = self.get("/v1/stats")?;
        if status != 200 {
            bail!("GET /v1/stats answered HTTP {status}: {v}");
        }
        Ok(v["data"].clone())
    }

    /// A sample of the staking indexer's Prometheus series (0 when absent, as a fresh counter).
    pub fn metric(&self, series: &str) -> Result<u64> {
        let url = format!("{}/plugins/phase1-staking/metrics", self.base);
        let resp = minreq::get(&url).with_timeout(30).send().map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        let text = resp.as_str().unwrap_or_default();
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or(0))
    }

    /// "Checking transaction with ID" and its state / overflow flag.
    pub fn expect_delegation(&self, txid: &Txid, state: &str, overflow: bool) -> Result<()> {
        println!("Checking transaction with ID: {txid} ");
        let seen = settle(|| self.delegation(txid), |d| d.as_ref() == Some(&(state.to_string(), overflow)))?;
        match seen {
            Some((s, o)) if s == state && o == overflow => {
                achieved(&format!("Transaction state: {state} and Overflow status: {overflow}"));
                Ok(())
            }
            Some((s, o)) => bail!(
                "Transaction {txid}: expected state {state} and overflow {overflow}, the API says state {s} and overflow {o}"
            ),
            None => bail!("Transaction {txid}: expected state {state}, the API does not know it (404)"),
        }
    }

    /// The API does not know the transaction (never indexed).
    pub fn expect_unknown(&self, txid: &Txid) -> Result<()> {
        match self.delegation(txid)? {
            None => {
                achieved(&format!("The Staking API does not know transaction {txid}"));
                Ok(())
            }
            Some((s, o)) => bail!("transaction {txid} should be unknown to the API, it says state {s}, overflow {o}"),
        }
    }

    /// A `/v1/stats` field.
    pub fn expect_stat(&self, field: &str, label: &str, want: u64) -> Result<()> {
        let seen = settle(|| self.stats(), |s| s[field].as_u64() == Some(want))?;
        if seen[field].as_u64() != Some(want) {
            bail!("{label}: expected {want}, /v1/stats says {} ({seen})", seen[field]);
        }
        achieved(&format!("{label}: {want}"));
        Ok(())
    }

    /// A Prometheus series of the staking indexer.
    pub fn expect_metric(&self, series: &str, label: &str, want: u64) -> Result<()> {
        let seen = settle(|| self.metric(series), |v| *v == want)?;
        if seen != want {
            bail!("{label}: expected {want}, the indexer's metric {series} is {seen}");
        }
        achieved(&format!("{label}: {want}"));
        Ok(())
    }
}

/// Reads until `ok` holds or [`SETTLE`] passes; the last reading.
fn settle<T>(mut read: impl FnMut() -> Result<T>, ok: impl Fn(&T) -> bool) -> Result<T> {
    let started = Instant::now();
    loop {
        let v = read()?;
        if ok(&v) || started.elapsed() > SETTLE {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn achieved(what: &str) {
    println!(" Target metrics achieved! {what} ");
}
