//! One loaded wallet: its descriptors and derived-script cache, encryption state, address book,
//! coin locks, and persistence of every change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::bip32::Xpriv;
use bitcoin::secp256k1::SecretKey;
use bitcoin::{Address, NetworkKind, OutPoint, Script, ScriptBuf};
use miniscript::descriptor::DescriptorSecretKey;
use rand::RngCore;

use super::crypter::{self, EncryptionHeader, SecretKey32};
use super::keys::{
    self, add_checksum, check_checksum, normalize_hardened, parse_descriptor, secp, Derived, DescKind, Origin,
    OutputType, ScriptIndex, DEFAULT_KEYPOOL_SIZE,
};
use super::store::{AddressBookEntry, StoredDescriptor, StoredSecret, WalletFile, WalletFlags};
use super::{ChainView, WalletCoin};
use crate::rpc::error::{
    RpcError, RPC_INVALID_ADDRESS_OR_KEY, RPC_WALLET_ENCRYPTION_FAILED, RPC_WALLET_KEYPOOL_RAN_OUT,
    RPC_WALLET_PASSPHRASE_INCORRECT, RPC_WALLET_UNLOCK_NEEDED, RPC_WALLET_WRONG_ENC_STATE,
};

/// Core's `MAX_SLEEP_TIME` for `walletpassphrase`.
pub const MAX_UNLOCK_SECONDS: i64 = 100_000_000;

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn unlock_needed() -> RpcError {
    RpcError::new(RPC_WALLET_UNLOCK_NEEDED, "Error: Please enter the wallet passphrase with walletpassphrase first.")
}

fn io_error(e: anyhow::Error) -> RpcError {
    RpcError::wallet(format!("Error: failed to write the wallet file: {e:#}"))
}

/// One `importdescriptors` request, already type-checked by the RPC layer.
#[derive(Clone, Debug, Default)]
pub struct ImportRequest {
    pub desc: String,
    pub active: bool,
    /// Inclusive range, as given by the user.
    pub range: Option<(u32, u32)>,
    pub next_index: Option<u32>,
    pub timestamp: u64,
    pub internal: Option<bool>,
    pub label: Option<String>,
}

/// Private keys of every descriptor, decrypted for one signing operation.
pub struct SigningKeys {
    per_descriptor: Vec<Vec<DescriptorSecretKey>>,
}

impl SigningKeys {
    /// The private keys of descriptor `origin.0` derived at `origin.1`.
    pub fn at(&self, origin: Origin) -> Vec<SecretKey> {
        match self.per_descriptor.get(origin.0) {
            Some(keys) => keys::secret_keys_at(keys, origin.1),
            None => Vec::new(),
        }
    }
}

pub struct Wallet {
    name: String,
    path: PathBuf,
    file: WalletFile,
    kinds: Vec<DescKind>,
    /// Same descriptors in a faster-to-derive form (identical scripts and key origins).
    derivers: Vec<DescKind>,
    index: ScriptIndex,
    master_key: Option<SecretKey32>,
    relock_at: u64,
    mem_locked_coins: BTreeSet<OutPoint>,
}

impl Wallet {
    /// Creates a new wallet file at `dir/wallet.json` (the caller checked it does not exist).
    /// A locked wallet with no descriptors derived yet.
    fn empty(name: &str, path: std::path::PathBuf, file: WalletFile) -> Wallet {
        Wallet {
            name: name.to_string(),
            path,
            file,
            kinds: Vec::new(),
            derivers: Vec::new(),
            index: ScriptIndex::default(),
            master_key: None,
            relock_at: 0,
            mem_locked_coins: BTreeSet::new(),
        }
    }

    pub fn create(name: &str, dir: &Path, flags: WalletFlags, passphrase: Option<&str>) -> Result<Wallet, RpcError> {
        let now = now_secs();
        let mut wallet =
            Wallet::empty(name, dir.join(super::store::WALLET_FILE_NAME), WalletFile::new(flags.clone(), now));
        if let Some(pass) = passphrase.filter(|p| !p.is_empty()) {
            let (header, master) = crypter::new_header(pass, crypter::DEFAULT_KDF_ITERATIONS);
            wallet.file.encryption = Some(header);
            wallet.master_key = Some(master);
            wallet.relock_at = u64::MAX;
        }
        if !flags.blank && !flags.disable_private_keys {
            wallet.setup_default_descriptors(now)?;
        }
        wallet.lock();
        wallet.save()?;
        Ok(wallet)
    }

    pub fn load(name: &str, dir: &Path) -> anyhow::Result<Wallet> {
        let path = dir.join(super::store::WALLET_FILE_NAME);
        let file = WalletFile::load(&path)?;
        let mut wallet = Wallet::empty(name, path, WalletFile { descriptors: Vec::new(), ..file.clone() });
        for stored in file.descriptors {
            let payload = check_checksum(&stored.desc, false).map_err(anyhow::Error::msg)?;
            let (kind, _) =
                parse_descriptor(payload).map_err(|e| anyhow::anyhow!("descriptor {}: {e}", stored.desc))?;
            wallet.push_descriptor(stored, kind);
        }
        Ok(wallet)
    }

    pub fn save(&self) -> Result<(), RpcError> {
        self.file.save(&self.path).map_err(io_error)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn flags(&self) -> &WalletFlags {
        &self.file.flags
    }

    pub fn birthtime(&self) -> Option<u64> {
        self.file.birthtime
    }

    pub fn file_path(&self) -> &Path {
        &self.path
    }

    pub fn index(&self) -> &ScriptIndex {
        &self.index
    }

    pub fn txcount(&self) -> usize {
        self.file.txids.len()
    }

    pub fn knows_txid(&self, txid: &bitcoin::Txid) -> bool {
        self.file.txids.contains(&txid.to_string())
    }

    pub fn note_txid(&mut self, txid: bitcoin::Txid) {
        if self.file.txids.insert(txid.to_string()) {
            if let Err(e) = self.save() {
                tracing::warn!(wallet = %self.name, "{}", e.message);
            }
        }
    }

    // ---------------------------------------------------------------- descriptors

    fn push_descriptor(&mut self, stored: StoredDescriptor, kind: DescKind) {
        let pos = self.file.descriptors.len();
        let (start, end) = self.cache_bounds(&stored, &kind);
        self.file.descriptors.push(stored);
        self.derivers.push(kind.fast_deriver());
        self.kinds.push(kind);
        self.derive_into_index(pos, start, end);
    }

    fn cache_bounds(&self, stored: &StoredDescriptor, kind: &DescKind) -> (u32, u32) {
        if kind.is_range() {
            (stored.range_start, stored.range_end.max(stored.range_start))
        } else {
            (0, 1)
        }
    }

    fn derive_into_index(&mut self, pos: usize, start: u32, end: u32) {
        let kind = &self.derivers[pos];
        for i in start..end {
            match kind.derive(i) {
                Ok(d) => self.index.insert((pos, i), &d),
                Err(e) => {
                    tracing::warn!(wallet = %self.name, "cannot derive descriptor #{pos} at {i}: {e}");
                    break;
                }
            }
        }
    }

    /// Keeps `keypool` unused scripts derived past `next_index` (Core's TopUp).
    fn top_up(&mut self, pos: usize) {
        self.top_up_to(pos, DEFAULT_KEYPOOL_SIZE);
    }

    /// Derives and caches scripts of a ranged descriptor up to `next_index + size`.
    fn top_up_to(&mut self, pos: usize, size: u32) {
        if !self.kinds[pos].is_range() {
            return;
        }
        let d = &self.file.descriptors[pos];
        let wanted = d.next_index.saturating_add(size);
        if wanted > d.range_end {
            let old = d.range_end;
            self.file.descriptors[pos].range_end = wanted;
            self.derive_into_index(pos, old, wanted);
        }
    }

    pub fn descriptors(&self) -> impl Iterator<Item = (&StoredDescriptor, &DescKind)> {
        self.file.descriptors.iter().zip(self.kinds.iter())
    }

    pub fn descriptor(&self, pos: usize) -> Option<(&StoredDescriptor, &DescKind)> {
        Some((self.file.descriptors.get(pos)?, self.kinds.get(pos)?))
    }

    fn setup_default_descriptors(&mut self, now: u64) -> Result<(), RpcError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let master = Xpriv::new_master(NetworkKind::Test, &seed)
            .map_err(|e| RpcError::wallet(format!("Error: cannot create HD seed: {e}")))?;
        seed.iter_mut().for_each(|b| *b = 0);
        for ot in OutputType::ALL {
            for internal in [false, true] {
                let body = format!("{master}/{}h/1h/0h/{}/*", ot.bip_purpose(), if internal { 1 } else { 0 });
                let private = match ot {
                    OutputType::Legacy => format!("pkh({body})"),
                    OutputType::P2shSegwit => format!("sh(wpkh({body}))"),
                    OutputType::Bech32 => format!("wpkh({body})"),
                    OutputType::Bech32m => format!("tr({body})"),
                };
                let (kind, _) = parse_descriptor(&private).map_err(RpcError::wallet)?;
                let public = kind.to_public_string_checksummed();
                self.deactivate(ot, internal);
                let secret = self.protect_secret(&add_checksum(&private), &public)?;
                let stored = StoredDescriptor {
                    desc: public,
                    secret: Some(secret),
                    timestamp: now,
                    active: true,
                    internal,
                    range_start: 0,
                    range_end: DEFAULT_KEYPOOL_SIZE,
                    next_index: 0,
                };
                self.push_descriptor(stored, kind);
            }
        }
        Ok(())
    }

    /// Stores a private descriptor in clear or sealed with the master key.
    fn protect_secret(&self, private: &str, public: &str) -> Result<StoredSecret, RpcError> {
        if self.file.encryption.is_none() {
            return Ok(StoredSecret::Plain(private.to_string()));
        }
        let master = self.master_key.as_ref().ok_or_else(unlock_needed)?;
        Ok(StoredSecret::Encrypted(crypter::seal(master, private.as_bytes(), public.as_bytes())))
    }

    fn deactivate(&mut self, ot: OutputType, internal: bool) {
        for (d, k) in self.file.descriptors.iter_mut().zip(self.kinds.iter()) {
            if d.active && d.internal == internal && k.output_type() == Some(ot) {
                d.active = false;
            }
        }
    }

    /// The active descriptor for an output type and chain.
    pub fn active_descriptor(&self, ot: OutputType, internal: bool) -> Option<usize> {
        self.descriptors().position(|(d, k)| d.active && d.internal == internal && k.output_type() == Some(ot))
    }

    /// Core's `CanGetAddresses`.
    pub fn can_get_addresses(&self, internal: bool) -> bool {
        self.file.descriptors.iter().any(|d| d.active && d.internal == internal)
    }

    /// Adds or updates a descriptor (`importdescriptors`); returns the warnings.
    pub fn import_descriptor(&mut self, req: &ImportRequest) -> Result<Vec<String>, RpcError> {
        let mut warnings = Vec::new();
        let invalid_key = |m: String| RpcError::new(RPC_INVALID_ADDRESS_OR_KEY, m);
        let payload = check_checksum(&req.desc, true).map_err(invalid_key)?;
        let (kind, secrets) = parse_descriptor(payload).map_err(invalid_key)?;
        let ranged = kind.is_range();
        let (mut range_start, mut range_end, mut next_index) = (0u32, 1u32, 0u32);
        if !ranged && req.range.is_some() {
            return Err(RpcError::invalid_parameter("Range should not be specified for an un-ranged descriptor"));
        }
        if ranged {
            match req.range {
                Some((a, b)) => {
                    range_start = a;
                    range_end = b.saturating_add(1);
                }
                None => {
                    warnings.push("Range not given, using default keypool range".to_string());
                    range_end = DEFAULT_KEYPOOL_SIZE;
                }
            }
            next_index = range_start;
            if let Some(n) = req.next_index {
                if n < range_start || n >= range_end {
                    return Err(RpcError::invalid_parameter("next_index is out of range"));
                }
                next_index = n;
            }
        }
        if req.active && !ranged {
            return Err(RpcError::invalid_parameter("Active descriptors must be ranged"));
        }
        if ranged && req.label.is_some() {
            return Err(RpcError::invalid_parameter("Ranged descriptors should not have a label"));
        }
        let internal = req.internal.unwrap_or(false);
        if internal && req.label.is_some() {
            return Err(RpcError::invalid_parameter("Internal addresses should not have a label"));
        }
        let private_keys_disabled = self.file.flags.disable_private_keys;
        if private_keys_disabled && !secrets.is_empty() {
            return Err(RpcError::wallet("Cannot import private keys to a wallet with private keys disabled"));
        }
        if !private_keys_disabled {
            if secrets.is_empty() {
                return Err(RpcError::wallet(
                    "Cannot import descriptor without private keys to a wallet with private keys enabled",
                ));
            }
            if !have_all_private_keys(&kind, &secrets, next_index) {
                warnings.push(
                    "Not all private keys provided. Some wallet functionality may return unexpected errors".to_string(),
                );
            }
        }
        if !secrets.is_empty() && self.file.encryption.is_some() && self.is_locked() {
            return Err(unlock_needed());
        }

        let public = kind.to_public_string_checksummed();
        let secret = if secrets.is_empty() {
            None
        } else {
            Some(self.protect_secret(&add_checksum(&normalize_hardened(payload)), &public)?)
        };
        let pos = match self.file.descriptors.iter().position(|d| d.desc == public) {
            Some(pos) => {
                let cur = &self.file.descriptors[pos];
                if ranged && (range_start > cur.range_start || range_end < cur.range_end) {
                    return Err(RpcError::wallet(format!(
                        "Could not add descriptor '{}': new range must include current range = [{},{}]",
                        req.desc,
                        cur.range_start,
                        cur.range_end.saturating_sub(1)
                    )));
                }
                let (old_start, old_end) = (cur.range_start, cur.range_end);
                let d = &mut self.file.descriptors[pos];
                d.timestamp = req.timestamp;
                if secret.is_some() {
                    d.secret = secret;
                }
                if ranged {
                    d.range_start = range_start;
                    d.range_end = range_end;
                    d.next_index = d.next_index.max(next_index);
                }
                d.internal = internal;
                if ranged && (range_start, range_end) != (old_start, old_end) {
                    self.derive_into_index(pos, range_start, old_start.min(range_end));
                    self.derive_into_index(pos, old_end.max(range_start), range_end);
                }
                pos
            }
            None => {
                let stored = StoredDescriptor {
                    desc: public.clone(),
                    secret,
                    timestamp: req.timestamp,
                    active: false,
                    internal,
                    range_start,
                    range_end,
                    next_index,
                };
                self.push_descriptor(stored, kind.clone());
                self.file.descriptors.len() - 1
            }
        };
        match kind.output_type() {
            Some(ot) if req.active => {
                self.deactivate(ot, internal);
                self.file.descriptors[pos].active = true;
                self.top_up(pos);
            }
            None if req.active => warnings.push("Unknown output type, cannot set descriptor to active.".to_string()),
            _ => self.file.descriptors[pos].active = false,
        }
        if !ranged && !internal {
            if let Ok(d) = kind.derive(0) {
                if let Some(addr) = keys::address_of(&d.script_pubkey) {
                    let label = req.label.clone().unwrap_or_default();
                    self.file
                        .address_book
                        .insert(addr.to_string(), AddressBookEntry { label, purpose: "receive".into() });
                }
            }
        }
        self.file.flags.blank = false;
        self.file.birthtime = Some(self.file.birthtime.map_or(req.timestamp, |b| b.min(req.timestamp)));
        self.save()?;
        Ok(warnings)
    }

    /// `listdescriptors private=true` strings, in descriptor order (None where no keys).
    pub fn private_descriptors(&mut self) -> Result<Vec<Option<String>>, RpcError> {
        let mut out = Vec::new();
        for d in &self.file.descriptors {
            out.push(match &d.secret {
                None => None,
                Some(StoredSecret::Plain(s)) => Some(s.clone()),
                Some(StoredSecret::Encrypted(sealed)) => {
                    let master = self.master_key.as_ref().ok_or_else(unlock_needed)?;
                    let plain = crypter::open(master, sealed, d.desc.as_bytes())
                        .ok_or_else(|| RpcError::wallet("Error: wallet data is corrupted"))?;
                    Some(String::from_utf8(plain).map_err(|_| RpcError::wallet("Error: bad key data"))?)
                }
            });
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- addresses

    fn derive_next(&mut self, pos: usize) -> Result<(Origin, Derived), RpcError> {
        let index = self.file.descriptors[pos].next_index;
        if self.kinds[pos].is_range() && index >= self.file.descriptors[pos].range_end {
            self.top_up(pos);
        }
        let derived = self.derivers[pos]
            .derive(index)
            .map_err(|e| RpcError::new(RPC_WALLET_KEYPOOL_RAN_OUT, format!("Error: {e}")))?;
        Ok(((pos, index), derived))
    }

    /// A new receive (or change) address of the given type; advances the descriptor.
    pub fn new_destination(
        &mut self,
        ot: OutputType,
        internal: bool,
        label: Option<&str>,
    ) -> Result<Address, RpcError> {
        let pos = self.active_descriptor(ot, internal).ok_or_else(|| {
            RpcError::new(RPC_WALLET_KEYPOOL_RAN_OUT, format!("Error: No {} addresses available.", ot.as_str()))
        })?;
        let (origin, derived) = self.derive_next(pos)?;
        let addr = keys::address_of(&derived.script_pubkey)
            .ok_or_else(|| RpcError::wallet("Error: descriptor has no address"))?;
        self.mark_used(origin);
        if !internal {
            self.file.address_book.insert(
                addr.to_string(),
                AddressBookEntry { label: label.unwrap_or_default().to_string(), purpose: "receive".into() },
            );
        }
        self.save()?;
        Ok(addr)
    }

    /// The next change script of `ot` without reserving it.
    pub fn peek_change(&mut self, ot: OutputType) -> Result<(Origin, ScriptBuf), RpcError> {
        let pos = self.active_descriptor(ot, true).ok_or_else(|| {
            RpcError::wallet(format!(
                "Transaction needs a change address, but we can't generate it. Error: No {} addresses available.",
                ot.as_str()
            ))
        })?;
        let (origin, derived) = self.derive_next(pos)?;
        Ok((origin, derived.script_pubkey))
    }

    /// Marks index `origin.1` of descriptor `origin.0` as used (Core's MarkUnusedAddresses).
    pub fn mark_used(&mut self, origin: Origin) {
        let (pos, index) = origin;
        if pos >= self.file.descriptors.len() || !self.kinds[pos].is_range() {
            return;
        }
        if index >= self.file.descriptors[pos].next_index {
            self.file.descriptors[pos].next_index = index.saturating_add(1);
            self.top_up(pos);
        }
    }

    /// Refills every ranged descriptor so `size` unused scripts are cached (`keypoolrefill`).
    pub fn keypool_refill(&mut self, size: u32) -> Result<(), RpcError> {
        let size = if size == 0 { DEFAULT_KEYPOOL_SIZE } else { size };
        for pos in 0..self.kinds.len() {
            if self.file.descriptors[pos].active {
                self.top_up_to(pos, size);
            }
        }
        self.save()
    }

    /// (external, internal) unused cached scripts of the active descriptors.
    pub fn keypool_sizes(&self) -> (u64, u64) {
        let (mut ext, mut int) = (0u64, 0u64);
        for d in self.file.descriptors.iter().filter(|d| d.active) {
            let n = u64::from(d.range_end.saturating_sub(d.next_index));
            if d.internal {
                int += n;
            } else {
                ext += n;
            }
        }
        (ext, int)
    }

    pub fn address_book_entry(&self, address: &str) -> Option<&AddressBookEntry> {
        self.file.address_book.get(address)
    }

    pub fn address_book(&self) -> &std::collections::BTreeMap<String, AddressBookEntry> {
        &self.file.address_book
    }

    pub fn set_label(&mut self, address: &Address, label: &str) -> Result<(), RpcError> {
        let purpose = if self.is_mine(&address.script_pubkey()) { "receive" } else { "send" };
        self.file
            .address_book
            .insert(address.to_string(), AddressBookEntry { label: label.to_string(), purpose: purpose.to_string() });
        self.save()
    }

    // ---------------------------------------------------------------- ownership and coins

    pub fn is_mine(&self, script: &Script) -> bool {
        self.index.is_mine(script)
    }

    pub fn origin_of(&self, script: &Script) -> Option<Origin> {
        self.index.scripts.get(script).copied()
    }

    /// The derived descriptor data behind one of our scripts.
    pub fn derived_for(&self, script: &Script) -> Option<(Origin, Derived)> {
        let origin = self.origin_of(script)?;
        let derived = self.derivers.get(origin.0)?.derive(origin.1).ok()?;
        Some((origin, derived))
    }

    /// Whether an output of ours is change (comes from an internal descriptor).
    pub fn is_change(&self, script: &Script) -> bool {
        self.origin_of(script).and_then(|(pos, _)| self.file.descriptors.get(pos)).map(|d| d.internal).unwrap_or(false)
    }

    /// Whether spending one of our scripts needs a witness (None if not ours).
    pub fn is_segwit_script(&self, script: &Script) -> Option<bool> {
        let (pos, _) = self.origin_of(script)?;
        Some(self.kinds.get(pos)?.is_segwit())
    }

    /// Estimated signed input weight for one of our scripts.
    pub fn input_weight(&self, script: &Script) -> Option<u64> {
        let (origin, derived) = self.derived_for(script)?;
        self.kinds[origin.0].input_weight(&derived)
    }

    /// Every coin of this wallet, and Core-like bookkeeping of used indexes and txids.
    pub fn list_coins(&mut self, chain: &dyn ChainView) -> Vec<WalletCoin> {
        let mut coins = {
            let index = &self.index;
            chain.unspent_matching(&|s: &Script| index.is_mine(s))
        };
        // Core's wallet treats a coinbase output as immature until it has COINBASE_MATURITY + 1
        // confirmations (GetTxBlocksToMaturity), one more than consensus needs.
        for c in &mut coins {
            if c.is_coinbase && c.confirmations <= 100 {
                c.mature = false;
            }
        }
        let mut changed = false;
        for coin in &coins {
            if let Some(origin) = self.origin_of(&coin.txout.script_pubkey) {
                let before = self.file.descriptors[origin.0].next_index;
                self.mark_used(origin);
                changed |= self.file.descriptors[origin.0].next_index != before;
            }
            changed |= self.file.txids.insert(coin.outpoint.txid.to_string());
        }
        if changed {
            if let Err(e) = self.save() {
                tracing::warn!(wallet = %self.name, "{}", e.message);
            }
        }
        coins
    }

    pub fn is_locked_coin(&self, outpoint: &OutPoint) -> bool {
        self.mem_locked_coins.contains(outpoint) || self.file.locked_coins.contains(&outpoint.to_string())
    }

    pub fn lock_coin(&mut self, outpoint: OutPoint, persistent: bool) -> Result<(), RpcError> {
        self.mem_locked_coins.insert(outpoint);
        if persistent && self.file.locked_coins.insert(outpoint.to_string()) {
            self.save()?;
        }
        Ok(())
    }

    pub fn unlock_coin(&mut self, outpoint: &OutPoint) -> Result<(), RpcError> {
        self.mem_locked_coins.remove(outpoint);
        if self.file.locked_coins.remove(&outpoint.to_string()) {
            self.save()?;
        }
        Ok(())
    }

    pub fn unlock_all_coins(&mut self) -> Result<(), RpcError> {
        self.mem_locked_coins.clear();
        if !self.file.locked_coins.is_empty() {
            self.file.locked_coins.clear();
            self.save()?;
        }
        Ok(())
    }

    pub fn locked_coins(&self) -> Vec<OutPoint> {
        let mut all: BTreeSet<OutPoint> = self.mem_locked_coins.clone();
        for s in &self.file.locked_coins {
            if let Ok(op) = s.parse::<OutPoint>() {
                all.insert(op);
            }
        }
        all.into_iter().collect()
    }

    // ---------------------------------------------------------------- encryption

    pub fn is_encrypted(&self) -> bool {
        self.file.encryption.is_some()
    }

    /// Locked = encrypted and the master key is not in memory (relocks lazily on timeout).
    pub fn is_locked(&mut self) -> bool {
        if self.file.encryption.is_none() {
            return false;
        }
        if self.master_key.is_some() && now_secs() >= self.relock_at {
            self.lock();
        }
        self.master_key.is_none()
    }

    pub fn ensure_unlocked(&mut self) -> Result<(), RpcError> {
        if self.is_locked() {
            Err(unlock_needed())
        } else {
            Ok(())
        }
    }

    /// `unlocked_until` of getwalletinfo (0 when locked).
    pub fn unlocked_until(&mut self) -> u64 {
        if self.is_locked() {
            0
        } else {
            self.relock_at
        }
    }

    pub fn lock(&mut self) {
        self.master_key = None;
        self.relock_at = 0;
    }

    fn header(&self) -> Option<&EncryptionHeader> {
        self.file.encryption.as_ref()
    }

    /// `walletpassphrase`.
    pub fn unlock(&mut self, passphrase: &str, timeout: i64) -> Result<(), RpcError> {
        let header = self.header().cloned().ok_or_else(|| {
            RpcError::new(
                RPC_WALLET_WRONG_ENC_STATE,
                "Error: running with an unencrypted wallet, but walletpassphrase was called.",
            )
        })?;
        if timeout < 0 {
            return Err(RpcError::invalid_parameter("Timeout cannot be negative."));
        }
        let timeout = timeout.min(MAX_UNLOCK_SECONDS) as u64;
        if passphrase.is_empty() {
            return Err(RpcError::invalid_parameter("passphrase cannot be empty"));
        }
        let master = crypter::unwrap_master_key(&header, passphrase).ok_or_else(|| {
            RpcError::new(RPC_WALLET_PASSPHRASE_INCORRECT, "Error: The wallet passphrase entered was incorrect.")
        })?;
        self.master_key = Some(master);
        self.relock_at = now_secs().saturating_add(timeout);
        Ok(())
    }

    /// `walletpassphrasechange`.
    pub fn change_passphrase(&mut self, old: &str, new: &str) -> Result<(), RpcError> {
        let header = self.header().cloned().ok_or_else(|| {
            RpcError::new(
                RPC_WALLET_WRONG_ENC_STATE,
                "Error: running with an unencrypted wallet, but walletpassphrasechange was called.",
            )
        })?;
        if old.is_empty() || new.is_empty() {
            return Err(RpcError::invalid_parameter("passphrase cannot be empty"));
        }
        let master = crypter::unwrap_master_key(&header, old).ok_or_else(|| {
            RpcError::new(RPC_WALLET_PASSPHRASE_INCORRECT, "Error: The wallet passphrase entered was incorrect.")
        })?;
        self.file.encryption = Some(crypter::wrap_master_key(&master, new, crypter::DEFAULT_KDF_ITERATIONS));
        self.save()
    }

    /// `encryptwallet`: seals every private descriptor, makes new default descriptors with a
    /// fresh seed (non-blank wallets, as Core does), and leaves the wallet locked.
    pub fn encrypt(&mut self, passphrase: &str) -> Result<(), RpcError> {
        if self.file.flags.disable_private_keys {
            return Err(RpcError::new(
                RPC_WALLET_ENCRYPTION_FAILED,
                "Error: wallet does not contain private keys, nothing to encrypt.",
            ));
        }
        if self.file.encryption.is_some() {
            return Err(RpcError::new(
                RPC_WALLET_WRONG_ENC_STATE,
                "Error: running with an encrypted wallet, but encryptwallet was called.",
            ));
        }
        if passphrase.is_empty() {
            return Err(RpcError::invalid_parameter("passphrase cannot be empty"));
        }
        let (header, master) = crypter::new_header(passphrase, crypter::DEFAULT_KDF_ITERATIONS);
        for d in &mut self.file.descriptors {
            if let Some(StoredSecret::Plain(s)) = &d.secret {
                let sealed = crypter::seal(&master, s.as_bytes(), d.desc.as_bytes());
                d.secret = Some(StoredSecret::Encrypted(sealed));
            }
        }
        self.file.encryption = Some(header);
        self.master_key = Some(master);
        self.relock_at = u64::MAX;
        if !self.file.flags.blank {
            self.setup_default_descriptors(now_secs())?;
        }
        self.lock();
        self.save()
    }

    /// Decrypts every private descriptor for one signing operation.
    pub fn signing_keys(&mut self) -> Result<SigningKeys, RpcError> {
        if self.is_locked() {
            return Err(unlock_needed());
        }
        let mut per_descriptor = Vec::with_capacity(self.file.descriptors.len());
        for d in &self.file.descriptors {
            let text = match &d.secret {
                None => {
                    per_descriptor.push(Vec::new());
                    continue;
                }
                Some(StoredSecret::Plain(s)) => s.clone(),
                Some(StoredSecret::Encrypted(sealed)) => {
                    let master = self.master_key.as_ref().ok_or_else(unlock_needed)?;
                    let plain = crypter::open(master, sealed, d.desc.as_bytes())
                        .ok_or_else(|| RpcError::wallet("Error: wallet data is corrupted"))?;
                    String::from_utf8(plain).map_err(|_| RpcError::wallet("Error: bad key data"))?
                }
            };
            let payload = check_checksum(&text, false).map_err(RpcError::wallet)?;
            let (_, secrets) = parse_descriptor(payload).map_err(RpcError::wallet)?;
            per_descriptor.push(secrets);
        }
        Ok(SigningKeys { per_descriptor })
    }
}

/// Whether `secrets` cover every key of `kind` (checked at one derivation index).
fn have_all_private_keys(kind: &DescKind, secrets: &[DescriptorSecretKey], index: u32) -> bool {
    let Ok(derived) = kind.derive(index) else {
        return false;
    };
    let have: BTreeSet<_> =
        keys::secret_keys_at(secrets, index).iter().map(|sk| sk.x_only_public_key(secp()).0).collect();
    derived.keys.iter().all(|k| have.contains(&k.inner.x_only_public_key().0))
}
