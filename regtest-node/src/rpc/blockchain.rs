//! Chain and mempool queries: getblockchaininfo, getblockcount, getbestblockhash, getblockhash,
//! getblockheader, getblock, gettxout, getrawmempool, getmempoolentry, getmempoolinfo,
//! getchaintips, getdifficulty, invalidateblock, reconsiderblock.

use super::encode::{block_json, difficulty, header_json, script_pubkey_json, work_hex};
use super::error::*;
use super::params::{value_from_amount, Params};
use crate::mempool::Entry;
use crate::node::Node;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{BlockHash, OutPoint, Txid};
use serde_json::{json, Map, Value};
use std::str::FromStr;

pub fn handle(node: &mut Node, method: &str, p: &Params) -> Option<RpcResult> {
    Some(match method {
        "getblockchaininfo" => Ok(blockchain_info(node)),
        "getblockcount" => Ok(json!(node.chain.height())),
        "getbestblockhash" => Ok(json!(node.chain.tip().to_string())),
        "getdifficulty" => Ok(json!(difficulty(node.chain.block(&node.chain.tip()).expect("tip").header.bits))),
        "getblockhash" => getblockhash(node, p),
        "getblockheader" => getblockheader(node, p),
        "getblock" => getblock(node, p),
        "gettxout" => gettxout(node, p),
        "getrawmempool" => getrawmempool(node, p),
        "getmempoolentry" => getmempoolentry(node, p),
        "getmempoolinfo" => Ok(mempool_info(node)),
        "getchaintips" => Ok(chain_tips(node)),
        "invalidateblock" => {
            block_hash(p, 0, "blockhash").and_then(|h| node.invalidate(h).map(|_| Value::Null).map_err(block_op_error))
        }
        "reconsiderblock" => {
            block_hash(p, 0, "blockhash").and_then(|h| node.reconsider(h).map(|_| Value::Null).map_err(block_op_error))
        }
        _ => return None,
    })
}

fn block_op_error(e: anyhow::Error) -> RpcError {
    let text = format!("{e:#}");
    if text == "Block not found" {
        RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, text)
    } else {
        RpcError::new(RPC_DATABASE_ERROR, text)
    }
}

/// A 64-hex-digit hash parameter, with Core's messages.
pub fn parse_hash<T: FromStr>(s: &str, name: &str) -> Result<T, RpcError> {
    if s.len() != 64 {
        return Err(RpcError::invalid_parameter(format!("{name} must be of length 64 (not {}, for '{s}')", s.len())));
    }
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RpcError::invalid_parameter(format!("{name} must be hexadecimal string (not '{s}')")));
    }
    T::from_str(s).map_err(|_| RpcError::invalid_parameter(format!("{name} must be hexadecimal string (not '{s}')")))
}

pub fn block_hash(p: &Params, i: usize, name: &str) -> Result<BlockHash, RpcError> {
    parse_hash(p.str(i, name)?, name)
}

pub fn txid(p: &Params, i: usize, name: &str) -> Result<Txid, RpcError> {
    parse_hash(p.str(i, name)?, name)
}

fn blockchain_info(node: &Node) -> Value {
    let chain = &node.chain;
    let tip = chain.tip();
    let meta = chain.meta(&tip).expect("tip");
    let header = &chain.block(&tip).expect("tip").header;
    let size_on_disk = std::fs::metadata(node.config.network_dir().join("blocks.log")).map(|m| m.len()).unwrap_or(0);
    let buried = |h: u32| json!({"type": "buried", "active": true, "height": h});
    json!({
        "chain": "regtest",
        "blocks": meta.height,
        "headers": meta.height,
        "bestblockhash": tip.to_string(),
        "bits": format!("{:08x}", header.bits.to_consensus()),
        "target": hex::encode(header.target().to_be_bytes()),
        "difficulty": difficulty(header.bits),
        "time": header.time,
        "mediantime": chain.median_time_past(&tip),
        "verificationprogress": 1.0,
        "initialblockdownload": false,
        "chainwork": work_hex(meta),
        "size_on_disk": size_on_disk,
        "pruned": false,
        "softforks": {
            "bip34": buried(1), "bip66": buried(1), "bip65": buried(1), "csv": buried(1),
            "segwit": buried(0), "taproot": {"type": "buried", "active": true, "height": 0},
        },
        "warnings": [],
    })
}

fn getblockhash(node: &Node, p: &Params) -> RpcResult {
    let height = p.i64(0, "height")?;
    if height < 0 || height > node.chain.height() as i64 {
        return Err(RpcError::invalid_parameter("Block height out of range"));
    }
    Ok(json!(node.chain.hash_at(height as u32).expect("in range").to_string()))
}

fn verbose_flag(p: &Params, i: usize, name: &str, default: bool) -> Result<bool, RpcError> {
    match p.get(i) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or(0) != 0),
        Some(other) => {
            Err(RpcError::type_error(format!("JSON value {other} for field {name} is not of expected type bool")))
        }
    }
}

fn getblockheader(node: &Node, p: &Params) -> RpcResult {
    let hash = block_hash(p, 0, "blockhash")?;
    let verbose = verbose_flag(p, 1, "verbose", true)?;
    let block = node.chain.block(&hash).ok_or_else(|| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Block not found"))?;
    if !verbose {
        return Ok(json!(serialize_hex(&block.header)));
    }
    Ok(Value::Object(header_json(&node.chain, &hash)))
}

fn getblock(node: &Node, p: &Params) -> RpcResult {
    let hash = block_hash(p, 0, "blockhash")?;
    let verbosity = match p.get(1) {
        None => 1,
        Some(Value::Bool(b)) => *b as u8,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v @ 0..=3) => v as u8,
            _ => return Err(RpcError::invalid_parameter(format!("Verbosity was {n}, must be 0, 1, 2 or 3"))),
        },
        Some(v) => {
            return Err(RpcError::type_error(format!(
                "JSON value {v} for field verbosity is not of expected type number"
            )))
        }
    };
    let block = node.chain.block(&hash).ok_or_else(|| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Block not found"))?;
    if verbosity == 0 {
        return Ok(json!(serialize_hex(&**block)));
    }
    Ok(block_json(&node.chain, block, verbosity))
}

fn gettxout(node: &Node, p: &Params) -> RpcResult {
    let txid = txid(p, 0, "txid")?;
    let n = p.i64(1, "n")?;
    let include_mempool = p.opt_bool(2, "include_mempool")?.unwrap_or(true);
    if n < 0 || n > u32::MAX as i64 {
        return Err(RpcError::invalid_parameter("Invalid parameter, vout cannot be negative"));
    }
    let outpoint = OutPoint::new(txid, n as u32);
    let tip = node.chain.tip();
    if include_mempool {
        if node.mempool.spender(&outpoint).is_some() {
            return Ok(Value::Null);
        }
        if let Some(out) = node.mempool.unspent_output(&outpoint) {
            return Ok(json!({
                "bestblock": tip.to_string(),
                "confirmations": 0,
                "value": value_from_amount(out.value),
                "scriptPubKey": script_pubkey_json(&out.script_pubkey),
                "coinbase": false,
            }));
        }
    }
    match node.chain.utxo(&outpoint) {
        None => Ok(Value::Null),
        Some(coin) => Ok(json!({
            "bestblock": tip.to_string(),
            "confirmations": node.chain.height() - coin.height + 1,
            "value": value_from_amount(coin.txout.value),
            "scriptPubKey": script_pubkey_json(&coin.txout.script_pubkey),
            "coinbase": coin.is_coinbase,
        })),
    }
}

fn entry_json(node: &Node, e: &Entry) -> Value {
    let fees = json!({
        "base": value_from_amount(e.fee),
        "modified": value_from_amount(e.fee),
        "ancestor": value_from_amount(e.fee),
        "descendant": value_from_amount(e.fee),
    });
    let depends: Vec<String> = node.mempool.parents(&e.txid).iter().map(|t| t.to_string()).collect();
    let spentby: Vec<String> = node.mempool.children(&e.txid).iter().map(|t| t.to_string()).collect();
    json!({
        "vsize": e.vsize,
        "weight": e.weight,
        "time": e.time,
        "height": e.height,
        "descendantcount": 1 + spentby.len(),
        "descendantsize": e.vsize,
        "ancestorcount": 1 + depends.len(),
        "ancestorsize": e.vsize,
        "wtxid": e.wtxid.to_string(),
        "fees": fees,
        "depends": depends,
        "spentby": spentby,
        "bip125-replaceable": false,
        "unbroadcast": false,
    })
}

fn getrawmempool(node: &Node, p: &Params) -> RpcResult {
    let verbose = verbose_flag(p, 0, "verbose", false)?;
    let sequence = p.opt_bool(1, "mempool_sequence")?.unwrap_or(false);
    if verbose && sequence {
        return Err(RpcError::invalid_parameter("Verbose results cannot contain mempool sequence values."));
    }
    if verbose {
        let mut o = Map::new();
        for e in node.mempool.ordered() {
            o.insert(e.txid.to_string(), entry_json(node, e));
        }
        return Ok(Value::Object(o));
    }
    let txids: Vec<String> = node.mempool.ordered().map(|e| e.txid.to_string()).collect();
    if sequence {
        return Ok(json!({"txids": txids, "mempool_sequence": node.mempool.len()}));
    }
    Ok(json!(txids))
}

fn getmempoolentry(node: &Node, p: &Params) -> RpcResult {
    let txid = txid(p, 0, "txid")?;
    match node.mempool.get(&txid) {
        Some(e) => Ok(entry_json(node, e)),
        None => Err(RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")),
    }
}

fn mempool_info(node: &Node) -> Value {
    let bytes: u64 = node.mempool.ordered().map(|e| e.vsize).sum();
    let fees: bitcoin::Amount = node.mempool.ordered().map(|e| e.fee).sum();
    let minfee = value_from_amount(bitcoin::Amount::from_sat(node.config.min_relay_fee.to_sat_per_kwu() * 4));
    json!({
        "loaded": true,
        "size": node.mempool.len(),
        "bytes": bytes,
        "usage": bytes * 4,
        "total_fee": value_from_amount(fees),
        "maxmempool": 300_000_000,
        "mempoolminfee": minfee,
        "minrelaytxfee": minfee,
        "incrementalrelayfee": 0.00001,
        "unbroadcastcount": 0,
        "fullrbf": true,
    })
}

fn chain_tips(node: &Node) -> Value {
    let chain = &node.chain;
    let invalid = node.invalid_blocks();
    let mut tips = chain.tips();
    if !tips.contains(&chain.tip()) {
        tips.insert(0, chain.tip());
    }
    let tips: Vec<Value> = tips
        .into_iter()
        .map(|tip| {
            let meta = chain.meta(&tip).expect("known");
            let fork = chain.fork_point(tip);
            let branchlen = meta.height - chain.meta(&fork).expect("known").height;
            let status = if chain.is_active(&tip) {
                "active"
            } else if invalid.contains(&tip) {
                "invalid"
            } else {
                "valid-fork"
            };
            json!({"height": meta.height, "hash": tip.to_string(), "branchlen": branchlen, "status": status})
        })
        .collect();
    json!(tips)
}
