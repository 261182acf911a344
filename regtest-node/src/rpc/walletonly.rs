//! The RPC surface of a `-walletonly` node: the wallet RPCs that need no chain and the control
//! RPCs, with Core's names, parameters and results. Everything else is refused with an error that
//! says the node runs with -walletonly. Private keys never leave it: `listdescriptors true`,
//! `dumpprivkey`, `dumpwallet` and a `backupwallet` of an unencrypted wallet are refused unless
//! the operator started it with `-allowprivatekeyexport`.

use super::error::*;
use super::params::Params;
use super::Server;
use crate::walletonly::{NoChain, WalletOnly};
use serde_json::{json, Value};

/// Wallet RPCs that make sense without a chain (no balances, coins, funding or sending).
pub const WALLET_METHODS: &[&str] = &[
    "backupwallet",
    "createwallet",
    "encryptwallet",
    "getaddressesbylabel",
    "getaddressinfo",
    "getnewaddress",
    "getrawchangeaddress",
    "getwalletinfo",
    "importdescriptors",
    "keypoolrefill",
    "listdescriptors",
    "listlabels",
    "listwalletdir",
    "listwallets",
    "loadwallet",
    "restorewallet",
    "setlabel",
    "signrawtransactionwithwallet",
    "unloadwallet",
    "walletlock",
    "walletpassphrase",
    "walletpassphrasechange",
    "walletprocesspsbt",
];

/// RPCs whose whole purpose is to hand out private keys.
const KEY_EXPORT_METHODS: &[&str] = &["dumpprivkey", "dumpwallet"];

pub fn dispatch(host: &mut WalletOnly, s: &Server, wallet: Option<&str>, method: &str, params: &Params) -> RpcResult {
    match method {
        "stop" => {
            let _ = s.shutdown.send(true);
            Ok(json!("Bitcoin Core stopping"))
        }
        "uptime" => Ok(json!(host.started.elapsed().as_secs())),
        "help" => Ok(json!(HELP)),
        _ if WALLET_METHODS.contains(&method) || KEY_EXPORT_METHODS.contains(&method) => {
            if !host.config.allow_private_key_export {
                if let Some(what) = private_key_export(host, wallet, method, params) {
                    return Err(RpcError::wallet(format!(
                        "{what}, and this node runs with -walletonly, where private keys never leave it: restart \
                         it with -allowprivatekeyexport to allow that"
                    )));
                }
            }
            super::wallet::handle(&mut host.wallets, &mut NoChain, wallet, method, params)
                .unwrap_or_else(|| Err(RpcError::new(RPC_METHOD_NOT_FOUND, "Method not found")))
        }
        _ => Err(RpcError::new(
            RPC_METHOD_NOT_FOUND,
            format!(
                "Method not found: {method} is not available because this node runs with -walletonly (an offline \
                 signing wallet: no chain, mining, peers or REST); send chain RPCs to a full node, and see help \
                 for what this node answers"
            ),
        )),
    }
}

/// What the call would give away, if it would give away private keys.
fn private_key_export(host: &mut WalletOnly, wallet: Option<&str>, method: &str, params: &Params) -> Option<String> {
    match method {
        m if KEY_EXPORT_METHODS.contains(&m) => Some(format!("{m} returns a private key")),
        "listdescriptors" if params.get(0) == Some(&Value::Bool(true)) => {
            Some("listdescriptors with private=true returns private keys".to_string())
        }
        "backupwallet" => {
            let w = host.wallets.resolve(wallet).ok()?;
            let exposes = !w.is_encrypted() && !w.flags().disable_private_keys;
            exposes.then(|| {
                format!(
                    "backupwallet would write the private keys of the unencrypted wallet \"{}\" to a file in the \
                     clear (encrypt it first with encryptwallet)",
                    w.name()
                )
            })
        }
        _ => None,
    }
}

const HELP: &str =
    "regtest-node -walletonly: an offline signing wallet (Bitcoin Core's descriptor-wallet RPCs without \
a chain). Keys never leave it; PSBT inputs are known only from the PSBT's witness_utxo / non_witness_utxo.

== Control ==
help, stop, uptime

== Wallet ==
createwallet \"wallet_name\" ( disable_private_keys blank \"passphrase\" avoid_reuse descriptors load_on_startup ),
loadwallet \"filename\" ( load_on_startup ), unloadwallet ( \"wallet_name\" load_on_startup ), listwallets,
listwalletdir, restorewallet \"wallet_name\" \"backup_file\" ( load_on_startup ), backupwallet \"destination\",
getwalletinfo, encryptwallet \"passphrase\", walletpassphrase \"passphrase\" timeout, walletlock,
walletpassphrasechange \"oldpassphrase\" \"newpassphrase\", getnewaddress ( \"label\" \"address_type\" ),
getrawchangeaddress ( \"address_type\" ), getaddressinfo \"address\", setlabel \"address\" \"label\",
listlabels ( \"purpose\" ), getaddressesbylabel \"label\", importdescriptors requests, listdescriptors,
keypoolrefill ( newsize ), walletprocesspsbt \"psbt\" ( sign \"sighashtype\" bip32derivs finalize ),
signrawtransactionwithwallet \"hexstring\" ( [{\"txid\",\"vout\",\"scriptPubKey\",\"amount\"},...] \"sighashtype\" )

Refused unless started with -allowprivatekeyexport: listdescriptors true, dumpprivkey, dumpwallet,
backupwallet of an unencrypted wallet.";
