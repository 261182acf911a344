//! Output descriptors: parsing (miniscript plus our own `rawtr()`), Core's checksum rules,
//! derivation of scripts and keys, and the per-wallet lookup tables that make `is_mine` a
//! hash-map lookup.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint};
use bitcoin::hashes::{hash160, Hash};
use bitcoin::key::TweakedPublicKey;
use bitcoin::secp256k1::{All, Secp256k1, SecretKey, XOnlyPublicKey};
use bitcoin::{Address, Network, NetworkKind, PubkeyHash, PublicKey, Script, ScriptBuf};
use miniscript::descriptor::checksum::desc_checksum;
use miniscript::descriptor::{
    DefiniteDescriptorKey, Descriptor, DescriptorPublicKey, DescriptorSecretKey, DescriptorType, DescriptorXKey,
    ShInner, SinglePub, SinglePubKey, Wildcard,
};
use miniscript::{ForEachKey, TranslatePk, Translator};

/// The wallet only ever runs on regtest.
pub const NETWORK: Network = Network::Regtest;
/// Core's default `-keypool`.
pub const DEFAULT_KEYPOOL_SIZE: u32 = 1000;
/// Weight of a P2TR key-path input (outpoint, empty scriptSig, sequence, 64-byte signature).
pub const P2TR_KEYPATH_INPUT_WEIGHT: u64 = 41 * 4 + 1 + 1 + 64;

/// A process-wide secp256k1 context.
pub fn secp() -> &'static Secp256k1<All> {
    static CTX: OnceLock<Secp256k1<All>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::new)
}

/// Core's output types (`-addresstype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputType {
    Legacy,
    P2shSegwit,
    Bech32,
    Bech32m,
}

impl OutputType {
    pub const ALL: [OutputType; 4] =
        [OutputType::Legacy, OutputType::P2shSegwit, OutputType::Bech32, OutputType::Bech32m];

    pub fn parse(s: &str) -> Option<OutputType> {
        match s {
            "legacy" => Some(OutputType::Legacy),
            "p2sh-segwit" => Some(OutputType::P2shSegwit),
            "bech32" => Some(OutputType::Bech32),
            "bech32m" => Some(OutputType::Bech32m),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::Legacy => "legacy",
            OutputType::P2shSegwit => "p2sh-segwit",
            OutputType::Bech32 => "bech32",
            OutputType::Bech32m => "bech32m",
        }
    }

    /// BIP44/49/84/86 purpose used by Core's default descriptors.
    pub fn bip_purpose(self) -> u32 {
        match self {
            OutputType::Legacy => 44,
            OutputType::P2shSegwit => 49,
            OutputType::Bech32 => 84,
            OutputType::Bech32m => 86,
        }
    }
}

/// Replaces the `'` hardened marker by `h` (Core's canonical form since v25).
pub fn normalize_hardened(s: &str) -> String {
    s.replace('\'', "h")
}

/// `desc#checksum`.
pub fn add_checksum(desc: &str) -> String {
    match desc_checksum(desc) {
        Ok(c) => format!("{desc}#{c}"),
        Err(_) => desc.to_string(),
    }
}

/// Core's `CheckChecksum` with `require_checksum = true`: returns the payload without the checksum.
pub fn check_checksum(s: &str, require: bool) -> Result<&str, String> {
    let mut parts = s.split('#');
    let payload = parts.next().unwrap_or_default();
    let checksum = parts.next();
    if parts.next().is_some() {
        return Err("Multiple '#' symbols".to_string());
    }
    match checksum {
        None => {
            if require {
                Err("Missing checksum".to_string())
            } else {
                Ok(payload)
            }
        }
        Some(c) => {
            if c.len() != 8 {
                return Err(format!("Expected 8 character checksum, not {} characters", c.len()));
            }
            let computed = desc_checksum(payload).map_err(|_| "Invalid characters in payload".to_string())?;
            if computed != c {
                return Err(format!("Provided checksum '{c}' does not match computed checksum '{computed}'"));
            }
            Ok(payload)
        }
    }
}

/// A parsed descriptor. miniscript 12 has no `rawtr()`, so that one is ours.
#[derive(Clone, Debug)]
pub enum DescKind {
    Miniscript(Descriptor<DescriptorPublicKey>),
    /// `rawtr(KEY)`: P2TR whose output key is KEY itself (no tweak).
    RawTr(DescriptorPublicKey),
}

/// One derived output of a descriptor.
#[derive(Clone, Debug)]
pub struct Derived {
    pub script_pubkey: ScriptBuf,
    /// Every public key the script involves (x-only keys as their even-y full key).
    pub keys: Vec<PublicKey>,
    /// The concrete descriptor (None for `rawtr`).
    pub definite: Option<Descriptor<DefiniteDescriptorKey>>,
    /// For `rawtr`: the output key's origin information.
    pub rawtr_key: Option<DefiniteDescriptorKey>,
}

fn check_key_network_pub(key: &DescriptorPublicKey) -> Result<(), String> {
    match key {
        DescriptorPublicKey::XPub(x) if x.xkey.network != NetworkKind::Test => {
            Err(format!("key '{}' is not valid", x.xkey))
        }
        DescriptorPublicKey::MultiXPub(x) if x.xkey.network != NetworkKind::Test => {
            Err(format!("key '{}' is not valid", x.xkey))
        }
        _ => Ok(()),
    }
}

fn check_key_network_secret(key: &DescriptorSecretKey) -> Result<(), String> {
    let ok = match key {
        DescriptorSecretKey::Single(s) => s.key.network == NetworkKind::Test,
        DescriptorSecretKey::XPrv(x) => x.xkey.network == NetworkKind::Test,
        DescriptorSecretKey::MultiXPrv(x) => x.xkey.network == NetworkKind::Test,
    };
    if ok {
        Ok(())
    } else {
        Err("key is not valid for regtest (wrong network)".to_string())
    }
}

/// Turns full single keys inside `tr()` into x-only keys (Core prints them as 32-byte keys).
struct TrXOnly;

impl Translator<DescriptorPublicKey, DescriptorPublicKey, ()> for TrXOnly {
    fn pk(&mut self, pk: &DescriptorPublicKey) -> Result<DescriptorPublicKey, ()> {
        Ok(match pk {
            DescriptorPublicKey::Single(SinglePub { origin, key: SinglePubKey::FullKey(full) }) => {
                DescriptorPublicKey::Single(SinglePub {
                    origin: origin.clone(),
                    key: SinglePubKey::XOnly(full.inner.x_only_public_key().0),
                })
            }
            other => other.clone(),
        })
    }
    miniscript::translate_hash_clone!(DescriptorPublicKey, DescriptorPublicKey, ());
}

/// Parses a descriptor (no checksum) that may contain private keys; returns the public
/// descriptor and the private keys found in it.
pub fn parse_descriptor(s: &str) -> Result<(DescKind, Vec<DescriptorSecretKey>), String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("rawtr(").and_then(|r| r.strip_suffix(')')) {
        if let Ok(sk) = DescriptorSecretKey::from_str(inner) {
            check_key_network_secret(&sk)?;
            if sk.is_multipath() {
                return Err("Multipath derivation paths are not supported".to_string());
            }
            let pk = sk.to_public(secp()).map_err(|e| e.to_string())?;
            let pk = TrXOnly.pk(&pk).unwrap_or(pk);
            return Ok((DescKind::RawTr(pk), vec![sk]));
        }
        let pk = DescriptorPublicKey::from_str(inner).map_err(|e| format!("key '{inner}' is not valid: {e}"))?;
        let pk = TrXOnly.pk(&pk).unwrap_or(pk);
        check_key_network_pub(&pk)?;
        if pk.is_multipath() {
            return Err("Multipath derivation paths are not supported".to_string());
        }
        return Ok((DescKind::RawTr(pk), vec![]));
    }
    let (desc, keymap) = Descriptor::<DescriptorPublicKey>::parse_descriptor(secp(), s).map_err(|e| e.to_string())?;
    if desc.is_multipath() {
        return Err("Multipath derivation paths are not supported".to_string());
    }
    let mut bad = None;
    desc.for_each_key(|k| {
        if let Err(e) = check_key_network_pub(k) {
            bad = Some(e);
        }
        true
    });
    if let Some(e) = bad {
        return Err(e);
    }
    for sk in keymap.values() {
        check_key_network_secret(sk)?;
    }
    desc.sanity_check().map_err(|e| e.to_string())?;
    let desc = if matches!(desc, Descriptor::Tr(_)) {
        desc.translate_pk(&mut TrXOnly).map_err(|_| "cannot convert taproot keys".to_string())?
    } else {
        desc
    };
    Ok((DescKind::Miniscript(desc), keymap.into_values().collect()))
}

/// Pre-derives the fixed, unhardened part of ranged xpub paths (`xpub/0/*` becomes the `/0`
/// child xpub with the step moved into its origin), so each index costs one child derivation.
/// Scripts, keys and key origins are unchanged.
struct PrefixDeriver;

impl Translator<DescriptorPublicKey, DescriptorPublicKey, String> for PrefixDeriver {
    fn pk(&mut self, pk: &DescriptorPublicKey) -> Result<DescriptorPublicKey, String> {
        let DescriptorPublicKey::XPub(x) = pk else {
            return Ok(pk.clone());
        };
        if x.wildcard == Wildcard::None
            || x.derivation_path.is_empty()
            || !x.derivation_path.into_iter().all(|c| c.is_normal())
        {
            return Ok(pk.clone());
        }
        let xkey = x.xkey.derive_pub(secp(), &x.derivation_path).map_err(|e| e.to_string())?;
        let origin = match &x.origin {
            Some((fp, path)) => (*fp, path.extend(&x.derivation_path)),
            None => (x.xkey.fingerprint(), x.derivation_path.clone()),
        };
        Ok(DescriptorPublicKey::XPub(DescriptorXKey {
            origin: Some(origin),
            xkey,
            derivation_path: DerivationPath::master(),
            wildcard: x.wildcard,
        }))
    }
    miniscript::translate_hash_clone!(DescriptorPublicKey, DescriptorPublicKey, String);
}

fn derive_key(key: &DescriptorPublicKey, index: u32) -> Result<DefiniteDescriptorKey, String> {
    key.clone().at_derivation_index(index).map_err(|e| e.to_string())
}

impl DescKind {
    pub fn is_range(&self) -> bool {
        match self {
            DescKind::Miniscript(d) => d.has_wildcard(),
            DescKind::RawTr(k) => k.has_wildcard(),
        }
    }

    /// Core's `Descriptor::GetOutputType`.
    pub fn output_type(&self) -> Option<OutputType> {
        match self {
            DescKind::RawTr(_) => Some(OutputType::Bech32m),
            DescKind::Miniscript(d) => match d.desc_type() {
                DescriptorType::Pkh => Some(OutputType::Legacy),
                DescriptorType::Sh | DescriptorType::ShSortedMulti => Some(OutputType::Legacy),
                DescriptorType::ShWpkh | DescriptorType::ShWsh | DescriptorType::ShWshSortedMulti => {
                    Some(OutputType::P2shSegwit)
                }
                DescriptorType::Wpkh | DescriptorType::Wsh | DescriptorType::WshSortedMulti => Some(OutputType::Bech32),
                DescriptorType::Tr => Some(OutputType::Bech32m),
                DescriptorType::Bare => None,
            },
        }
    }

    /// Public descriptor string in Core's normalized form, without checksum.
    pub fn to_public_string(&self) -> String {
        let s = match self {
            DescKind::Miniscript(d) => d.to_string(),
            DescKind::RawTr(k) => format!("rawtr({k})"),
        };
        // miniscript appends a checksum to Descriptor's Display; strip it before normalizing.
        let payload = s.split('#').next().unwrap_or_default();
        normalize_hardened(payload)
    }

    /// Public descriptor with checksum, as `listdescriptors` prints it.
    pub fn to_public_string_checksummed(&self) -> String {
        add_checksum(&self.to_public_string())
    }

    /// Whether spending needs a witness (native or wrapped segwit, taproot).
    pub fn is_segwit(&self) -> bool {
        match self {
            DescKind::RawTr(_) => true,
            DescKind::Miniscript(d) => d.desc_type().segwit_version().is_some(),
        }
    }

    /// Derives the script and keys at `index` (ignored for non-ranged descriptors).
    pub fn derive(&self, index: u32) -> Result<Derived, String> {
        match self {
            DescKind::RawTr(k) => {
                let def = derive_key(k, index)?;
                let pk = def.derive_public_key(secp()).map_err(|e| e.to_string())?;
                let (xonly, _) = pk.inner.x_only_public_key();
                let spk = ScriptBuf::new_p2tr_tweaked(TweakedPublicKey::dangerous_assume_tweaked(xonly));
                Ok(Derived { script_pubkey: spk, keys: vec![even_key(xonly)], definite: None, rawtr_key: Some(def) })
            }
            DescKind::Miniscript(d) => {
                let definite = d.at_derivation_index(index).map_err(|e| e.to_string())?;
                let derived = definite.derived_descriptor(secp()).map_err(|e| e.to_string())?;
                let mut keys = Vec::new();
                derived.for_each_key(|k| {
                    keys.push(*k);
                    true
                });
                Ok(Derived { script_pubkey: derived.script_pubkey(), keys, definite: Some(definite), rawtr_key: None })
            }
        }
    }

    /// An equivalent descriptor that derives faster (see `PrefixDeriver`).
    pub fn fast_deriver(&self) -> DescKind {
        match self {
            DescKind::RawTr(k) => DescKind::RawTr(PrefixDeriver.pk(k).unwrap_or_else(|_| k.clone())),
            DescKind::Miniscript(d) => match d.translate_pk(&mut PrefixDeriver) {
                Ok(fast) => DescKind::Miniscript(fast),
                Err(_) => self.clone(),
            },
        }
    }

    /// Weight an input spending this descriptor's output adds once signed (including the
    /// 41-byte outpoint/scriptSig-length/sequence part).
    pub fn input_weight(&self, derived: &Derived) -> Option<u64> {
        match self {
            DescKind::RawTr(_) => Some(P2TR_KEYPATH_INPUT_WEIGHT),
            DescKind::Miniscript(Descriptor::Tr(tr)) if tr.tap_tree().is_none() => Some(P2TR_KEYPATH_INPUT_WEIGHT),
            DescKind::Miniscript(_) => {
                let def = derived.definite.as_ref()?;
                let w = def.max_weight_to_satisfy().ok()?;
                Some(41 * 4 + w.to_wu())
            }
        }
    }
}

/// P2SH redeem script and witness script of a derived output, where it has them (the
/// `redeemScript`/`witnessScript` fields of `listunspent`).
pub fn redeem_and_witness_scripts(derived: &Derived) -> (Option<ScriptBuf>, Option<ScriptBuf>) {
    let Some(def) = &derived.definite else {
        return (None, None);
    };
    match def.derived_descriptor(secp()) {
        Ok(Descriptor::Sh(sh)) => match sh.as_inner() {
            ShInner::Wsh(wsh) => (Some(wsh.script_pubkey()), Some(wsh.inner_script())),
            _ => (Some(sh.inner_script()), None),
        },
        Ok(Descriptor::Wsh(wsh)) => (None, Some(wsh.inner_script())),
        _ => (None, None),
    }
}

/// The even-y full key of an x-only key.
pub fn even_key(x: XOnlyPublicKey) -> PublicKey {
    PublicKey::new(x.public_key(bitcoin::secp256k1::Parity::Even))
}

/// Core's origin for a key without one: fingerprint = first 4 bytes of HASH160(key), empty path.
fn own_fingerprint(pk: &PublicKey) -> Fingerprint {
    let h = hash160::Hash::hash(&pk.to_bytes());
    let mut fp = [0u8; 4];
    fp.copy_from_slice(&h[..4]);
    Fingerprint::from(fp)
}

/// Origin (master fingerprint, full path) of a derived key, as Core reports it.
pub fn key_origin(key: &DefiniteDescriptorKey, derived: &PublicKey) -> (Fingerprint, DerivationPath) {
    let inner = key.as_descriptor_public_key();
    let has_origin = match inner {
        DescriptorPublicKey::Single(s) => s.origin.is_some(),
        _ => true,
    };
    if !has_origin {
        return (own_fingerprint(derived), DerivationPath::default());
    }
    (key.master_fingerprint(), key.full_derivation_path().unwrap_or_default())
}

/// Rewrites every key of a derived descriptor as a constant key with origin information, the
/// way Core's `InferDescriptor` prints the `desc` of a coin.
struct InferKeys {
    xonly: bool,
}

impl Translator<DefiniteDescriptorKey, DescriptorPublicKey, String> for InferKeys {
    fn pk(&mut self, pk: &DefiniteDescriptorKey) -> Result<DescriptorPublicKey, String> {
        let full = pk.derive_public_key(secp()).map_err(|e| e.to_string())?;
        let (fp, path) = key_origin(pk, &full);
        let key = if self.xonly {
            SinglePubKey::XOnly(full.inner.x_only_public_key().0)
        } else {
            SinglePubKey::FullKey(full)
        };
        Ok(DescriptorPublicKey::Single(SinglePub { origin: Some((fp, path)), key }))
    }
    miniscript::translate_hash_clone!(DefiniteDescriptorKey, DescriptorPublicKey, String);
}

/// The inferred descriptor (with checksum) of a derived output, as `listunspent` shows in `desc`.
pub fn inferred_descriptor(derived: &Derived) -> Option<String> {
    if let Some(key) = &derived.rawtr_key {
        let full = key.derive_public_key(secp()).ok()?;
        let (fp, path) = key_origin(key, &full);
        let x = full.inner.x_only_public_key().0;
        let origin = format_origin(fp, &path);
        return Some(add_checksum(&normalize_hardened(&format!("rawtr({origin}{x})"))));
    }
    let def = derived.definite.as_ref()?;
    let xonly = matches!(def, Descriptor::Tr(_));
    let inferred = def.translate_pk(&mut InferKeys { xonly }).ok()?;
    let s = inferred.to_string();
    let payload = s.split('#').next().unwrap_or_default();
    Some(add_checksum(&normalize_hardened(payload)))
}

fn format_origin(fp: Fingerprint, path: &DerivationPath) -> String {
    let mut s = format!("[{fp}");
    for c in path.into_iter() {
        s.push('/');
        s.push_str(&c.to_string());
    }
    s.push(']');
    s
}

/// Derives the private keys of `keys` at `index`.
pub fn secret_keys_at(keys: &[DescriptorSecretKey], index: u32) -> Vec<SecretKey> {
    let secp = secp();
    let mut out = Vec::new();
    for k in keys {
        match k {
            DescriptorSecretKey::Single(s) => out.push(s.key.inner),
            DescriptorSecretKey::XPrv(x) => {
                let mut path: Vec<ChildNumber> = x.derivation_path.into_iter().copied().collect();
                match x.wildcard {
                    Wildcard::None => {}
                    Wildcard::Unhardened => match ChildNumber::from_normal_idx(index) {
                        Ok(c) => path.push(c),
                        Err(_) => continue,
                    },
                    Wildcard::Hardened => match ChildNumber::from_hardened_idx(index) {
                        Ok(c) => path.push(c),
                        Err(_) => continue,
                    },
                }
                if let Ok(child) = x.xkey.derive_priv(secp, &path) {
                    out.push(child.private_key);
                }
            }
            DescriptorSecretKey::MultiXPrv(_) => {}
        }
    }
    out
}

/// Where a script or key comes from: (descriptor position in the wallet, derivation index).
pub type Origin = (usize, u32);

/// Lookup tables over every derived script of a wallet.
#[derive(Default, Debug, Clone)]
pub struct ScriptIndex {
    pub scripts: HashMap<ScriptBuf, Origin>,
    pub full_keys: HashMap<PublicKey, Origin>,
    pub xonly_keys: HashMap<XOnlyPublicKey, Origin>,
    pub key_hashes: HashMap<PubkeyHash, PublicKey>,
}

impl ScriptIndex {
    pub fn insert(&mut self, origin: Origin, derived: &Derived) {
        self.scripts.entry(derived.script_pubkey.clone()).or_insert(origin);
        for k in &derived.keys {
            self.full_keys.entry(*k).or_insert(origin);
            self.xonly_keys.entry(k.inner.x_only_public_key().0).or_insert(origin);
            self.key_hashes.entry(k.pubkey_hash()).or_insert(*k);
        }
    }

    pub fn is_mine(&self, script: &Script) -> bool {
        self.scripts.contains_key(script)
    }
}

/// Encodes a script as a regtest address, if it has one.
pub fn address_of(script: &Script) -> Option<Address> {
    Address::from_script(script, NETWORK).ok()
}

/// Parses a regtest address (Core's `DecodeDestination` + `IsValidDestination`).
pub fn parse_address(s: &str) -> Option<Address> {
    let unchecked = bitcoin::Address::from_str(s).ok()?;
    unchecked.require_network(NETWORK).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_rules() {
        let d = "rawtr(0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798)";
        let good = add_checksum(d);
        assert_eq!(check_checksum(&good, true).unwrap(), d);
        assert_eq!(check_checksum(d, true).unwrap_err(), "Missing checksum");
        let bad = format!("{d}#aaaaaaaa");
        assert!(check_checksum(&bad, true).unwrap_err().starts_with("Provided checksum 'aaaaaaaa'"));
        assert_eq!(
            check_checksum(&format!("{d}#abc"), true).unwrap_err(),
            "Expected 8 character checksum, not 3 characters"
        );
        assert_eq!(check_checksum(&format!("{good}#x"), true).unwrap_err(), "Multiple '#' symbols");
    }

    #[test]
    fn rawtr_output_key_is_untweaked() {
        let sk = bitcoin::PrivateKey::generate(NetworkKind::Test);
        let (kind, secrets) = parse_descriptor(&format!("rawtr({})", sk.to_wif())).unwrap();
        assert_eq!(secrets.len(), 1);
        let d = kind.derive(0).unwrap();
        let x = sk.public_key(secp()).inner.x_only_public_key().0;
        assert_eq!(&d.script_pubkey.as_bytes()[2..], &x.serialize());
        assert!(kind.to_public_string().starts_with("rawtr("));
    }

    #[test]
    fn tr_wif_is_printed_xonly() {
        let sk = bitcoin::PrivateKey::generate(NetworkKind::Test);
        let (kind, _) = parse_descriptor(&format!("tr({})", sk.to_wif())).unwrap();
        let x = sk.public_key(secp()).inner.x_only_public_key().0;
        assert_eq!(kind.to_public_string(), format!("tr({x})"));
    }
}
