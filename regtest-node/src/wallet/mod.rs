//! Descriptor wallets with Bitcoin Core's semantics: the contract with the rest of the node
//! (`ChainView`, `WalletCoin`, `WalletConfig`) and the `WalletManager` that creates, loads,
//! selects and unloads wallets.

pub mod crypter;
pub mod funding;
pub mod instance;
pub mod keys;
pub mod signer;
pub mod store;

use std::path::{Component, Path, PathBuf};

use bitcoin::{OutPoint, Script, Transaction, TxOut, Txid};

use crate::rpc::error::{
    RpcError, RPC_WALLET_ALREADY_EXISTS, RPC_WALLET_ALREADY_LOADED, RPC_WALLET_ERROR, RPC_WALLET_NOT_FOUND,
    RPC_WALLET_NOT_SPECIFIED,
};
pub use instance::Wallet;
use keys::OutputType;
use store::WalletFlags;

pub struct WalletCoin {
    pub outpoint: OutPoint,
    pub txout: TxOut,
    /// 0 = unconfirmed (in mempool).
    pub confirmations: u32,
    pub is_coinbase: bool,
    /// false only for coinbase outputs with < 100 confirmations.
    pub mature: bool,
    /// Confirmed, or a mempool tx all of whose inputs satisfied the filter.
    pub trusted: bool,
}

/// What the wallet may ask of the node. The node implements it; tests implement a fake.
pub trait ChainView {
    fn tip_height(&self) -> u32;
    /// Every unspent output (confirmed ones, plus outputs of mempool transactions) whose
    /// scriptPubKey satisfies `is_mine`, excluding outputs already spent by a mempool transaction.
    fn unspent_matching(&self, is_mine: &dyn Fn(&Script) -> bool) -> Vec<WalletCoin>;
    /// The unspent output at `outpoint` (confirmed or in the mempool), if any.
    fn get_unspent(&self, outpoint: &OutPoint) -> Option<TxOut>;
    /// Submit to the mempool with sendrawtransaction semantics; Err carries Core's code and
    /// reject reason.
    fn broadcast(&mut self, tx: &Transaction) -> Result<Txid, RpcError>;
}

pub struct WalletConfig {
    /// `<datadir>/regtest/wallets`; wallet "foo" lives in `wallets_dir/foo/`.
    pub wallets_dir: PathBuf,
    /// `-fallbackfee`; None or zero disables it.
    pub fallback_fee: Option<bitcoin::FeeRate>,
    /// `<datadir>/regtest/settings.json` (startup wallets under key "wallet").
    pub settings_file: PathBuf,
}

pub struct WalletManager {
    config: WalletConfig,
    wallets: Vec<Wallet>,
}

const LOAD_ON_STARTUP_WARNING: &str =
    "Wallet load on startup setting could not be updated, so wallet may not be loaded next node startup.";

impl WalletManager {
    /// Loads wallets named in settings.json plus `startup_wallets` (from -wallet=NAME, created
    /// if missing).
    pub fn open(config: WalletConfig, startup_wallets: &[String]) -> anyhow::Result<WalletManager> {
        std::fs::create_dir_all(&config.wallets_dir)?;
        let mut mgr = WalletManager { config, wallets: Vec::new() };
        let mut names = store::read_startup_wallets(&mgr.config.settings_file)?;
        for n in startup_wallets {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        for name in names {
            if mgr.find(&name).is_some() {
                continue;
            }
            let dir = match mgr.wallet_dir(&name) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(wallet = %name, "skipping wallet: {}", e.message);
                    continue;
                }
            };
            if dir.join(store::WALLET_FILE_NAME).exists() {
                let w = Wallet::load(&name, &dir)?;
                tracing::info!(wallet = %name, "wallet loaded");
                mgr.wallets.push(w);
            } else if startup_wallets.contains(&name) {
                let w = Wallet::create(&name, &dir, WalletFlags::default(), None)
                    .map_err(|e| anyhow::anyhow!("creating wallet {name}: {}", e.message))?;
                tracing::info!(wallet = %name, "wallet created");
                mgr.wallets.push(w);
            } else {
                tracing::warn!(wallet = %name, "wallet in settings.json not found, skipping");
            }
        }
        Ok(mgr)
    }

    /// Flush everything (called at shutdown).
    pub fn flush(&self) -> anyhow::Result<()> {
        for w in &self.wallets {
            w.save().map_err(|e| anyhow::anyhow!("{}", e.message))?;
        }
        Ok(())
    }

    /// A fresh receive address of the wallet `name` (used by the node's -blockinterval miner).
    pub fn new_address(&mut self, name: Option<&str>) -> Result<bitcoin::Address, RpcError> {
        let w = self.resolve(name)?;
        if !w.can_get_addresses(false) {
            return Err(RpcError::wallet("Error: This wallet has no available keys"));
        }
        w.new_destination(OutputType::Bech32m, false, None)
    }

    pub fn config(&self) -> &WalletConfig {
        &self.config
    }

    pub fn wallet_names(&self) -> Vec<String> {
        self.wallets.iter().map(|w| w.name().to_string()).collect()
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.wallets.iter().position(|w| w.name() == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Wallet> {
        self.wallets.iter_mut().find(|w| w.name() == name)
    }

    /// Core's `GetWalletForJSONRPCRequest`.
    pub fn resolve(&mut self, name: Option<&str>) -> Result<&mut Wallet, RpcError> {
        if let Some(name) = name {
            return self.get_mut(name).ok_or_else(|| {
                RpcError::new(RPC_WALLET_NOT_FOUND, "Requested wallet does not exist or is not loaded")
            });
        }
        match self.wallets.len() {
            1 => Ok(&mut self.wallets[0]),
            0 => Err(RpcError::new(
                RPC_WALLET_NOT_FOUND,
                "No wallet is loaded. Load a wallet using loadwallet or create a new one with createwallet. (Note: A default wallet is no longer automatically created)",
            )),
            _ => Err(RpcError::new(
                RPC_WALLET_NOT_SPECIFIED,
                "Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path).",
            )),
        }
    }

    /// The directory of wallet `name` (relative names only, no `..`).
    pub fn wallet_dir(&self, name: &str) -> Result<PathBuf, RpcError> {
        let p = Path::new(name);
        let ok = p.components().all(|c| matches!(c, Component::Normal(_))) && !name.contains('\0');
        if !ok {
            return Err(RpcError::wallet(format!(
                "Wallet file verification failed. Invalid -wallet path '{name}'. -wallet path should point to a directory inside -walletdir ({}).",
                self.config.wallets_dir.display()
            )));
        }
        Ok(self.config.wallets_dir.join(p))
    }

    fn apply_load_on_startup(&self, name: &str, load: Option<bool>, warnings: &mut Vec<String>) {
        if let Some(load) = load {
            if let Err(e) = store::update_startup_wallet(&self.config.settings_file, name, load) {
                tracing::warn!(wallet = %name, "updating settings.json: {e:#}");
                warnings.push(LOAD_ON_STARTUP_WARNING.to_string());
            }
        }
    }

    /// `createwallet`; returns the warnings.
    pub fn create_wallet(
        &mut self,
        name: &str,
        flags: WalletFlags,
        passphrase: Option<&str>,
        load_on_startup: Option<bool>,
    ) -> Result<Vec<String>, RpcError> {
        let mut warnings = Vec::new();
        let dir = self.wallet_dir(name)?;
        if dir.join(store::WALLET_FILE_NAME).exists() || self.find(name).is_some() {
            return Err(RpcError::new(
                RPC_WALLET_ALREADY_EXISTS,
                format!(
                    "Wallet file verification failed. Failed to create database path '{}'. Database already exists.",
                    dir.display()
                ),
            ));
        }
        let passphrase = passphrase.filter(|p| !p.is_empty());
        if passphrase.is_some() && flags.disable_private_keys {
            return Err(RpcError::wallet(
                "Passphrase provided but private keys are disabled. A passphrase is only used to encrypt private keys, so cannot be used for wallets with private keys disabled.",
            ));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| RpcError::wallet(format!("Failed to create database path '{}': {e}", dir.display())))?;
        let wallet = Wallet::create(name, &dir, flags, passphrase)?;
        self.wallets.push(wallet);
        self.apply_load_on_startup(name, load_on_startup, &mut warnings);
        Ok(warnings)
    }

    /// `loadwallet`; returns the warnings.
    pub fn load_wallet(&mut self, name: &str, load_on_startup: Option<bool>) -> Result<Vec<String>, RpcError> {
        if self.find(name).is_some() {
            return Err(RpcError::new(RPC_WALLET_ALREADY_LOADED, format!("Wallet \"{name}\" is already loaded.")));
        }
        let dir = self.wallet_dir(name)?;
        if !dir.exists() {
            return Err(RpcError::new(
                RPC_WALLET_NOT_FOUND,
                format!(
                    "Wallet file verification failed. Failed to load database path '{}'. Path does not exist.",
                    dir.display()
                ),
            ));
        }
        if !dir.join(store::WALLET_FILE_NAME).exists() {
            return Err(RpcError::new(
                RPC_WALLET_NOT_FOUND,
                format!(
                    "Wallet file verification failed. Failed to load database path '{}'. Data is not in recognized format.",
                    dir.display()
                ),
            ));
        }
        let wallet = Wallet::load(name, &dir)
            .map_err(|e| RpcError::new(RPC_WALLET_ERROR, format!("Wallet corrupted: {e:#}")))?;
        self.wallets.push(wallet);
        let mut warnings = Vec::new();
        self.apply_load_on_startup(name, load_on_startup, &mut warnings);
        Ok(warnings)
    }

    /// `restorewallet`: copies a `backupwallet` file into a new wallet directory and loads it.
    pub fn restore_wallet(
        &mut self,
        name: &str,
        backup: &Path,
        load_on_startup: Option<bool>,
    ) -> Result<Vec<String>, RpcError> {
        if !backup.is_file() {
            return Err(RpcError::invalid_parameter("Backup file does not exist"));
        }
        let dir = self.wallet_dir(name)?;
        if dir.exists() || self.find(name).is_some() {
            return Err(RpcError::new(
                RPC_WALLET_ALREADY_EXISTS,
                format!("Failed to create database path '{}'. Database already exists.", dir.display()),
            ));
        }
        let bytes = std::fs::read(backup)
            .map_err(|e| RpcError::wallet(format!("Failed to read backup file '{}': {e}", backup.display())))?;
        crate::atomic_file::write(&dir.join(store::WALLET_FILE_NAME), &bytes)
            .map_err(|e| RpcError::wallet(format!("{e:#}")))?;
        match self.load_wallet(name, load_on_startup) {
            Ok(w) => Ok(w),
            Err(e) => {
                let _ = std::fs::remove_file(dir.join(store::WALLET_FILE_NAME));
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// `unloadwallet` (the caller resolved which name); returns the warnings.
    pub fn unload_wallet(&mut self, name: &str, load_on_startup: Option<bool>) -> Result<Vec<String>, RpcError> {
        let pos = self
            .find(name)
            .ok_or_else(|| RpcError::new(RPC_WALLET_NOT_FOUND, "Requested wallet does not exist or is not loaded"))?;
        let wallet = self.wallets.remove(pos);
        wallet.save()?;
        let mut warnings = Vec::new();
        self.apply_load_on_startup(name, load_on_startup, &mut warnings);
        Ok(warnings)
    }

    /// Wallet directories found under `wallets_dir` (`listwalletdir`).
    pub fn list_wallet_dir(&self) -> Vec<String> {
        let mut out = Vec::new();
        let root = &self.config.wallets_dir;
        if root.join(store::WALLET_FILE_NAME).exists() {
            out.push(String::new());
        }
        let mut stack = vec![(root.clone(), String::new(), 0usize)];
        while let Some((dir, prefix, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let Some(fname) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let name = if prefix.is_empty() { fname.to_string() } else { format!("{prefix}/{fname}") };
                if path.join(store::WALLET_FILE_NAME).exists() {
                    out.push(name.clone());
                }
                if depth < 4 {
                    stack.push((path, name, depth + 1));
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
pub(crate) mod tests;
