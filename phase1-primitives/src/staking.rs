//! The staking output (3-leaf Taproot tree, spec §1.3) and the unbonding output (2-leaf tree,
//! spec §2.1), with their scripts, leaf hashes, output keys and control blocks.
//!
//! Leaf hashes are computed by streaming the script pieces (staker prefix, finality-provider part,
//! the committee's precomputed multisig bytes) straight into the tagged hash engine, so deriving an
//! output allocates nothing but the finality-provider list; scripts are only materialised when a
//! caller asks for them.

use std::fmt;

use bitcoin::hashes::{Hash, HashEngine};
use bitcoin::key::TweakedPublicKey;
use bitcoin::secp256k1::Parity;
use bitcoin::taproot::{ControlBlock, LeafVersion, TapLeafHash, TapNodeHash, TaprootMerkleBranch};
use bitcoin::{Amount, Script, ScriptBuf, TxOut, XOnlyPublicKey};

use crate::committee::CovenantCommittee;
use crate::script::{self, ScriptError, OP_CHECKSIGVERIFY, OP_PUSHBYTES_32};

/// Tapscript leaf version used by every Babylon leaf (`0xc0`).
pub const TAPSCRIPT_LEAF_VERSION: u8 = 0xc0;

/// The three leaves of the staking output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leaf {
    /// `<S> OP_CHECKSIGVERIFY <staking_time> OP_CHECKSEQUENCEVERIFY` (withdrawal after expiry).
    Timelock,
    /// `<S> OP_CHECKSIGVERIFY` ‖ covenant multisig (on-demand unbonding).
    Unbonding,
    /// `<S> OP_CHECKSIGVERIFY` ‖ FP part ‖ covenant multisig (slashing; never used in Phase-1).
    Slashing,
}

/// A role a key plays in the scripts (used in duplicate-key errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The staker key.
    Staker,
    /// Finality-provider key number `n` (0-based, in the order given).
    FinalityProvider(usize),
    /// A covenant committee key.
    Covenant,
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRole::Staker => write!(f, "staker key"),
            KeyRole::FinalityProvider(i) => write!(f, "finality provider key #{i}"),
            KeyRole::Covenant => write!(f, "a covenant key"),
        }
    }
}

/// Why a staking or unbonding output could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StakingInfoError {
    /// No finality-provider key was given.
    NoFinalityProvider,
    /// Two of staker, finality-provider and covenant keys are equal (as x-only keys). Babylon's
    /// library refuses to build such scripts, so such a transaction is not a staking transaction.
    DuplicateKey {
        /// The repeated key.
        key: XOnlyPublicKey,
        /// Where it first appeared.
        first: KeyRole,
        /// Where it appeared again.
        second: KeyRole,
    },
}

impl fmt::Display for StakingInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StakingInfoError::NoFinalityProvider => {
                write!(f, "no finality provider key given (a staking output needs at least one)")
            }
            StakingInfoError::DuplicateKey { key, first, second } => write!(
                f,
                "key {key} is used both as {first} and as {second}; staker, finality provider and covenant keys must all be distinct"
            ),
        }
    }
}

impl std::error::Error for StakingInfoError {}

/// The BIP-341 NUMS point used as internal key (key-path spending disabled):
/// `lift_x(0x50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0)`.
pub const NUMS_INTERNAL_KEY: [u8; 32] = [
    0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e, 0x07, 0x8a, 0x5a,
    0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
];

/// The NUMS internal key as an x-only key (lifted once).
pub fn nums_internal_key() -> XOnlyPublicKey {
    static KEY: std::sync::OnceLock<XOnlyPublicKey> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| crate::curve::xonly_key(&NUMS_INTERNAL_KEY).expect("the BIP-341 NUMS point is valid"))
}

/// Writes a Bitcoin compact-size length into a hash engine.
fn input_compact_size<E: HashEngine>(eng: &mut E, n: usize) {
    if n < 0xfd {
        eng.input(&[n as u8]);
    } else if n <= 0xffff {
        eng.input(&[0xfd]);
        eng.input(&(n as u16).to_le_bytes());
    } else if n as u64 <= 0xffff_ffff {
        eng.input(&[0xfe]);
        eng.input(&(n as u32).to_le_bytes());
    } else {
        eng.input(&[0xff]);
        eng.input(&(n as u64).to_le_bytes());
    }
}

/// TapLeaf hash (leaf version 0xc0) of the script `parts[0] ‖ parts[1] ‖ …`, without building it.
pub(crate) fn leaf_hash_of_parts(parts: &[&[u8]]) -> TapLeafHash {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut eng = TapLeafHash::engine();
    eng.input(&[TAPSCRIPT_LEAF_VERSION]);
    input_compact_size(&mut eng, len);
    for p in parts {
        eng.input(p);
    }
    TapLeafHash::from_engine(eng)
}

/// Finality-provider part of the slashing leaf: for one key it lives on the stack.
enum FpPart {
    Single([u8; 34]),
    Multi(Vec<u8>),
}

impl FpPart {
    fn new(fps: &[XOnlyPublicKey]) -> Result<FpPart, ScriptError> {
        if fps.len() == 1 {
            let mut b = [0u8; 34];
            b[0] = OP_PUSHBYTES_32;
            b[1..33].copy_from_slice(&fps[0].serialize());
            b[33] = OP_CHECKSIGVERIFY;
            return Ok(FpPart::Single(b));
        }
        let mut v = Vec::with_capacity(fps.len() * 34 + 2);
        script::append_fp_part(&mut v, fps)?;
        Ok(FpPart::Multi(v))
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            FpPart::Single(b) => b,
            FpPart::Multi(v) => v,
        }
    }
}

/// Checks that staker, finality-provider and covenant keys are pairwise distinct (Babylon's
/// `checkForDuplicateKeys`: staker first, then FP keys in order, then covenant keys).
fn check_distinct(
    staker: &XOnlyPublicKey,
    fps: &[XOnlyPublicKey],
    committee: &CovenantCommittee,
) -> Result<(), StakingInfoError> {
    if fps.is_empty() {
        return Err(StakingInfoError::NoFinalityProvider);
    }
    for (i, fp) in fps.iter().enumerate() {
        if fp == staker {
            return Err(StakingInfoError::DuplicateKey {
                key: *fp,
                first: KeyRole::Staker,
                second: KeyRole::FinalityProvider(i),
            });
        }
        if let Some(j) = fps[..i].iter().position(|k| k == fp) {
            return Err(StakingInfoError::DuplicateKey {
                key: *fp,
                first: KeyRole::FinalityProvider(j),
                second: KeyRole::FinalityProvider(i),
            });
        }
    }
    if committee.contains_xonly(staker) {
        return Err(StakingInfoError::DuplicateKey { key: *staker, first: KeyRole::Staker, second: KeyRole::Covenant });
    }
    for (i, fp) in fps.iter().enumerate() {
        if committee.contains_xonly(fp) {
            return Err(StakingInfoError::DuplicateKey {
                key: *fp,
                first: KeyRole::FinalityProvider(i),
                second: KeyRole::Covenant,
            });
        }
    }
    Ok(())
}

/// Tweaks the NUMS key with `root`: output key, its parity, and the 34-byte P2TR pkScript.
fn tweak(root: TapNodeHash) -> (TweakedPublicKey, Parity, [u8; 34]) {
    let (output_key, parity) = crate::curve::nums_output_key(root);
    let mut pk_script = [0u8; 34];
    pk_script[0] = 0x51; // OP_1 (witness v1)
    pk_script[1] = OP_PUSHBYTES_32;
    pk_script[2..].copy_from_slice(&output_key.serialize());
    (output_key, parity, pk_script)
}

fn control_block(parity: Parity, path: &[TapNodeHash]) -> ControlBlock {
    ControlBlock {
        leaf_version: LeafVersion::TapScript,
        output_key_parity: parity,
        internal_key: nums_internal_key(),
        merkle_branch: TaprootMerkleBranch::try_from(path).expect("Babylon trees are at most 2 deep"),
    }
}

/// The staking output of one staking transaction: keys, staking time, the three leaf hashes, the
/// merkle root and the tweaked output key (spec §1.3).
///
/// Tree: `root = TapBranch(TapBranch(L_timelock, L_unbonding), L_slashing)`, internal key = NUMS.
#[derive(Clone, PartialEq, Eq)]
pub struct StakingInfo {
    staker: XOnlyPublicKey,
    fps: Vec<XOnlyPublicKey>,
    committee: CovenantCommittee,
    staking_time: u16,
    timelock_leaf: TapLeafHash,
    unbonding_leaf: TapLeafHash,
    slashing_leaf: TapLeafHash,
    branch: TapNodeHash,
    root: TapNodeHash,
    output_key: TweakedPublicKey,
    parity: Parity,
    pk_script: [u8; 34],
}

impl StakingInfo {
    /// Derives the staking output for `staker`, finality provider key(s) `fp` (exactly one in
    /// Phase-1), `committee` and `staking_time`. Fails if `fp` is empty or any two keys (staker, FPs,
    /// covenant keys) are equal as x-only keys.
    pub fn new(
        staker: &XOnlyPublicKey,
        fp: &[XOnlyPublicKey],
        committee: &CovenantCommittee,
        staking_time: u16,
    ) -> Result<StakingInfo, StakingInfoError> {
        check_distinct(staker, fp, committee)?;
        let prefix = script::staker_prefix(staker);
        let cov = committee.multisig_script().as_bytes();
        let (tl, tl_len) = script::timelock_bytes(staker, staking_time);
        let timelock_leaf = leaf_hash_of_parts(&[&tl[..tl_len]]);
        let unbonding_leaf = leaf_hash_of_parts(&[&prefix, cov]);
        let fp_part = FpPart::new(fp).map_err(|e| match e {
            // check_distinct already rejected empty and duplicate lists
            ScriptError::DuplicateKey { key, .. } => StakingInfoError::DuplicateKey {
                key,
                first: KeyRole::FinalityProvider(0),
                second: KeyRole::FinalityProvider(1),
            },
            _ => StakingInfoError::NoFinalityProvider,
        })?;
        let slashing_leaf = leaf_hash_of_parts(&[&prefix, fp_part.as_bytes(), cov]);
        let branch = TapNodeHash::from_node_hashes(timelock_leaf.into(), unbonding_leaf.into());
        let root = TapNodeHash::from_node_hashes(branch, slashing_leaf.into());
        let (output_key, parity, pk_script) = tweak(root);
        Ok(StakingInfo {
            staker: *staker,
            fps: fp.to_vec(),
            committee: committee.clone(),
            staking_time,
            timelock_leaf,
            unbonding_leaf,
            slashing_leaf,
            branch,
            root,
            output_key,
            parity,
            pk_script,
        })
    }

    /// The staker key.
    pub fn staker(&self) -> &XOnlyPublicKey {
        &self.staker
    }

    /// The finality-provider key(s), in the order given.
    pub fn finality_providers(&self) -> &[XOnlyPublicKey] {
        &self.fps
    }

    /// The covenant committee the scripts were built for.
    pub fn committee(&self) -> &CovenantCommittee {
        &self.committee
    }

    /// The staking time (blocks) in the timelock leaf.
    pub fn staking_time(&self) -> u16 {
        self.staking_time
    }

    /// The staking output pkScript `51 20 x(Q)` (34 bytes).
    pub fn pk_script(&self) -> ScriptBuf {
        ScriptBuf::from_bytes(self.pk_script.to_vec())
    }

    /// The staking output pkScript bytes without allocating.
    pub fn pk_script_bytes(&self) -> &[u8; 34] {
        &self.pk_script
    }

    /// True if `script` is this staking output's pkScript.
    pub fn matches_pk_script(&self, script: &Script) -> bool {
        script.as_bytes() == self.pk_script
    }

    /// The staking output for `value` satoshis.
    pub fn staking_output(&self, value: u64) -> TxOut {
        TxOut { value: Amount::from_sat(value), script_pubkey: self.pk_script() }
    }

    /// The tweaked output key Q.
    pub fn output_key(&self) -> TweakedPublicKey {
        self.output_key
    }

    /// Parity of Q (the low bit of every control block's first byte).
    pub fn output_key_parity(&self) -> Parity {
        self.parity
    }

    /// The Taproot merkle root.
    pub fn merkle_root(&self) -> TapNodeHash {
        self.root
    }

    /// `TapBranch(L_timelock, L_unbonding)`, the slashing leaf's merkle path.
    pub fn timelock_unbonding_branch(&self) -> TapNodeHash {
        self.branch
    }

    /// TapLeaf hash of one leaf.
    pub fn leaf_hash(&self, leaf: Leaf) -> TapLeafHash {
        match leaf {
            Leaf::Timelock => self.timelock_leaf,
            Leaf::Unbonding => self.unbonding_leaf,
            Leaf::Slashing => self.slashing_leaf,
        }
    }

    /// TapLeaf hash of the timelock leaf.
    pub fn timelock_leaf_hash(&self) -> TapLeafHash {
        self.timelock_leaf
    }

    /// TapLeaf hash of the unbonding leaf.
    pub fn unbonding_leaf_hash(&self) -> TapLeafHash {
        self.unbonding_leaf
    }

    /// TapLeaf hash of the slashing leaf.
    pub fn slashing_leaf_hash(&self) -> TapLeafHash {
        self.slashing_leaf
    }

    /// Timelock leaf script.
    pub fn timelock_script(&self) -> ScriptBuf {
        script::timelock_script(&self.staker, self.staking_time)
    }

    /// Unbonding leaf script.
    pub fn unbonding_script(&self) -> ScriptBuf {
        script::unbonding_script(&self.staker, &self.committee)
    }

    /// Slashing leaf script.
    pub fn slashing_script(&self) -> ScriptBuf {
        script::slashing_script(&self.staker, &self.fps, &self.committee)
            .expect("keys were checked in StakingInfo::new")
    }

    /// Script of one leaf.
    pub fn leaf_script(&self, leaf: Leaf) -> ScriptBuf {
        match leaf {
            Leaf::Timelock => self.timelock_script(),
            Leaf::Unbonding => self.unbonding_script(),
            Leaf::Slashing => self.slashing_script(),
        }
    }

    /// True if `bytes` is exactly the script of `leaf` (compared without building the script).
    pub fn is_leaf_script(&self, leaf: Leaf, bytes: &[u8]) -> bool {
        match leaf {
            Leaf::Timelock => {
                let (tl, len) = script::timelock_bytes(&self.staker, self.staking_time);
                bytes == &tl[..len]
            }
            Leaf::Unbonding => script::is_concat(
                bytes,
                &script::staker_prefix(&self.staker),
                self.committee.multisig_script().as_bytes(),
                &[],
            ),
            Leaf::Slashing => match FpPart::new(&self.fps) {
                Ok(fp) => script::is_concat(
                    bytes,
                    &script::staker_prefix(&self.staker),
                    fp.as_bytes(),
                    self.committee.multisig_script().as_bytes(),
                ),
                Err(_) => false,
            },
        }
    }

    /// Control block for spending `leaf`: `(0xc0 | parity(Q)) ‖ x(NUMS) ‖ path`, with path
    /// timelock → `L_unbonding ‖ L_slashing`, unbonding → `L_timelock ‖ L_slashing`,
    /// slashing → `TapBranch(L_timelock, L_unbonding)`.
    pub fn control_block(&self, leaf: Leaf) -> ControlBlock {
        match leaf {
            Leaf::Timelock => control_block(self.parity, &[self.unbonding_leaf.into(), self.slashing_leaf.into()]),
            Leaf::Unbonding => control_block(self.parity, &[self.timelock_leaf.into(), self.slashing_leaf.into()]),
            Leaf::Slashing => control_block(self.parity, &[self.branch]),
        }
    }

    /// The unbonding output of this stake for `unbonding_time` (reuses the slashing leaf hash).
    pub fn unbonding_info(&self, unbonding_time: u16) -> UnbondingInfo {
        UnbondingInfo::from_parts(
            self.staker,
            self.fps.clone(),
            self.committee.clone(),
            unbonding_time,
            self.slashing_leaf,
        )
    }
}

impl fmt::Debug for StakingInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StakingInfo")
            .field("staker", &self.staker)
            .field("finality_providers", &self.fps)
            .field("staking_time", &self.staking_time)
            .field("merkle_root", &self.root)
            .field("output_key", &self.output_key)
            .finish()
    }
}

/// The unbonding output (spec §2.1): same NUMS internal key, 2-leaf tree
/// `root' = TapBranch(L_timelock', L_slashing)` where timelock' uses `unbonding_time` and the
/// slashing leaf is byte-identical to the staking one.
#[derive(Clone, PartialEq, Eq)]
pub struct UnbondingInfo {
    staker: XOnlyPublicKey,
    fps: Vec<XOnlyPublicKey>,
    committee: CovenantCommittee,
    unbonding_time: u16,
    timelock_leaf: TapLeafHash,
    slashing_leaf: TapLeafHash,
    root: TapNodeHash,
    output_key: TweakedPublicKey,
    parity: Parity,
    pk_script: [u8; 34],
}

impl UnbondingInfo {
    /// Derives the unbonding output; same key checks as [`StakingInfo::new`].
    pub fn new(
        staker: &XOnlyPublicKey,
        fp: &[XOnlyPublicKey],
        committee: &CovenantCommittee,
        unbonding_time: u16,
    ) -> Result<UnbondingInfo, StakingInfoError> {
        check_distinct(staker, fp, committee)?;
        let prefix = script::staker_prefix(staker);
        let fp_part = FpPart::new(fp).map_err(|_| StakingInfoError::NoFinalityProvider)?;
        let slashing_leaf = leaf_hash_of_parts(&[&prefix, fp_part.as_bytes(), committee.multisig_script().as_bytes()]);
        Ok(Self::from_parts(*staker, fp.to_vec(), committee.clone(), unbonding_time, slashing_leaf))
    }

    fn from_parts(
        staker: XOnlyPublicKey,
        fps: Vec<XOnlyPublicKey>,
        committee: CovenantCommittee,
        unbonding_time: u16,
        slashing_leaf: TapLeafHash,
    ) -> UnbondingInfo {
        let (tl, tl_len) = script::timelock_bytes(&staker, unbonding_time);
        let timelock_leaf = leaf_hash_of_parts(&[&tl[..tl_len]]);
        let root = TapNodeHash::from_node_hashes(timelock_leaf.into(), slashing_leaf.into());
        let (output_key, parity, pk_script) = tweak(root);
        UnbondingInfo {
            staker,
            fps,
            committee,
            unbonding_time,
            timelock_leaf,
            slashing_leaf,
            root,
            output_key,
            parity,
            pk_script,
        }
    }

    /// The staker key.
    pub fn staker(&self) -> &XOnlyPublicKey {
        &self.staker
    }

    /// The finality-provider key(s).
    pub fn finality_providers(&self) -> &[XOnlyPublicKey] {
        &self.fps
    }

    /// The covenant committee.
    pub fn committee(&self) -> &CovenantCommittee {
        &self.committee
    }

    /// The unbonding time (blocks) in the timelock' leaf.
    pub fn unbonding_time(&self) -> u16 {
        self.unbonding_time
    }

    /// The unbonding output pkScript `51 20 x(Q')`.
    pub fn pk_script(&self) -> ScriptBuf {
        ScriptBuf::from_bytes(self.pk_script.to_vec())
    }

    /// The unbonding output pkScript bytes without allocating.
    pub fn pk_script_bytes(&self) -> &[u8; 34] {
        &self.pk_script
    }

    /// True if `script` is this unbonding output's pkScript.
    pub fn matches_pk_script(&self, script: &Script) -> bool {
        script.as_bytes() == self.pk_script
    }

    /// The unbonding output for `value` satoshis.
    pub fn unbonding_output(&self, value: u64) -> TxOut {
        TxOut { value: Amount::from_sat(value), script_pubkey: self.pk_script() }
    }

    /// The tweaked output key Q'.
    pub fn output_key(&self) -> TweakedPublicKey {
        self.output_key
    }

    /// Parity of Q'.
    pub fn output_key_parity(&self) -> Parity {
        self.parity
    }

    /// The merkle root `TapBranch(L_timelock', L_slashing)`.
    pub fn merkle_root(&self) -> TapNodeHash {
        self.root
    }

    /// TapLeaf hash of the timelock' leaf.
    pub fn timelock_leaf_hash(&self) -> TapLeafHash {
        self.timelock_leaf
    }

    /// TapLeaf hash of the slashing leaf.
    pub fn slashing_leaf_hash(&self) -> TapLeafHash {
        self.slashing_leaf
    }

    /// Timelock' leaf script (`<S> OP_CHECKSIGVERIFY <unbonding_time> OP_CHECKSEQUENCEVERIFY`).
    pub fn timelock_script(&self) -> ScriptBuf {
        script::timelock_script(&self.staker, self.unbonding_time)
    }

    /// Slashing leaf script.
    pub fn slashing_script(&self) -> ScriptBuf {
        script::slashing_script(&self.staker, &self.fps, &self.committee).expect("keys were checked on construction")
    }

    /// True if `bytes` is exactly the timelock' script.
    pub fn is_timelock_script(&self, bytes: &[u8]) -> bool {
        let (tl, len) = script::timelock_bytes(&self.staker, self.unbonding_time);
        bytes == &tl[..len]
    }

    /// Control block for the timelock' leaf: `(0xc0|parity(Q')) ‖ x(NUMS) ‖ L_slashing`.
    pub fn control_block_timelock(&self) -> ControlBlock {
        control_block(self.parity, &[self.slashing_leaf.into()])
    }

    /// Control block for the slashing leaf: `(0xc0|parity(Q')) ‖ x(NUMS) ‖ L_timelock'`.
    pub fn control_block_slashing(&self) -> ControlBlock {
        control_block(self.parity, &[self.timelock_leaf.into()])
    }
}

impl fmt::Debug for UnbondingInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnbondingInfo")
            .field("staker", &self.staker)
            .field("finality_providers", &self.fps)
            .field("unbonding_time", &self.unbonding_time)
            .field("merkle_root", &self.root)
            .field("output_key", &self.output_key)
            .finish()
    }
}
