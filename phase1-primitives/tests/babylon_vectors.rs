//! Babylon's own cross-implementation vectors (`btcstaking/testvectors/vectors.json`): every
//! script, pkScript, OP_RETURN and unsigned unbonding transaction must be byte-equal.

mod common;

use std::str::FromStr;

use common::*;
use phase1_primitives::bitcoin::key::TapTweak;
use phase1_primitives::bitcoin::taproot::{LeafVersion, TaprootBuilder};
use phase1_primitives::bitcoin::{TapLeafHash, Txid, XOnlyPublicKey};
use phase1_primitives::staking::nums_internal_key;
use phase1_primitives::unbonding::{build_unbonding_tx, UnbondingParams};
use phase1_primitives::{CovenantCommittee, Leaf, StakingInfo, UnbondingInfo, V0OpReturn};

#[test]
fn all_five_babylon_vectors_match() {
    let data = json_or_skip!("babylon-btcstaking-testvectors.json");
    let vectors = data["vectors"].as_array().expect("vectors array");
    assert_eq!(vectors.len(), 5, "the file has 5 cases");
    let secp = phase1_primitives::secp();
    for v in vectors {
        let name = str_of(v, "name");
        let p = &v["parameters"];
        let e = &v["expected"];
        let cov: Vec<_> =
            p["covenant_public_keys"].as_array().unwrap().iter().map(|k| compressed(k.as_str().unwrap())).collect();
        let quorum = u64_of(p, "covenant_quorum") as u32;
        let committee = CovenantCommittee::new(cov, quorum).unwrap();
        let fps: Vec<XOnlyPublicKey> =
            p["finality_provider_public_keys"].as_array().unwrap().iter().map(|k| xonly(k.as_str().unwrap())).collect();
        let staker = xonly(str_of(p, "staker_public_key"));
        let staking_time = u64_of(p, "staking_time") as u16;
        let info = StakingInfo::new(&staker, &fps, &committee, staking_time).unwrap();

        assert_eq!(to_hex(info.timelock_script()), str_of(e, "staking_transaction_timelock_script_hex"), "{name}");
        assert_eq!(to_hex(info.unbonding_script()), str_of(e, "staking_transaction_unbonding_script_hex"), "{name}");
        assert_eq!(to_hex(info.slashing_script()), str_of(e, "staking_transaction_slashing_script_hex"), "{name}");
        assert_eq!(to_hex(info.pk_script()), str_of(e, "staking_output_pkscript_hex"), "{name}");
        assert_eq!(u64_of(p, "staking_value"), u64_of(e, "staking_output_value"), "{name}");

        // Streamed leaf hashes equal the library's hash of the materialised scripts.
        for leaf in [Leaf::Timelock, Leaf::Unbonding, Leaf::Slashing] {
            let script = info.leaf_script(leaf);
            assert_eq!(
                info.leaf_hash(leaf),
                TapLeafHash::from_script(&script, LeafVersion::TapScript),
                "{name} {leaf:?}"
            );
            assert!(info.is_leaf_script(leaf, script.as_bytes()));
        }

        // Cross-check the tree with rust-bitcoin's TaprootBuilder (depths 2, 2, 1).
        let spend = TaprootBuilder::new()
            .add_leaf(2, info.timelock_script())
            .unwrap()
            .add_leaf(2, info.unbonding_script())
            .unwrap()
            .add_leaf(1, info.slashing_script())
            .unwrap()
            .finalize(secp, nums_internal_key())
            .unwrap();
        assert_eq!(spend.output_key(), info.output_key(), "{name}");
        assert_eq!(spend.merkle_root(), Some(info.merkle_root()), "{name}");
        for leaf in [Leaf::Timelock, Leaf::Unbonding, Leaf::Slashing] {
            let script = info.leaf_script(leaf);
            let theirs = spend.control_block(&(script.clone(), LeafVersion::TapScript)).unwrap();
            assert_eq!(theirs.serialize(), info.control_block(leaf).serialize(), "{name} {leaf:?}");
            assert!(info.control_block(leaf).verify_taproot_commitment(
                secp,
                info.output_key().to_x_only_public_key(),
                &script
            ));
        }
        let (q, parity) = nums_internal_key().tap_tweak(secp, Some(info.merkle_root()));
        assert_eq!((q, parity), (info.output_key(), info.output_key_parity()));

        // Unbonding output and transaction.
        let params = UnbondingParams {
            unbonding_fee: u64_of(p, "unbonding_fee"),
            unbonding_time: u64_of(p, "unbonding_time") as u16,
        };
        let unbonding = info.unbonding_info(params.unbonding_time);
        assert_eq!(unbonding, UnbondingInfo::new(&staker, &fps, &committee, params.unbonding_time).unwrap());
        assert_eq!(
            to_hex(unbonding.timelock_script()),
            str_of(e, "unbonding_transaction_time_lock_script_hex"),
            "{name}"
        );
        assert_eq!(
            to_hex(unbonding.slashing_script()),
            str_of(e, "unbonding_transaction_slashing_script_hex"),
            "{name}"
        );
        let ub_spend = TaprootBuilder::new()
            .add_leaf(1, unbonding.timelock_script())
            .unwrap()
            .add_leaf(1, unbonding.slashing_script())
            .unwrap()
            .finalize(secp, nums_internal_key())
            .unwrap();
        assert_eq!(ub_spend.output_key(), unbonding.output_key(), "{name}");
        assert_eq!(
            ub_spend.control_block(&(unbonding.timelock_script(), LeafVersion::TapScript)).unwrap().serialize(),
            unbonding.control_block_timelock().serialize()
        );
        assert_eq!(
            ub_spend.control_block(&(unbonding.slashing_script(), LeafVersion::TapScript)).unwrap().serialize(),
            unbonding.control_block_slashing().serialize()
        );
        assert_eq!(u64_of(p, "unbonding_tx_version"), 2);
        let staking_txid = Txid::from_str(str_of(p, "staking_tx_hash")).unwrap();
        let ub_tx = build_unbonding_tx(
            staking_txid,
            u64_of(p, "staking_output_index") as u32,
            u64_of(p, "staking_value"),
            params,
            &staker,
            &fps,
            &committee,
        )
        .unwrap();
        assert_eq!(tx_hex(&ub_tx), str_of(e, "unbonding_transaction_hex"), "{name}");

        // OP_RETURN (1-FP cases only).
        let op = str_of(e, "op_return_script_hex");
        if fps.len() == 1 {
            assert!(!op.is_empty(), "{name}: 1-FP cases carry an OP_RETURN");
            let tag: [u8; 4] = unhex(str_of(p, "tag")).try_into().unwrap();
            let d = V0OpReturn::new(tag, staker, fps[0], staking_time);
            assert_eq!(to_hex(d.to_script()), op, "{name}");
            let script = phase1_primitives::bitcoin::ScriptBuf::from_bytes(unhex(op));
            assert_eq!(V0OpReturn::parse(&script), Some(d));
        } else {
            assert!(op.is_empty(), "{name}: multi-FP cases have no OP_RETURN");
        }
    }
}
