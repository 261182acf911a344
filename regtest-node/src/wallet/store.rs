//! The wallet file (`wallets_dir/<name>/wallet.json`), `settings.json`, and atomic writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::crypter::{EncryptionHeader, Sealed};

pub const WALLET_FILE_NAME: &str = "wallet.json";
pub const WALLET_FORMAT: &str = "regtest-node-descriptor-wallet";
pub const WALLET_FILE_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalletFlags {
    #[serde(default)]
    pub disable_private_keys: bool,
    #[serde(default)]
    pub blank: bool,
    #[serde(default)]
    pub avoid_reuse: bool,
}

/// Private descriptor text: in clear for unencrypted wallets, sealed with the master key otherwise.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoredSecret {
    Plain(String),
    Encrypted(Sealed),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredDescriptor {
    /// Public descriptor with checksum (Core's normalized form); also the descriptor's identity.
    pub desc: String,
    /// Private descriptor, if the wallet holds private keys for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<StoredSecret>,
    pub timestamp: u64,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub range_start: u32,
    /// Exclusive end of the derived range (Core's `range_end`).
    #[serde(default = "one")]
    pub range_end: u32,
    #[serde(default)]
    pub next_index: u32,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressBookEntry {
    pub label: String,
    /// "receive" or "send".
    pub purpose: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalletFile {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub flags: WalletFlags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthtime: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionHeader>,
    #[serde(default)]
    pub descriptors: Vec<StoredDescriptor>,
    #[serde(default)]
    pub address_book: BTreeMap<String, AddressBookEntry>,
    /// Persistent coin locks ("txid:vout").
    #[serde(default)]
    pub locked_coins: BTreeSet<String>,
    /// Transactions the wallet has seen or sent (for `txcount`).
    #[serde(default)]
    pub txids: BTreeSet<String>,
}

impl WalletFile {
    pub fn new(flags: WalletFlags, birthtime: u64) -> Self {
        WalletFile {
            format: WALLET_FORMAT.to_string(),
            version: WALLET_FILE_VERSION,
            flags,
            birthtime: Some(birthtime),
            encryption: None,
            descriptors: Vec::new(),
            address_book: BTreeMap::new(),
            locked_coins: BTreeSet::new(),
            txids: BTreeSet::new(),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<WalletFile> {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let file: WalletFile = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        if file.format != WALLET_FORMAT {
            anyhow::bail!("{} is not a wallet file", path.display());
        }
        if file.version > WALLET_FILE_VERSION {
            anyhow::bail!("{} has unsupported version {}", path.display(), file.version);
        }
        Ok(file)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        crate::atomic_file::write(path, &bytes)
    }
}

/// Wallet names Core keeps in settings.json under "wallet" (array, or a single string).
pub fn read_startup_wallets(settings: &Path) -> anyhow::Result<Vec<String>> {
    let value = read_settings(settings)?;
    Ok(match value.get("wallet") {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    })
}

fn read_settings(settings: &Path) -> anyhow::Result<Value> {
    match fs::read(settings) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Value::Object(Default::default())),
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", settings.display()))?;
            if v.is_object() {
                Ok(v)
            } else {
                anyhow::bail!("{} is not a JSON object", settings.display())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Object(Default::default())),
        Err(e) => Err(e).with_context(|| format!("reading {}", settings.display())),
    }
}

/// Adds (`load == true`) or removes a wallet name from the startup list, keeping other settings.
pub fn update_startup_wallet(settings: &Path, name: &str, load: bool) -> anyhow::Result<()> {
    let mut value = read_settings(settings)?;
    let mut names = match value.get("wallet") {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::<String>::new(),
    };
    let present = names.iter().any(|n| n == name);
    if load && !present {
        names.push(name.to_string());
    } else if !load && present {
        names.retain(|n| n != name);
    } else {
        return Ok(());
    }
    if let Value::Object(map) = &mut value {
        map.insert("wallet".to_string(), Value::Array(names.into_iter().map(Value::String).collect()));
    }
    let mut bytes = serde_json::to_vec_pretty(&value)?;
    bytes.push(b'\n');
    crate::atomic_file::write(settings, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_roundtrip_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        fs::write(&path, r#"{"other": 1, "wallet": "a"}"#).unwrap();
        assert_eq!(read_startup_wallets(&path).unwrap(), vec!["a"]);
        update_startup_wallet(&path, "b", true).unwrap();
        assert_eq!(read_startup_wallets(&path).unwrap(), vec!["a", "b"]);
        update_startup_wallet(&path, "a", false).unwrap();
        assert_eq!(read_startup_wallets(&path).unwrap(), vec!["b"]);
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["other"], 1);
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w").join("wallet.json");
        crate::atomic_file::write(&path, b"one").unwrap();
        crate::atomic_file::write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
