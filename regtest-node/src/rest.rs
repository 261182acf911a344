//! Bitcoin Core's REST interface (unauthenticated, as with `-rest`): blocks, transactions,
//! headers, block hash by height and chain info, in .bin, .hex and .json forms.

use crate::rpc::blockchain::parse_hash;
use crate::rpc::encode::{block_json, header_json, tx_json};
use crate::rpc::Server;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bitcoin::consensus::serialize;
use bitcoin::{BlockHash, Txid};

enum Format {
    Bin,
    Hex,
    Json,
}

fn split_format(path: &str) -> Result<(&str, Format), Response> {
    let (stem, ext) =
        path.rsplit_once('.').ok_or_else(|| bad_request("output format not found (available: .bin, .hex, .json)"))?;
    let format = match ext {
        "bin" => Format::Bin,
        "hex" => Format::Hex,
        "json" => Format::Json,
        _ => return Err(bad_request("output format not found (available: .bin, .hex, .json)")),
    };
    Ok((stem, format))
}

fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain")], format!("{msg}\r\n")).into_response()
}

fn not_found(msg: &str) -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], format!("{msg}\r\n")).into_response()
}

fn respond(format: Format, bytes: Vec<u8>, json: impl FnOnce() -> serde_json::Value) -> Response {
    match format {
        Format::Bin => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Format::Hex => ([(header::CONTENT_TYPE, "text/plain")], format!("{}\n", hex::encode(bytes))).into_response(),
        Format::Json => ([(header::CONTENT_TYPE, "application/json")], format!("{}\n", json())).into_response(),
    }
}

pub async fn handle(State(s): State<Server>, Path(path): Path<String>) -> Response {
    tokio::task::spawn_blocking(move || route(&s, &path))
        .await
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

fn route(s: &Server, path: &str) -> Response {
    let Some(node) = s.node() else {
        return not_found("no REST interface: this node runs with -walletonly");
    };
    let node = node.lock().unwrap_or_else(|p| p.into_inner());
    let chain = &node.chain;
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["block", rest] | ["block", "notxdetails", rest] => {
            let (stem, format) = match split_format(rest) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let Ok(hash) = parse_hash::<BlockHash>(stem, "hash") else {
                return bad_request(&format!("Invalid hash: {stem}"));
            };
            let Some(block) = chain.block(&hash) else { return not_found(&format!("{stem} not found")) };
            let verbosity = if parts[1] == "notxdetails" { 1 } else { 2 };
            respond(format, serialize(&**block), || block_json(chain, block, verbosity))
        }
        ["tx", rest] => {
            let (stem, format) = match split_format(rest) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let Ok(txid) = parse_hash::<Txid>(stem, "hash") else {
                return bad_request(&format!("Invalid hash: {stem}"));
            };
            let tx = node
                .mempool
                .get(&txid)
                .map(|e| (*e.tx).clone())
                .or_else(|| chain.confirmed_tx(&txid).map(|(t, _)| t.clone()));
            let Some(tx) = tx else { return not_found(&format!("{stem} not found")) };
            respond(format, serialize(&tx), || serde_json::Value::Object(tx_json(&tx, true, None)))
        }
        ["headers", count, rest] | ["headers", rest, count] if count.parse::<u32>().is_ok() => {
            let (stem, format) = match split_format(rest) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let count: u32 = count.parse().expect("checked");
            if !(1..=2000).contains(&count) {
                return bad_request(&format!("Header count is invalid or out of acceptable range (1-2000): {count}"));
            }
            let Ok(hash) = parse_hash::<BlockHash>(stem, "hash") else {
                return bad_request(&format!("Invalid hash: {stem}"));
            };
            let Some(meta) = chain.meta(&hash) else { return not_found(&format!("{stem} not found")) };
            let mut hashes = vec![hash];
            if chain.is_active(&hash) {
                hashes.extend((meta.height + 1..meta.height + count).filter_map(|h| chain.hash_at(h)));
            }
            let mut bytes = Vec::new();
            for h in &hashes {
                bytes.extend(serialize(&chain.block(h).expect("known").header));
            }
            respond(format, bytes, || {
                serde_json::Value::Array(
                    hashes.iter().map(|h| serde_json::Value::Object(header_json(chain, h))).collect(),
                )
            })
        }
        ["blockhashbyheight", rest] => {
            let (stem, format) = match split_format(rest) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let Ok(height) = stem.parse::<u32>() else { return bad_request(&format!("Invalid height: {stem}")) };
            let Some(hash) = chain.hash_at(height) else { return not_found("Block height out of range") };
            respond(format, serialize(&hash), || serde_json::json!({"blockhash": hash.to_string()}))
        }
        ["chaininfo.json"] => {
            let tip = chain.tip();
            let meta = chain.meta(&tip).expect("tip");
            let body = serde_json::json!({
                "chain": "regtest",
                "blocks": meta.height,
                "headers": meta.height,
                "bestblockhash": tip.to_string(),
                "mediantime": chain.median_time_past(&tip),
                "chainwork": crate::rpc::encode::work_hex(meta),
            });
            ([(header::CONTENT_TYPE, "application/json")], format!("{body}\n")).into_response()
        }
        _ => bad_request("Invalid URI format. Expected /rest/<resource>/<args>.<ext>"),
    }
}
