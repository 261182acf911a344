//! Bitcoin Core's JSON renderings of scripts, transactions, headers and blocks
//! (core_write.cpp's ScriptToAsmStr/ScriptToUniv/TxToUniv and blockchain.cpp's blockheaderToJSON).

use super::params::value_from_amount;
use crate::chain::{BlockMeta, Chain};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::script::Instruction;
use bitcoin::{Address, Block, BlockHash, Network, Script, Transaction, TxOut};
use serde_json::{json, Map, Value};

/// Core's ScriptToAsmStr (without sighash decoding).
pub fn asm(script: &Script) -> String {
    let mut parts = Vec::new();
    for ins in script.instructions() {
        match ins {
            Ok(Instruction::PushBytes(b)) => {
                let b = b.as_bytes();
                if b.len() <= 4 {
                    parts.push(script_num(b).to_string());
                } else {
                    parts.push(hex::encode(b));
                }
            }
            Ok(Instruction::Op(op)) => parts.push(op_name(op)),
            Err(_) => {
                parts.push("[error]".to_string());
                break;
            }
        }
    }
    parts.join(" ")
}

fn script_num(b: &[u8]) -> i64 {
    if b.is_empty() {
        return 0;
    }
    let mut result: i64 = 0;
    for (i, byte) in b.iter().enumerate() {
        result |= (*byte as i64) << (8 * i);
    }
    let last = b[b.len() - 1];
    if last & 0x80 != 0 {
        -(result & !(0x80i64 << (8 * (b.len() - 1))))
    } else {
        result
    }
}

fn op_name(op: bitcoin::Opcode) -> String {
    use bitcoin::opcodes::all::*;
    let code = op.to_u8();
    if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&code) {
        return (code - OP_PUSHNUM_1.to_u8() + 1).to_string();
    }
    match op {
        OP_PUSHNUM_NEG1 => "-1".into(),
        OP_CLTV => "OP_CHECKLOCKTIMEVERIFY".into(),
        OP_CSV => "OP_CHECKSEQUENCEVERIFY".into(),
        OP_NOP1 | OP_NOP4 | OP_NOP5 | OP_NOP6 | OP_NOP7 | OP_NOP8 | OP_NOP9 | OP_NOP10 => format!("{op:?}"),
        OP_CHECKSIGADD => "OP_CHECKSIGADD".into(),
        _ if code > OP_CHECKSIGADD.to_u8() => "OP_UNKNOWN".into(),
        _ => format!("{op:?}"),
    }
}

/// Core's script type names (GetTxnOutputType).
pub fn script_type(script: &Script) -> &'static str {
    if script.is_p2tr() {
        "witness_v1_taproot"
    } else if script.is_p2wpkh() {
        "witness_v0_keyhash"
    } else if script.is_p2wsh() {
        "witness_v0_scripthash"
    } else if script.is_p2pkh() {
        "pubkeyhash"
    } else if script.is_p2sh() {
        "scripthash"
    } else if script.is_op_return() {
        "nulldata"
    } else if script.is_p2pk() {
        "pubkey"
    } else if script.is_multisig() {
        "multisig"
    } else if script.as_bytes() == [0x51, 0x02, 0x4e, 0x73] {
        "anchor"
    } else if script.is_witness_program() {
        "witness_unknown"
    } else {
        "nonstandard"
    }
}

pub fn descriptor_with_checksum(desc: &str) -> String {
    match miniscript::descriptor::checksum::desc_checksum(desc) {
        Ok(sum) => format!("{desc}#{sum}"),
        Err(_) => desc.to_string(),
    }
}

/// Core's inferred descriptor for a bare output script.
pub fn infer_descriptor(script: &Script) -> String {
    let desc = if script.is_p2tr() {
        format!("rawtr({})", hex::encode(&script.as_bytes()[2..34]))
    } else if let Ok(addr) = Address::from_script(script, Network::Regtest) {
        format!("addr({addr})")
    } else {
        format!("raw({})", hex::encode(script.as_bytes()))
    };
    descriptor_with_checksum(&desc)
}

/// Core's ScriptToUniv for output scripts.
pub fn script_pubkey_json(script: &Script) -> Value {
    let mut o = Map::new();
    o.insert("asm".into(), json!(asm(script)));
    o.insert("desc".into(), json!(infer_descriptor(script)));
    o.insert("hex".into(), json!(hex::encode(script.as_bytes())));
    if let Ok(addr) = Address::from_script(script, Network::Regtest) {
        o.insert("address".into(), json!(addr.to_string()));
    }
    o.insert("type".into(), json!(script_type(script)));
    Value::Object(o)
}

pub fn txout_json(out: &TxOut, n: usize) -> Value {
    json!({"value": value_from_amount(out.value), "n": n, "scriptPubKey": script_pubkey_json(&out.script_pubkey)})
}

/// Core's TxToUniv. `spent` (when known) adds the fee, as getblock verbosity 2 does.
pub fn tx_json(tx: &Transaction, include_hex: bool, spent: Option<&[TxOut]>) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("txid".into(), json!(tx.compute_txid().to_string()));
    o.insert("hash".into(), json!(tx.compute_wtxid().to_string()));
    o.insert("version".into(), json!(tx.version.0));
    o.insert("size".into(), json!(tx.total_size()));
    o.insert("vsize".into(), json!(tx.vsize()));
    o.insert("weight".into(), json!(tx.weight().to_wu()));
    o.insert("locktime".into(), json!(tx.lock_time.to_consensus_u32()));
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let mut v = Map::new();
            if tx.is_coinbase() {
                v.insert("coinbase".into(), json!(hex::encode(i.script_sig.as_bytes())));
            } else {
                v.insert("txid".into(), json!(i.previous_output.txid.to_string()));
                v.insert("vout".into(), json!(i.previous_output.vout));
                v.insert(
                    "scriptSig".into(),
                    json!({"asm": asm(&i.script_sig), "hex": hex::encode(i.script_sig.as_bytes())}),
                );
            }
            if !i.witness.is_empty() {
                v.insert("txinwitness".into(), json!(i.witness.iter().map(hex::encode).collect::<Vec<_>>()));
            }
            v.insert("sequence".into(), json!(i.sequence.0));
            Value::Object(v)
        })
        .collect();
    o.insert("vin".into(), Value::Array(vin));
    let vout: Vec<Value> = tx.output.iter().enumerate().map(|(n, out)| txout_json(out, n)).collect();
    o.insert("vout".into(), Value::Array(vout));
    if let Some(spent) = spent {
        if !tx.is_coinbase() {
            let input: bitcoin::Amount = spent.iter().map(|s| s.value).sum();
            let output: bitcoin::Amount = tx.output.iter().map(|s| s.value).sum();
            if let Some(fee) = input.checked_sub(output) {
                o.insert("fee".into(), value_from_amount(fee));
            }
        }
    }
    if include_hex {
        o.insert("hex".into(), json!(serialize_hex(tx)));
    }
    o
}

pub fn difficulty(bits: bitcoin::CompactTarget) -> f64 {
    // Core's GetDifficulty: ratio of the difficulty-1 target to this one.
    let mut shift = (bits.to_consensus() >> 24) & 0xff;
    let mut diff = 0x0000ffff as f64 / (bits.to_consensus() & 0x00ff_ffff) as f64;
    while shift < 29 {
        diff *= 256.0;
        shift += 1;
    }
    while shift > 29 {
        diff /= 256.0;
        shift -= 1;
    }
    diff
}

pub fn work_hex(meta: &BlockMeta) -> String {
    hex::encode(meta.chainwork.to_be_bytes())
}

/// Core's blockheaderToJSON.
pub fn header_json(chain: &Chain, hash: &BlockHash) -> Map<String, Value> {
    let block = chain.block(hash).expect("known block");
    let meta = chain.meta(hash).expect("known block");
    let h = &block.header;
    let confirmations: i64 = if chain.is_active(hash) { (chain.height() - meta.height + 1) as i64 } else { -1 };
    let mut o = Map::new();
    o.insert("hash".into(), json!(hash.to_string()));
    o.insert("confirmations".into(), json!(confirmations));
    o.insert("height".into(), json!(meta.height));
    o.insert("version".into(), json!(h.version.to_consensus()));
    o.insert("versionHex".into(), json!(format!("{:08x}", h.version.to_consensus())));
    o.insert("merkleroot".into(), json!(h.merkle_root.to_string()));
    o.insert("time".into(), json!(h.time));
    o.insert("mediantime".into(), json!(chain.median_time_past(hash)));
    o.insert("nonce".into(), json!(h.nonce));
    o.insert("bits".into(), json!(format!("{:08x}", h.bits.to_consensus())));
    o.insert("target".into(), json!(hex::encode(h.target().to_be_bytes())));
    o.insert("difficulty".into(), json!(difficulty(h.bits)));
    o.insert("chainwork".into(), json!(work_hex(meta)));
    o.insert("nTx".into(), json!(block.txdata.len()));
    if meta.height > 0 {
        o.insert("previousblockhash".into(), json!(h.prev_blockhash.to_string()));
    }
    if let Some(next) = chain.next_on_active(hash) {
        o.insert("nextblockhash".into(), json!(next.to_string()));
    }
    o
}

/// Core's blockToJSON for verbosity 1 (txids) and 2/3 (full transactions with fees).
pub fn block_json(chain: &Chain, block: &Block, verbosity: u8) -> Value {
    let hash = block.block_hash();
    let meta = chain.meta(&hash).expect("known block");
    let mut o = header_json(chain, &hash);
    o.insert("strippedsize".into(), json!(meta.stripped_size));
    o.insert("size".into(), json!(meta.size));
    o.insert("weight".into(), json!(meta.weight));
    let txs: Vec<Value> = if verbosity <= 1 {
        block.txdata.iter().map(|tx| json!(tx.compute_txid().to_string())).collect()
    } else {
        let spent = spent_outputs(chain, block);
        block
            .txdata
            .iter()
            .enumerate()
            .map(|(i, tx)| Value::Object(tx_json(tx, true, spent.as_ref().map(|s| s[i].as_slice()))))
            .collect()
    };
    // Core puts "tx" before the header's tail fields; key order does not matter to JSON readers.
    o.insert("tx".into(), Value::Array(txs));
    Value::Object(o)
}

/// Outputs spent by each transaction of a block (empty for the coinbase), found in the block
/// itself or in the confirmed transactions before it.
fn spent_outputs(chain: &Chain, block: &Block) -> Option<Vec<Vec<TxOut>>> {
    let mut in_block: std::collections::HashMap<bitcoin::Txid, &Transaction> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(block.txdata.len());
    for (i, tx) in block.txdata.iter().enumerate() {
        if i == 0 {
            out.push(Vec::new());
        } else {
            let mut spent = Vec::with_capacity(tx.input.len());
            for input in &tx.input {
                let prev = input.previous_output;
                let txout = match in_block.get(&prev.txid) {
                    Some(t) => {
                        let t: &&Transaction = t;
                        t.output.get(prev.vout as usize).cloned()
                    }
                    None => chain.confirmed_tx(&prev.txid).and_then(|(t, _)| t.output.get(prev.vout as usize).cloned()),
                }?;
                spent.push(txout);
            }
            out.push(spent);
        }
        in_block.insert(tx.compute_txid(), tx);
    }
    Some(out)
}
