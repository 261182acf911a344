//! Node control and information: getnetworkinfo, uptime, stop, help, getindexinfo, echo.

use super::error::*;
use super::params::Params;
use super::Server;
use crate::node::Node;
use serde_json::{json, Value};

pub const VERSION: u32 = 290000;
pub const SUBVERSION: &str = "/Satoshi:29.0.0(regtest-node)/";

pub fn handle(node: &mut Node, s: &Server, method: &str, p: &Params) -> Option<RpcResult> {
    Some(match method {
        "getnetworkinfo" => Ok(json!({
            "version": VERSION,
            "subversion": SUBVERSION,
            "protocolversion": 70016,
            "localservices": "0000000000000c09",
            "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
            "localrelay": true,
            "timeoffset": 0,
            "networkactive": false,
            "connections": 0,
            "connections_in": 0,
            "connections_out": 0,
            "networks": [],
            "relayfee": super::params::value_from_sat((node.config.min_relay_fee.to_sat_per_kwu() * 4) as i64),
            "incrementalfee": 0.00001,
            "localaddresses": [],
            "warnings": [],
        })),
        "uptime" => Ok(json!(node.started.elapsed().as_secs())),
        "stop" => {
            let _ = s.shutdown.send(true);
            Ok(json!("Bitcoin Core stopping"))
        }
        "getindexinfo" => Ok(if node.config.txindex {
            json!({"txindex": {"synced": true, "best_block_height": node.chain.height()}})
        } else {
            json!({})
        }),
        "echo" => Ok(Value::Array(p.0.clone())),
        "help" => Ok(json!(HELP)),
        "getconnectioncount" => Ok(json!(0)),
        "getpeerinfo" => Ok(json!([])),
        _ => return None,
    })
}

const HELP: &str = "regtest-node: Bitcoin Core's regtest RPC subset, consensus by libbitcoinkernel.

== Blockchain ==
getbestblockhash, getblock \"blockhash\" ( verbosity ), getblockchaininfo, getblockcount,
getblockhash height, getblockheader \"blockhash\" ( verbose ), getchaintips, getdifficulty,
getmempoolentry \"txid\", getmempoolinfo, getrawmempool ( verbose mempool_sequence ),
gettxout \"txid\" n ( include_mempool ), invalidateblock \"blockhash\", reconsiderblock \"blockhash\"

== Control ==
getindexinfo, help, stop, uptime, getnetworkinfo

== Mining ==
generateblock \"output\" [\"rawtx/txid\",...] ( submit ), generatetoaddress nblocks \"address\",
generatetodescriptor nblocks \"descriptor\", getmininginfo, submitblock \"hexdata\"

== Rawtransactions ==
decoderawtransaction \"hexstring\", getrawtransaction \"txid\" ( verbosity \"blockhash\" ),
sendrawtransaction \"hexstring\" ( maxfeerate ), testmempoolaccept [\"rawtx\"] ( maxfeerate )

== Wallet ==
createwallet, loadwallet, unloadwallet, listwallets, getwalletinfo, getnewaddress, getrawchangeaddress,
importdescriptors, getbalance, getbalances, listunspent, fundrawtransaction, signrawtransactionwithwallet,
walletprocesspsbt, sendtoaddress, encryptwallet, walletpassphrase, walletlock

REST: /rest/block/<hash>.bin|.hex|.json, /rest/block/notxdetails/<hash>.json, /rest/tx/<txid>.bin|.hex|.json,
/rest/headers/<count>/<hash>.bin|.hex|.json, /rest/blockhashbyheight/<height>.bin|.hex|.json, /rest/chaininfo.json";
