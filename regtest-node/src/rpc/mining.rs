//! Mining on request: generatetoaddress, generatetodescriptor, generateblock, submitblock,
//! getmininginfo.

use super::error::*;
use super::params::Params;
use super::rawtx::decode_tx;
use crate::node::{BlockRejected, Node};
use bitcoin::{Address, Network, ScriptBuf, Transaction};
use serde_json::{json, Value};
use std::str::FromStr;

pub fn handle(node: &mut Node, _wallet: Option<&str>, method: &str, p: &Params) -> Option<RpcResult> {
    Some(match method {
        "generatetoaddress" => generatetoaddress(node, p),
        "generatetodescriptor" => generatetodescriptor(node, p),
        "generateblock" => generateblock(node, p),
        "submitblock" => submitblock(node, p),
        "getmininginfo" => Ok(json!({
            "blocks": node.chain.height(),
            "difficulty": super::encode::difficulty(node.chain.block(&node.chain.tip()).expect("tip").header.bits),
            "networkhashps": 0,
            "pooledtx": node.mempool.len(),
            "chain": "regtest",
            "warnings": [],
        })),
        "generate" => Err(RpcError::new(
            RPC_METHOD_NOT_FOUND,
            "generate\n\nhas been replaced by the -generate cli option. Refer to -help for more information.",
        )),
        _ => return None,
    })
}

pub fn parse_address(s: &str) -> Result<ScriptBuf, RpcError> {
    Address::from_str(s)
        .ok()
        .and_then(|a| a.require_network(Network::Regtest).ok())
        .map(|a| a.script_pubkey())
        .ok_or_else(|| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address"))
}

fn block_count(p: &Params) -> Result<u32, RpcError> {
    let n = p.i64(0, "nblocks")?;
    if n < 0 {
        return Err(RpcError::invalid_parameter("nblocks must be non-negative"));
    }
    Ok(n as u32)
}

fn mined(node: &mut Node, n: u32, script: &ScriptBuf) -> RpcResult {
    let hashes = node.generate(n, script).map_err(block_error)?;
    Ok(json!(hashes.iter().map(|h| h.to_string()).collect::<Vec<_>>()))
}

fn block_error(e: BlockRejected) -> RpcError {
    match e {
        BlockRejected::Duplicate => RpcError::new(RPC_VERIFY_ERROR, "duplicate"),
        BlockRejected::Invalid(r) => RpcError::new(RPC_VERIFY_ERROR, format!("TestBlockValidity failed: {r}")),
    }
}

fn generatetoaddress(node: &mut Node, p: &Params) -> RpcResult {
    let n = block_count(p)?;
    let script = parse_address(p.str(1, "address")?)?;
    mined(node, n, &script)
}

fn generatetodescriptor(node: &mut Node, p: &Params) -> RpcResult {
    let n = block_count(p)?;
    let text = p.str(1, "descriptor")?;
    let desc = miniscript::Descriptor::<miniscript::DescriptorPublicKey>::from_str(text)
        .map_err(|e| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, e.to_string()))?;
    let script = desc
        .at_derivation_index(0)
        .map_err(|e| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, e.to_string()))?
        .script_pubkey();
    mined(node, n, &script)
}

fn generateblock(node: &mut Node, p: &Params) -> RpcResult {
    let output = p.str(0, "output")?;
    let script = match parse_address(output) {
        Ok(s) => s,
        Err(_) => miniscript::Descriptor::<miniscript::DescriptorPublicKey>::from_str(output)
            .ok()
            .and_then(|d| d.at_derivation_index(0).ok())
            .map(|d| d.script_pubkey())
            .ok_or_else(|| RpcError::invalid_parameter("Error: Invalid address or descriptor"))?,
    };
    let submit = p.opt_bool(2, "submit")?.unwrap_or(true);
    let mut txs: Vec<Transaction> = Vec::new();
    for item in p.array(1, "transactions")? {
        let s = item.as_str().ok_or_else(|| RpcError::type_error("transactions must be strings"))?;
        if s.len() == 64 {
            if let Ok(txid) = bitcoin::Txid::from_str(s) {
                let e = node
                    .mempool
                    .get(&txid)
                    .ok_or_else(|| RpcError::invalid_parameter(format!("Transaction {s} not in mempool.")))?;
                txs.push((*e.tx).clone());
                continue;
            }
        }
        let tx = decode_tx(s).map_err(|_| {
            RpcError::new(
                RPC_DESERIALIZATION_ERROR,
                format!("Transaction decode failed for {s}. Make sure the tx has at least one input."),
            )
        })?;
        txs.push(tx);
    }
    let block = node.generate_with(txs, &script, submit).map_err(block_error)?;
    let mut o = serde_json::Map::new();
    o.insert("hash".into(), json!(block.block_hash().to_string()));
    if !submit {
        o.insert("hex".into(), json!(bitcoin::consensus::encode::serialize_hex(&block)));
    }
    Ok(Value::Object(o))
}

fn submitblock(node: &mut Node, p: &Params) -> RpcResult {
    let bytes = hex::decode(p.str(0, "hexdata")?)
        .map_err(|_| RpcError::new(RPC_DESERIALIZATION_ERROR, "Block decode failed"))?;
    let block: bitcoin::Block = bitcoin::consensus::deserialize(&bytes)
        .map_err(|_| RpcError::new(RPC_DESERIALIZATION_ERROR, "Block decode failed"))?;
    if block.txdata.first().map(|t| t.is_coinbase()) != Some(true) {
        return Err(RpcError::new(RPC_DESERIALIZATION_ERROR, "Block does not start with a coinbase"));
    }
    Ok(match node.submit_block(block) {
        Ok(_) => Value::Null,
        Err(BlockRejected::Duplicate) => json!("duplicate"),
        Err(BlockRejected::Invalid(r)) => json!(r),
    })
}
