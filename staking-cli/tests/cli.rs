//! The `staking-cli` binary without a node: outputs equal the library's, usage errors exit 2
//! with a message that names the problem.

mod testing;

use staking_cli::bitcoin::{Address, Network};
use staking_cli::*;
use testing::*;

const HEIGHT: &str = "150";

struct Setup {
    _dir: tempfile::TempDir,
    params: String,
    key_file: String,
    staking_hex: String,
    to: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let params = write_params(dir.path()).display().to_string();
    let key_file = dir.path().join("staker.key");
    std::fs::write(&key_file, format!("{}\n", secret_hex(STAKER))).unwrap();
    let out = cli_json(&[
        "create-staking-tx",
        "--staker-pk",
        &xonly(STAKER).to_string(),
        "--fp-pk",
        &keypair(FP).public_key().to_string(), // compressed form is accepted too
        "--staking-time",
        "40",
        "--amount",
        "500000",
        "--params",
        &params,
        "--params-version",
        "0",
    ]);
    let unfunded = input::parse_tx("tx", out["staking_tx_hex"].as_str().unwrap()).unwrap();
    let lib = staking_tx(&xonly(STAKER), &xonly(FP), 40, 500_000, &testing::params().versions[0]).unwrap();
    assert_eq!(unfunded, lib);
    let staking_hex = tx_hex(&funded(unfunded, 3));
    let to = Address::p2wpkh(&staking_cli::bitcoin::CompressedPublicKey(keypair(0x77).public_key()), Network::Regtest)
        .to_string();
    Setup { _dir: dir, params, key_file: format!("@{}", key_file.display()), staking_hex, to }
}

#[test]
fn commands_print_what_the_library_builds() {
    let s = setup();
    let params = testing::params();
    let staking = input::parse_tx("tx", &s.staking_hex).unwrap();

    let out = cli(&[
        "create-unbonding-request",
        "--staker-key",
        &s.key_file,
        "--staking-tx",
        &s.staking_hex,
        "--params",
        &s.params,
        "--height",
        HEIGHT,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = unbonding_request(&keypair(STAKER), &staking, &params, 150).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", to_legacy_json(&expected)));

    let to = input::parse_address("--to", &s.to, Network::Regtest).unwrap().script_pubkey();
    for (from, lib) in [
        ("staking", withdraw_from_staking(&keypair(STAKER), &staking, &params, 150, &to, 600).unwrap()),
        ("unbonding", withdraw_from_unbonding(&keypair(STAKER), &staking, None, &params, 150, &to, 600).unwrap()),
    ] {
        let args = [
            "create-withdraw-tx",
            "--from",
            from,
            "--staker-key",
            &secret_hex(STAKER),
            "--staking-tx",
            &s.staking_hex,
            "--params",
            &s.params,
            "--height",
            HEIGHT,
            "--to",
            &s.to,
            "--fee",
            "600",
        ];
        let out = cli_json(&args);
        assert_eq!(out, serde_json::json!({"withdraw_tx_hex": tx_hex(&lib), "signed": true}));
        let raw = cli(&[&args[..], &["--raw"]].concat());
        assert_eq!(String::from_utf8(raw.stdout).unwrap(), format!("{}\n", tx_hex(&lib)));
    }
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    let s = setup();
    let base = |key: &str, staking: &str, height: &str| -> Vec<String> {
        [
            "create-unbonding-request",
            "--staker-key",
            key,
            "--staking-tx",
            staking,
            "--params",
            &s.params,
            "--height",
            height,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_fails(&refs, 2)
    };

    let err = run(base(&secret_hex(0x66), &s.staking_hex, HEIGHT));
    assert!(
        err.contains(&format!("staker key does not match the staking transaction's staker key {}", xonly(STAKER)))
            && err.contains("pass the key the stake was made with"),
        "{err}"
    );
    let err = run(base(&s.key_file, "02000000zz", HEIGHT));
    assert!(err.contains("invalid --staking-tx: not hex"), "{err}");
    let err = run(base(&s.key_file, "0200", HEIGHT));
    assert!(err.contains("does not decode as a Bitcoin transaction"), "{err}");
    let err = run(base("nonsense", &s.staking_hex, HEIGHT));
    assert!(err.contains("invalid --staker-key: expected 64 hex digits"), "{err}");
    let err = run(base("@/nonexistent/key", &s.staking_hex, HEIGHT));
    assert!(err.contains("cannot read file /nonexistent/key"), "{err}");
    let err = run(base(&s.key_file, &s.staking_hex, "5"));
    assert!(
        err.contains("no global params version is active at height 5 (the first one activates at height 100)"),
        "{err}"
    );
    let err = run(base(&s.key_file, &s.staking_hex, "300"));
    assert!(err.contains("not a Phase-1 staking transaction under params version 1"), "{err}");
    let mut no_params = base(&s.key_file, &s.staking_hex, HEIGHT);
    no_params[6] = "/nonexistent/params.json".into();
    let err = run(no_params);
    assert!(err.contains("invalid --params: cannot read /nonexistent/params.json"), "{err}");

    // Withdrawals: wrong network address, fee too high, --unbonding-tx with --from staking.
    let withdraw = |from: &str, to: &str, fee: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "create-withdraw-tx",
            "--from",
            from,
            "--staker-key",
            &s.key_file,
            "--staking-tx",
            &s.staking_hex,
            "--params",
            &s.params,
            "--height",
            HEIGHT,
            "--to",
            to,
            "--fee",
            fee,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    let err = run(withdraw("staking", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "500", &[]));
    assert!(err.contains("is a bitcoin address but --network is regtest: pass a regtest address"), "{err}");
    let err = run(withdraw("staking", "not-an-address", "500", &[]));
    assert!(err.contains("invalid --to"), "{err}");
    let err = run(withdraw("unbonding", &s.to, "499000", &[]));
    assert!(err.contains("--fee 499000 sat is not below the value 499000 sat"), "{err}");
    let err = run(withdraw("staking", &s.to, "500", &["--unbonding-tx", &s.staking_hex]));
    assert!(err.contains("only used with --from unbonding"), "{err}");
    let err = run(withdraw("staking", &s.to, "500", &["--network", "mainnet"]));
    assert!(err.contains("is a regtest address but --network is bitcoin"), "{err}");

    // Argument errors from clap: also 2.
    let err = cli_fails(&["create-withdraw-tx", "--from", "elsewhere"], 2);
    assert!(err.contains("invalid value 'elsewhere'"), "{err}");
    let err = cli_fails(&["create-unbonding-request", "--staker-key", "x", "--staking-tx", "y", "--params", "z"], 2);
    assert!(err.contains("--height"), "{err}");
    let err = cli_fails(
        &[
            "create-staking-tx",
            "--staker-pk",
            &xonly(STAKER).to_string(),
            "--fp-pk",
            &xonly(FP).to_string(),
            "--staking-time",
            "1",
            "--amount",
            "500000",
            "--params",
            &s.params,
        ],
        2,
    );
    assert!(err.contains("below min_staking_time 2"), "{err}");

    // bitcoind unreachable: exit 1.
    let err = cli_fails(
        &[
            "create-unbonding-request",
            "--staker-key",
            &s.key_file,
            "--staking-tx",
            &s.staking_hex,
            "--params",
            &s.params,
            "--rpc-url",
            &format!("http://127.0.0.1:{}", free_port()),
        ],
        1,
    );
    assert!(err.contains("bitcoind RPC: getrawtransaction"), "{err}");
}
