//! Recognising staking transactions: Step A (`IsPossibleV0StakingTx`), Step B
//! (`ParseV0StakingTx`) and Step C (amount/time validation) of spec §1.4.

use std::fmt;

use bitcoin::Transaction;

use crate::committee::CovenantCommittee;
use crate::op_return::{v0_op_return_data, V0OpReturn, TAG_LEN};
use crate::params::ParamsVersion;
use crate::staking::{StakingInfo, StakingInfoError};

/// Step A, the cheap pre-filter: at least 2 outputs and exactly one output whose pkScript is a
/// 73-byte null-data script with payload starting `tag ‖ 0x00`. Two such outputs → `false`.
pub fn is_possible_v0_staking_tx(tx: &Transaction, tag: [u8; 4]) -> bool {
    if tx.output.len() < 2 {
        return false;
    }
    let mut found = false;
    for out in &tx.output {
        let Some(data) = v0_op_return_data(out.script_pubkey.as_bytes()) else { continue };
        if data[..TAG_LEN] != tag || data[TAG_LEN] != 0 {
            continue;
        }
        if found {
            return false;
        }
        found = true;
    }
    found
}

/// A recognised staking transaction (result of Step B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedStakingTx {
    /// Index of the staking output.
    pub staking_output_index: u32,
    /// Value of the staking output in satoshis.
    pub staking_value: u64,
    /// Index of the OP_RETURN output.
    pub op_return_index: u32,
    /// The decoded OP_RETURN payload.
    pub op_return: V0OpReturn,
    /// The derived staking output (scripts, leaf hashes, control blocks).
    pub info: StakingInfo,
}

/// Why Step B did not recognise a transaction (the indexer then ignores it silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than 2 outputs.
    TooFewOutputs(usize),
    /// No output decodes as a V0 OP_RETURN.
    NoOpReturn,
    /// More than one output decodes as a V0 OP_RETURN (whatever their tags).
    MultipleOpReturns {
        /// Index of the first.
        first: u32,
        /// Index of the second.
        second: u32,
    },
    /// The OP_RETURN's tag is not the params tag.
    WrongTag {
        /// Tag in the transaction.
        found: [u8; 4],
        /// Tag of the params version.
        expected: [u8; 4],
    },
    /// The OP_RETURN's version byte is not 0.
    WrongVersion(u8),
    /// The staking output cannot be built from these keys.
    BadKeys(StakingInfoError),
    /// No output carries the expected staking pkScript.
    NoStakingOutput,
    /// More than one output carries the expected staking pkScript.
    MultipleStakingOutputs {
        /// Index of the first.
        first: u32,
        /// Index of the second.
        second: u32,
    },
}

fn hex4(t: &[u8; 4]) -> String {
    t.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooFewOutputs(n) => {
                write!(f, "transaction has {n} output(s); a staking transaction needs at least 2")
            }
            ParseError::NoOpReturn => write!(f, "transaction has no Babylon V0 OP_RETURN output"),
            ParseError::MultipleOpReturns { first, second } => write!(
                f,
                "outputs {first} and {second} both decode as Babylon V0 OP_RETURNs; a staking transaction must have exactly one"
            ),
            ParseError::WrongTag { found, expected } => write!(
                f,
                "OP_RETURN tag {} does not match the params tag {}",
                hex4(found),
                hex4(expected)
            ),
            ParseError::WrongVersion(v) => write!(f, "OP_RETURN version byte is {v}; only version 0 is defined"),
            ParseError::BadKeys(e) => write!(f, "cannot build the staking output: {e}"),
            ParseError::NoStakingOutput => {
                write!(f, "no output pays to the staking pkScript derived from the OP_RETURN and the params")
            }
            ParseError::MultipleStakingOutputs { first, second } => write!(
                f,
                "outputs {first} and {second} both pay to the staking pkScript; a staking transaction must have exactly one"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// Step B, the full parse, in this order: ≥ 2 outputs; scan all outputs for V0-decodable
/// OP_RETURNs regardless of tag (none or more than one → error); tag must equal `tag` and version
/// 0; build the staking output (keys must be distinct); exactly one output must carry its pkScript.
///
/// Step B.1's argument checks (tag length 4, ≥ 1 covenant key, quorum ≤ #keys) hold by construction
/// of `[u8; 4]` and [`CovenantCommittee`].
pub fn parse_v0_staking_tx(
    tx: &Transaction,
    tag: [u8; 4],
    committee: &CovenantCommittee,
) -> Result<ParsedStakingTx, ParseError> {
    if tx.output.len() < 2 {
        return Err(ParseError::TooFewOutputs(tx.output.len()));
    }
    let mut op_return: Option<(u32, V0OpReturn)> = None;
    for (i, out) in tx.output.iter().enumerate() {
        let Some(d) = V0OpReturn::parse(&out.script_pubkey) else { continue };
        if let Some((first, _)) = op_return {
            return Err(ParseError::MultipleOpReturns { first, second: i as u32 });
        }
        op_return = Some((i as u32, d));
    }
    let (op_return_index, op_return) = op_return.ok_or(ParseError::NoOpReturn)?;
    if op_return.tag != tag {
        return Err(ParseError::WrongTag { found: op_return.tag, expected: tag });
    }
    if op_return.version != 0 {
        return Err(ParseError::WrongVersion(op_return.version));
    }
    let info = StakingInfo::new(&op_return.staker_pk, &[op_return.fp_pk], committee, op_return.staking_time)
        .map_err(ParseError::BadKeys)?;
    let mut staking: Option<(u32, u64)> = None;
    for (i, out) in tx.output.iter().enumerate() {
        if !info.matches_pk_script(&out.script_pubkey) {
            continue;
        }
        if let Some((first, _)) = staking {
            return Err(ParseError::MultipleStakingOutputs { first, second: i as u32 });
        }
        staking = Some((i as u32, out.value.to_sat()));
    }
    let (staking_output_index, staking_value) = staking.ok_or(ParseError::NoStakingOutput)?;
    Ok(ParsedStakingTx { staking_output_index, staking_value, op_return_index, op_return, info })
}

/// Why Step C rejected a recognised staking transaction (the indexer counts it as invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidStaking {
    /// `value < min_staking_amount`.
    AmountBelowMin {
        /// Staking value.
        value: u64,
        /// Params minimum.
        min: u64,
    },
    /// `value > max_staking_amount`.
    AmountAboveMax {
        /// Staking value.
        value: u64,
        /// Params maximum.
        max: u64,
    },
    /// `staking_time > max_staking_time`.
    TimeAboveMax {
        /// Staking time.
        time: u16,
        /// Params maximum.
        max: u16,
    },
    /// `staking_time < min_staking_time`.
    TimeBelowMin {
        /// Staking time.
        time: u16,
        /// Params minimum.
        min: u16,
    },
}

impl fmt::Display for InvalidStaking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidStaking::AmountBelowMin { value, min } => {
                write!(f, "staking value {value} sat is below min_staking_amount {min} sat")
            }
            InvalidStaking::AmountAboveMax { value, max } => {
                write!(f, "staking value {value} sat is above max_staking_amount {max} sat")
            }
            InvalidStaking::TimeAboveMax { time, max } => {
                write!(f, "staking time {time} blocks is above max_staking_time {max}")
            }
            InvalidStaking::TimeBelowMin { time, min } => {
                write!(f, "staking time {time} blocks is below min_staking_time {min}")
            }
        }
    }
}

impl std::error::Error for InvalidStaking {}

/// Step C, in the indexer's order with inclusive bounds: value < min, value > max,
/// time > max, time < min.
pub fn validate_staking_amount_time(
    value: u64,
    staking_time: u16,
    params: &ParamsVersion,
) -> Result<(), InvalidStaking> {
    if value < params.min_staking_amount {
        return Err(InvalidStaking::AmountBelowMin { value, min: params.min_staking_amount });
    }
    if value > params.max_staking_amount {
        return Err(InvalidStaking::AmountAboveMax { value, max: params.max_staking_amount });
    }
    if staking_time > params.max_staking_time {
        return Err(InvalidStaking::TimeAboveMax { time: staking_time, max: params.max_staking_time });
    }
    if staking_time < params.min_staking_time {
        return Err(InvalidStaking::TimeBelowMin { time: staking_time, min: params.min_staking_time });
    }
    Ok(())
}
