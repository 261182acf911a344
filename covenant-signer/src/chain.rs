//! The [`Chain`] of a full node with `-txindex`, over JSON-RPC: `getrawtransaction <txid> true`
//! (the node's answer decides "not found" / "mempool" / "in block"), `getblockheader <hash>` for the
//! block's height and whether it is on the best chain, `getblockcount` for the tip.

use std::str::FromStr;

use phase1_primitives::bitcoin::consensus::encode::deserialize;
use phase1_primitives::bitcoin::{BlockHash, Transaction, Txid};
use serde_json::{json, Value};

use crate::checks::{Chain, ChainError, TxStatus};
use crate::rpc::{RpcClient, RpcError, RPC_INVALID_ADDRESS_OR_KEY};

/// A bitcoind (or regtest-node) with `-txindex`.
#[derive(Debug, Clone)]
pub struct BitcoindChain {
    rpc: RpcClient,
}

fn chain_error(what: &str, rpc: &RpcClient, e: RpcError) -> ChainError {
    ChainError(format!("{what} at {} failed: {e}", rpc.url()))
}

impl BitcoindChain {
    /// A chain read through `rpc`.
    pub fn new(rpc: RpcClient) -> BitcoindChain {
        BitcoindChain { rpc }
    }

    /// The RPC client.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// Checks the node is reachable, on `expected_chain` (Core's `chain` name) and runs with
    /// `-txindex`. Returns a description of the node for the log.
    pub fn probe(&self, expected_chain: Option<&str>) -> Result<String, String> {
        let info = self
            .rpc
            .call("getblockchaininfo", json!([]))
            .map_err(|e| format!("[btc-config] the full node at {} does not answer: {e}", self.rpc.url()))?;
        let chain = info.get("chain").and_then(Value::as_str).unwrap_or("?").to_string();
        let blocks = info.get("blocks").and_then(Value::as_u64).unwrap_or(0);
        if let Some(expected) = expected_chain {
            if chain != expected {
                return Err(format!(
                    "[btc-config] the full node at {} is on chain {chain:?} but network expects {expected:?}: fix network or point host at the right node",
                    self.rpc.url()
                ));
            }
        }
        match self.rpc.call("getindexinfo", json!([])) {
            Ok(v) if v.get("txindex").is_none() => {
                return Err(format!(
                    "[btc-config] the full node at {} runs without a transaction index: restart it with -txindex=1",
                    self.rpc.url()
                ))
            }
            Ok(_) => {}
            // Older nodes without getindexinfo: the first lookup will tell.
            Err(RpcError::Rpc { .. }) => {}
            Err(e) => return Err(format!("[btc-config] getindexinfo at {} failed: {e}", self.rpc.url())),
        }
        Ok(format!("chain {chain}, height {blocks}, txindex on"))
    }
}

impl Chain for BitcoindChain {
    fn tx_status(&self, txid: &Txid) -> Result<TxStatus, ChainError> {
        let v = match self.rpc.call("getrawtransaction", json!([txid.to_string(), true])) {
            Ok(v) => v,
            Err(RpcError::Rpc { code: RPC_INVALID_ADDRESS_OR_KEY, .. }) => return Ok(TxStatus::NotFound),
            Err(e) => return Err(chain_error("getrawtransaction", &self.rpc, e)),
        };
        let Some(block) = v.get("blockhash").and_then(Value::as_str) else {
            return Ok(TxStatus::InMempool);
        };
        let block_hash = BlockHash::from_str(block)
            .map_err(|e| ChainError(format!("getrawtransaction returned a bad blockhash {block:?}: {e}")))?;
        let hex_tx = v
            .get("hex")
            .and_then(Value::as_str)
            .ok_or_else(|| ChainError("getrawtransaction (verbose) returned no \"hex\" field".into()))?;
        let bytes = hex::decode(hex_tx).map_err(|e| ChainError(format!("getrawtransaction returned bad hex: {e}")))?;
        let tx: Transaction = deserialize(&bytes)
            .map_err(|e| ChainError(format!("getrawtransaction returned an undecodable transaction: {e}")))?;
        let header = self
            .rpc
            .call("getblockheader", json!([block, true]))
            .map_err(|e| chain_error("getblockheader", &self.rpc, e))?;
        let confirmations = header.get("confirmations").and_then(Value::as_i64).unwrap_or(-1);
        if confirmations < 1 {
            return Ok(TxStatus::InStaleBlock { block_hash });
        }
        let height = header
            .get("height")
            .and_then(Value::as_u64)
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| ChainError(format!("getblockheader {block} returned no height")))?;
        Ok(TxStatus::InBlock { tx, block_hash, height })
    }

    fn tip_height(&self) -> Result<u32, ChainError> {
        let v = self.rpc.call("getblockcount", json!([])).map_err(|e| chain_error("getblockcount", &self.rpc, e))?;
        v.as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| ChainError(format!("getblockcount returned {v}, not a height")))
    }
}
