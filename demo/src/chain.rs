//! The staker and the chain, driven as a user drives them: the node's wallet funds and signs
//! staking transactions, the staker's key (kept by the demo) signs unbonding requests and
//! withdrawals built by `staking-cli`'s library, blocks come from `generatetoaddress` (fast mode)
//! or from the node's own block interval (real-time mode), and every step waits until the
//! engine's plugins are at the node's tip.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::{Transaction, Txid, XOnlyPublicKey};
use phase1_primitives::params::{GlobalParams, ParamsVersion};
use serde_json::json;
use staking_cli::Stake;

use crate::deployment::{get_json, Deployment, BTC};
use crate::processes::{wait_for, Supervisor};
use crate::rpc::Rpc;

/// The staker's wallet in the node (the local node starts with it; an attached deployment's
/// node has its own, e.g. bitcoindsim's `miner`).
pub const WALLET: &str = "staker";
/// Fee of the demo's withdrawals (sat).
const WITHDRAW_FEE: u64 = 2_000;

/// A staking transaction the demo sent.
#[derive(Clone)]
pub struct Sent {
    pub tx: Transaction,
    pub txid: Txid,
}

pub struct Chain {
    pub node: Rpc,
    pub api: String,
    pub sup: Supervisor,
    /// 0 = fast mode (the demo mines); else the node mines every that many seconds.
    pub block_interval: u32,
    pub params: GlobalParams,
    staker: Keypair,
    fp: XOnlyPublicKey,
    mining_address: String,
    wallet: String,
}

impl Chain {
    pub fn new(d: &Deployment, sup: &Supervisor, block_interval: u32, wallet: &str) -> Result<Chain> {
        if d.attached {
            // Load (or create) the wallet; "already loaded" is fine.
            if d.node.call("loadwallet", json!([wallet])).is_err() {
                let loaded = d.node.call("listwallets", json!([]))?;
                if !loaded.as_array().is_some_and(|ws| ws.iter().any(|w| w == wallet)) {
                    d.node.call("createwallet", json!([wallet]))?;
                }
            }
            let h = d.node.height()?;
            if h > 111 {
                bail!(
                    "the node is at height {h}, past the demo's start (111): the scenarios need a fresh chain \
                     (docker compose -f docker/compose.yml down -v, then up again)"
                );
            }
        }
        let params = GlobalParams::parse(&d.params_text).map_err(|e| anyhow!("{e}"))?;
        let secp = Secp256k1::new();
        let staker = Keypair::new(&secp, &mut bitcoin::secp256k1::rand::thread_rng());
        // The staker picks a finality provider from the API, as the dashboard does.
        let fps = get_json(&format!("{}/v1/finality-providers", d.api))?;
        let fp_hex = fps["data"][0]["btc_pk"]
            .as_str()
            .with_context(|| format!("GET /v1/finality-providers lists no finality provider: {fps}"))?;
        let fp = fp_hex.parse().context("the first finality provider's btc_pk")?;
        let mining_address =
            d.node.wallet(wallet, "getnewaddress", json!([]))?.as_str().unwrap_or_default().to_string();
        Ok(Chain {
            node: d.node.clone(),
            api: d.api.clone(),
            sup: sup.clone(),
            block_interval,
            params,
            staker,
            fp,
            mining_address,
            wallet: wallet.to_string(),
        })
    }

    pub fn height(&self) -> Result<u32> {
        self.node.height()
    }

    /// The params version in force at `height` (the first one below its activation).
    pub fn params_at(&self, height: u32) -> &ParamsVersion {
        self.params.for_height(height as u64).map(|(_, p)| p).unwrap_or(&self.params.versions[0])
    }

    /// Funds the staker's wallet: 111 blocks to it, so that scenario 1 starts at height 111.
    pub fn fund(&self) -> Result<()> {
        let h = self.height()?;
        if h < 111 {
            self.node.call("generatetoaddress", json!([111 - h, self.mining_address]))?;
        }
        self.wait_synced()?;
        let balance = self.node.wallet(&self.wallet, "getbalance", json!([]))?;
        println!(" staker wallet funded: {balance} BTC spendable at height {}", self.height()?);
        Ok(())
    }

    /// Waits for the next block (mined now in fast mode, by the node in real-time mode) and
    /// for the engine to have it.
    pub fn next_block(&self) -> Result<u32> {
        let h = self.height()?;
        if self.block_interval == 0 {
            println!("Mining the next bitcoin block...");
            self.node.call("generatetoaddress", json!([1, self.mining_address]))?;
        } else {
            println!("Next bitcoin block will be produced in {} seconds...", self.block_interval);
            let wait = Duration::from_secs(self.block_interval as u64 * 3 + 10);
            wait_for("the node's next block", wait, || (self.height().ok()? > h).then_some(()))?;
        }
        self.wait_synced()?;
        let now = self.height()?;
        println!(" Current Height {now} ");
        Ok(now)
    }

    /// Mines until the tip is `height` (both modes) and the engine has it.
    pub fn reach(&self, height: u32) -> Result<()> {
        println!("Generating enough bitcoin blocks to reach bitcoin height {height}...");
        let h = self.height()?;
        if h < height {
            self.node.call("generatetoaddress", json!([height - h, self.mining_address]))?;
        }
        self.wait_synced()?;
        println!(" Reached target bitcoin height {} ", self.height()?);
        Ok(())
    }

    /// Until both plugins are at the node's best block (same height and hash).
    pub fn wait_synced(&self) -> Result<()> {
        let started = Instant::now();
        let mut seen = String::new();
        loop {
            let (h, hash) = self.node.tip()?;
            let mut ok = true;
            for p in ["phase1-staking", "unbonding"] {
                let s = get_json(&format!("{}/status/{p}", self.api))?;
                if s["status"] != "active" {
                    bail!("plugin {p} is {} at height {}: {}", s["status"], s["height"], s["reason"]);
                }
                if s["height"] != json!(h) || s["block"] != json!(hash) {
                    ok = false;
                    seen = format!("{p} at height {} (block {})", s["height"], s["block"]);
                }
            }
            if ok {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the engine did not reach the node's tip {h} ({hash}) within 60 s: {seen}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Builds (staking-cli), funds and signs (the node's wallet) and sends a staking transaction.
    pub fn stake(&self, amount: u64, staking_time: u16) -> Result<Sent> {
        println!(
            "Sign and send a staking transaction with stake: {} BTC and staking term: {staking_time} blocks",
            btc(amount)
        );
        let p = self.params_at(self.height()? + 1);
        let staker = self.staker.x_only_public_key().0;
        // Unchecked: scenario 5 sends a stake the new parameters reject, on purpose.
        let unsigned = staking_cli::staking_tx_unchecked(&staker, &self.fp, staking_time, amount, p)?;
        let funded = self.node.wallet(&self.wallet, "fundrawtransaction", json!([serialize_hex(&unsigned)]))?;
        let signed = self.node.wallet(&self.wallet, "signrawtransactionwithwallet", json!([funded["hex"]]))?;
        if signed["complete"] != json!(true) {
            bail!("the staker wallet could not sign the staking transaction: {signed}");
        }
        let hex = signed["hex"].as_str().unwrap_or_default();
        let tx: Transaction = deserialize_hex(hex)?;
        self.node.call("sendrawtransaction", json!([hex]))?;
        let txid = tx.compute_txid();
        println!("Staking transaction submitted to bitcoind regtest with tx ID:  {txid} ");
        Ok(Sent { tx, txid })
    }

    /// The stake as included in the chain (params of its inclusion height).
    pub fn included(&self, s: &Sent) -> Result<Stake> {
        let v = self.node.call("getrawtransaction", json!([s.txid.to_string(), true]))?;
        let block =
            v["blockhash"].as_str().ok_or_else(|| anyhow!("staking transaction {} is not in a block", s.txid))?;
        let header = self.node.call("getblockheader", json!([block]))?;
        let height = header["height"].as_u64().unwrap_or(0);
        Ok(Stake::new(s.tx.clone(), &self.params, height)?)
    }

    /// The `POST /v1/unbonding` request body for `s`, signed by the staker.
    pub fn unbonding_request(&self, s: &Sent) -> Result<(staking_cli::UnbondingRequestJson, Txid)> {
        let stake = self.included(s)?;
        let req = staking_cli::unbonding_request_for(&stake, &self.staker)?;
        let txid = req.unbonding_tx_hash_hex.parse()?;
        Ok((req, txid))
    }

    /// Sends the staker's withdrawal through the timelock leaf of the staking output or, with
    /// `unbonding`, of the unbonding output; returns its txid.
    pub fn withdraw(&self, s: &Sent, unbonding: Option<&Transaction>) -> Result<Txid> {
        println!("Send the withdrawal transactions to bitcoind regtest");
        let stake = self.included(s)?;
        let addr = self.node.wallet(&self.wallet, "getnewaddress", json!([]))?;
        let to = addr
            .as_str()
            .unwrap_or_default()
            .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()?
            .assume_checked()
            .script_pubkey();
        let tx = match unbonding {
            Some(u) => staking_cli::unsigned_withdrawal_from_unbonding(&stake, Some(u), &to, WITHDRAW_FEE)?,
            None => staking_cli::unsigned_withdrawal_from_staking(&stake, &to, WITHDRAW_FEE)?,
        }
        .sign(&self.staker)?;
        self.node.call("sendrawtransaction", json!([serialize_hex(&tx)]))?;
        let txid = tx.compute_txid();
        println!("Withdrawal transaction submitted to bitcoind regtest with tx ID  {txid} ");
        Ok(txid)
    }

    /// A transaction from the node (mempool or chain).
    pub fn transaction(&self, txid: &Txid) -> Result<Transaction> {
        let hex = self.node.call("getrawtransaction", json!([txid.to_string()]))?;
        Ok(deserialize_hex(hex.as_str().unwrap_or_default())?)
    }

    pub fn in_mempool(&self, txid: &Txid) -> bool {
        self.node.call("getmempoolentry", json!([txid.to_string()])).is_ok()
    }

    pub fn invalidate_tip(&self) -> Result<String> {
        let (_, hash) = self.node.tip()?;
        println!("The latest bitcoin block with hash {hash} will now be invalidated...");
        self.node.call("invalidateblock", json!([hash]))?;
        Ok(hash)
    }
}

/// Satoshis as BTC the way the seed prints them (2, 1.5).
pub fn btc(sat: u64) -> String {
    if sat % BTC == 0 {
        (sat / BTC).to_string()
    } else {
        format!("{}", sat as f64 / BTC as f64)
    }
}
