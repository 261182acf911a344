//! Raw transactions: getrawtransaction, decoderawtransaction, sendrawtransaction,
//! testmempoolaccept.

use super::blockchain::{block_hash, txid};
use super::encode::tx_json;
use super::error::*;
use super::params::{amount_from_value, value_from_amount, Params};
use crate::mempool::RejectKind;
use crate::node::Node;
use crate::walletview::broadcast;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, FeeRate, Transaction};
use serde_json::{json, Value};

/// Core's default -maxfeerate for sendrawtransaction and testmempoolaccept: 0.10 BTC/kvB.
const DEFAULT_MAX_FEE_RATE_SAT_PER_KVB: u64 = 10_000_000;

pub fn handle(node: &mut Node, method: &str, p: &Params) -> Option<RpcResult> {
    Some(match method {
        "getrawtransaction" => getrawtransaction(node, p),
        "decoderawtransaction" => {
            p.str(0, "hexstring").and_then(decode_tx).map(|tx| Value::Object(tx_json(&tx, false, None)))
        }
        "sendrawtransaction" => sendrawtransaction(node, p),
        "testmempoolaccept" => testmempoolaccept(node, p),
        _ => return None,
    })
}

/// Decodes hex the way Core's DecodeHexTx does (witness serialization first).
pub fn decode_tx(hex_str: &str) -> Result<Transaction, RpcError> {
    let bytes = hex::decode(hex_str).map_err(|_| {
        RpcError::new(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.")
    })?;
    bitcoin::consensus::deserialize::<Transaction>(&bytes).map_err(|_| {
        RpcError::new(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.")
    })
}

fn getrawtransaction(node: &Node, p: &Params) -> RpcResult {
    let txid = txid(p, 0, "txid")?;
    let verbosity = match p.get(1) {
        None => 0,
        Some(Value::Bool(b)) => *b as i64,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(v) => {
            return Err(RpcError::type_error(format!(
                "JSON value {v} for field verbosity is not of expected type number"
            )))
        }
    };
    let in_block = match p.get(2) {
        Some(_) => Some(block_hash(p, 2, "blockhash")?),
        None => None,
    };
    let chain = &node.chain;
    let (tx, block): (Transaction, Option<bitcoin::BlockHash>) = if let Some(bh) = in_block {
        let block =
            chain.block(&bh).ok_or_else(|| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Block hash not found"))?;
        let tx = block.txdata.iter().find(|t| t.compute_txid() == txid).cloned().ok_or_else(|| {
            RpcError::new(
                RPC_INVALID_ADDRESS_OR_KEY,
                "No such transaction found in the provided block. Use gettransaction for wallet transactions.",
            )
        })?;
        (tx, Some(bh))
    } else if let Some(e) = node.mempool.get(&txid) {
        ((*e.tx).clone(), None)
    } else if let Some((tx, loc)) = chain.confirmed_tx(&txid).filter(|_| node.config.txindex) {
        (tx.clone(), Some(loc.block))
    } else {
        let msg = if node.config.txindex {
            "No such mempool or blockchain transaction. Use gettransaction for wallet transactions."
        } else {
            "No such mempool transaction. Use -txindex or provide a block hash to enable blockchain transaction queries. Use gettransaction for wallet transactions."
        };
        return Err(RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, msg));
    };
    if verbosity == 0 {
        return Ok(json!(serialize_hex(&tx)));
    }
    let mut o = tx_json(&tx, true, None);
    if let Some(bh) = block {
        if in_block.is_some() {
            o.insert("in_active_chain".into(), json!(chain.is_active(&bh)));
        }
        o.insert("blockhash".into(), json!(bh.to_string()));
        if chain.is_active(&bh) {
            let meta = chain.meta(&bh).expect("known");
            let time = chain.block(&bh).expect("known").header.time;
            o.insert("confirmations".into(), json!(chain.height() - meta.height + 1));
            o.insert("time".into(), json!(time));
            o.insert("blocktime".into(), json!(time));
        } else {
            o.insert("confirmations".into(), json!(0));
        }
    }
    Ok(Value::Object(o))
}

fn max_fee_rate(p: &Params, i: usize) -> Result<FeeRate, RpcError> {
    match p.get(i) {
        None => Ok(FeeRate::from_sat_per_kwu(DEFAULT_MAX_FEE_RATE_SAT_PER_KVB / 4)),
        Some(v) => {
            let per_kvb = amount_from_value(v)?;
            Ok(FeeRate::from_sat_per_kwu(per_kvb.to_sat() / 4))
        }
    }
}

fn exceeds(rate: FeeRate, fee: Amount, vsize: u64) -> bool {
    rate != FeeRate::ZERO && fee > rate.fee_vb(vsize).unwrap_or(Amount::MAX_MONEY)
}

fn sendrawtransaction(node: &mut Node, p: &Params) -> RpcResult {
    let tx = decode_tx(p.str(0, "hexstring")?)?;
    let max_rate = max_fee_rate(p, 1)?;
    if node.mempool.get(&tx.compute_txid()).is_none() {
        if let Ok(ok) = node.test_tx(&tx) {
            if exceeds(max_rate, ok.fee, ok.vsize) {
                return Err(RpcError::new(
                    RPC_VERIFY_ERROR,
                    "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
                ));
            }
        }
    }
    let min_relay_fee = node.config.min_relay_fee;
    broadcast(&node.chain, &mut node.mempool, min_relay_fee, tx).map(|t| json!(t.to_string()))
}

fn testmempoolaccept(node: &Node, p: &Params) -> RpcResult {
    let raw = p.array(0, "rawtxs")?;
    if raw.is_empty() || raw.len() > 25 {
        return Err(RpcError::invalid_parameter("Array must contain between 1 and 25 transactions."));
    }
    let max_rate = max_fee_rate(p, 1)?;
    let txs: Vec<Transaction> = raw
        .iter()
        .map(|v| decode_tx(v.as_str().ok_or_else(|| RpcError::type_error("rawtxs must hold hex strings"))?))
        .collect::<Result<_, _>>()?;
    if txs.len() > 1 {
        return Err(RpcError::invalid_parameter("this node tests one transaction at a time; send them separately"));
    }
    let tx = &txs[0];
    let mut o = serde_json::Map::new();
    o.insert("txid".into(), json!(tx.compute_txid().to_string()));
    o.insert("wtxid".into(), json!(tx.compute_wtxid().to_string()));
    match node.test_tx(tx) {
        Ok(ok) if exceeds(max_rate, ok.fee, ok.vsize) => {
            o.insert("allowed".into(), json!(false));
            o.insert("reject-reason".into(), json!("max-fee-exceeded"));
        }
        Ok(ok) => {
            o.insert("allowed".into(), json!(true));
            o.insert("vsize".into(), json!(ok.vsize));
            let rate_btc_kvb = Amount::from_sat(ok.fee.to_sat() * 1000 / ok.vsize.max(1));
            o.insert(
                "fees".into(),
                json!({"base": value_from_amount(ok.fee), "effective-feerate": value_from_amount(rate_btc_kvb),
                       "effective-includes": [tx.compute_wtxid().to_string()]}),
            );
        }
        Err(r) => {
            o.insert("allowed".into(), json!(false));
            if r.kind == RejectKind::MissingInputs {
                // Core says "missing-inputs" here; the consensus reason is kept in the details.
                o.insert("reject-reason".into(), json!("missing-inputs"));
                o.insert("reject-details".into(), json!(r.reason));
            } else {
                o.insert("reject-reason".into(), json!(r.reason));
                o.insert("reject-details".into(), json!(r.details()));
            }
        }
    }
    Ok(json!([Value::Object(o)]))
}
