//! `-walletonly`: the node as an offline signing wallet. It loads the wallets and nothing of the
//! chain (no block log, kernel, chainstate or mempool), so it starts in the time the wallet files
//! take to read. The wallet code sees `NoChain`: no coins, no outputs to look up, nothing to
//! broadcast, so a PSBT's inputs are known only through the PSBT's own `witness_utxo` /
//! `non_witness_utxo`.

use crate::config::Config;
use crate::rpc::error::{RpcError, RPC_METHOD_NOT_FOUND};
use crate::wallet::{ChainView, WalletCoin, WalletConfig, WalletManager};
use anyhow::{Context, Result};
use bitcoin::{OutPoint, Script, Transaction, TxOut, Txid};
use std::time::Instant;

/// The wallets of a `-walletonly` node, with what the RPC layer needs besides them.
pub struct WalletOnly {
    pub config: Config,
    pub wallets: WalletManager,
    pub started: Instant,
}

impl WalletOnly {
    /// Loads the startup wallets (settings.json and `-wallet=`) from `<datadir>/regtest/wallets`.
    pub fn open(config: Config) -> Result<WalletOnly> {
        let net = config.network_dir();
        std::fs::create_dir_all(&net).with_context(|| format!("creating data directory {}", net.display()))?;
        let wallets = WalletManager::open(
            WalletConfig {
                wallets_dir: net.join("wallets"),
                fallback_fee: config.fallback_fee,
                settings_file: net.join("settings.json"),
            },
            &config.wallets,
        )?;
        Ok(WalletOnly { config, wallets, started: Instant::now() })
    }

    /// Writes every loaded wallet (called at shutdown).
    pub fn shutdown(&mut self) -> Result<()> {
        self.wallets.flush()
    }
}

/// The chain as a `-walletonly` wallet sees it: empty.
pub struct NoChain;

impl ChainView for NoChain {
    fn tip_height(&self) -> u32 {
        0
    }

    fn unspent_matching(&self, _is_mine: &dyn Fn(&Script) -> bool) -> Vec<WalletCoin> {
        Vec::new()
    }

    fn get_unspent(&self, _outpoint: &OutPoint) -> Option<TxOut> {
        None
    }

    fn broadcast(&mut self, _tx: &Transaction) -> Result<Txid, RpcError> {
        Err(RpcError::new(
            RPC_METHOD_NOT_FOUND,
            "this node runs with -walletonly and has no mempool: send the transaction through a full node",
        ))
    }
}
