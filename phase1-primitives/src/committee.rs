//! The covenant committee of one parameters version, precomputed once (spec §1.3, §2.2).

use std::fmt;
use std::sync::Arc;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Script, ScriptBuf, XOnlyPublicKey};

use crate::script::{covenant_multisig_script, ScriptError};

/// Everything about a covenant committee that depends only on the parameters version: the keys
/// (x-only, sorted ascending as in the scripts; and compressed, in params order), the quorum and
/// the covenant multisig script bytes. Cloning is cheap (one reference-count increment), so
/// per-transaction structures such as [`crate::staking::StakingInfo`] keep a clone.
#[derive(Clone, PartialEq, Eq)]
pub struct CovenantCommittee {
    inner: Arc<Inner>,
}

#[derive(PartialEq, Eq)]
struct Inner {
    keys_xonly_sorted: Vec<XOnlyPublicKey>,
    /// Serialised form of `keys_xonly_sorted` (membership tests without FFI calls).
    keys_xonly_bytes: Vec<[u8; 32]>,
    keys_compressed: Vec<PublicKey>,
    quorum: u32,
    multisig_script: ScriptBuf,
}

/// Why a committee could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitteeError {
    /// No covenant keys were given.
    NoKeys,
    /// The quorum is 0 or exceeds the number of keys.
    BadQuorum {
        /// Requested quorum.
        quorum: u32,
        /// Number of keys.
        keys: usize,
    },
    /// Two covenant keys have the same x coordinate (the scripts use x-only keys, so keys that differ
    /// only in their parity byte collide too).
    DuplicateKey(XOnlyPublicKey),
}

impl fmt::Display for CommitteeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitteeError::NoKeys => write!(f, "covenant committee has no keys (list at least one covenant key)"),
            CommitteeError::BadQuorum { quorum, keys } => write!(
                f,
                "covenant quorum {quorum} must be between 1 and the number of covenant keys ({keys}) (fix covenant_quorum)"
            ),
            CommitteeError::DuplicateKey(k) => write!(
                f,
                "covenant key with x-only form {k} appears more than once (each covenant member needs a distinct key)"
            ),
        }
    }
}

impl std::error::Error for CommitteeError {}

impl From<ScriptError> for CommitteeError {
    fn from(e: ScriptError) -> Self {
        match e {
            ScriptError::NoKeys { .. } => CommitteeError::NoKeys,
            ScriptError::BadThreshold { threshold, keys, .. } => CommitteeError::BadQuorum { quorum: threshold, keys },
            ScriptError::DuplicateKey { key, .. } => CommitteeError::DuplicateKey(key),
        }
    }
}

impl CovenantCommittee {
    /// Builds a committee from compressed keys (params order is kept for
    /// [`keys_compressed`](Self::keys_compressed)) and a quorum. Keys must be distinct as x-only keys
    /// and `1 <= quorum <= keys.len()`.
    pub fn new(keys_compressed: Vec<PublicKey>, quorum: u32) -> Result<Self, CommitteeError> {
        if keys_compressed.is_empty() {
            return Err(CommitteeError::NoKeys);
        }
        let mut xonly: Vec<XOnlyPublicKey> = keys_compressed.iter().map(|k| k.x_only_public_key().0).collect();
        xonly.sort_unstable_by_key(|k| k.serialize());
        if let Some(w) = xonly.windows(2).find(|w| w[0] == w[1]) {
            return Err(CommitteeError::DuplicateKey(w[0]));
        }
        let multisig_script = covenant_multisig_script(&xonly, quorum)?;
        let keys_xonly_bytes = xonly.iter().map(|k| k.serialize()).collect();
        Ok(CovenantCommittee {
            inner: Arc::new(Inner {
                keys_xonly_sorted: xonly,
                keys_xonly_bytes,
                keys_compressed,
                quorum,
                multisig_script,
            }),
        })
    }

    /// Builds a committee from x-only keys (e.g. fixtures that only carry x-only keys). The
    /// compressed forms are taken with even parity (`02…`), which is what BIP-340 implies.
    pub fn from_xonly(keys: &[XOnlyPublicKey], quorum: u32) -> Result<Self, CommitteeError> {
        let compressed = keys.iter().map(|k| k.public_key(bitcoin::secp256k1::Parity::Even)).collect();
        Self::new(compressed, quorum)
    }

    /// Builds the committee of a parameters version (its `covenant_pks` and `covenant_quorum`).
    /// A version returned by [`crate::params::GlobalParams::parse`] already carries one:
    /// prefer [`crate::params::ParamsVersion::committee`].
    pub fn from_params(params: &crate::params::ParamsVersion) -> Result<Self, CommitteeError> {
        Self::new(params.covenant_pks.clone(), params.covenant_quorum)
    }

    /// Covenant keys as x-only keys, sorted ascending by their 32 bytes (script order).
    pub fn keys_xonly_sorted(&self) -> &[XOnlyPublicKey] {
        &self.inner.keys_xonly_sorted
    }

    /// Covenant keys as 33-byte compressed keys, in params order.
    pub fn keys_compressed(&self) -> &[PublicKey] {
        &self.inner.keys_compressed
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.inner.keys_xonly_sorted.len()
    }

    /// Always false (a committee has at least one key); provided for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.inner.keys_xonly_sorted.is_empty()
    }

    /// The covenant quorum (number of signatures the scripts require, exactly).
    pub fn quorum(&self) -> u32 {
        self.inner.quorum
    }

    /// The covenant multisig script (the shared tail of the unbonding and slashing leaves).
    pub fn multisig_script(&self) -> &Script {
        &self.inner.multisig_script
    }

    /// True if `key` is one of the covenant keys (x-only comparison; binary search).
    pub fn contains_xonly(&self, key: &XOnlyPublicKey) -> bool {
        self.position_xonly(key).is_some()
    }

    /// Index of `key` in [`keys_xonly_sorted`](Self::keys_xonly_sorted), if it is a member.
    pub fn position_xonly(&self, key: &XOnlyPublicKey) -> Option<usize> {
        self.inner.keys_xonly_bytes.binary_search(&key.serialize()).ok()
    }

    /// True if `key` equals one of the compressed keys exactly (parity byte included), as the
    /// covenant signer's membership check does.
    pub fn contains_compressed(&self, key: &PublicKey) -> bool {
        self.inner.keys_compressed.contains(key)
    }
}

impl fmt::Debug for CovenantCommittee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CovenantCommittee")
            .field("keys_xonly_sorted", &self.inner.keys_xonly_sorted)
            .field("quorum", &self.inner.quorum)
            .finish()
    }
}
