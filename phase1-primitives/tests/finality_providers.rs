//! Finality-provider files: the API format (both `eots_pk` and `btc_pk` variants), single registry
//! entries, and the validation errors.

mod common;

use common::*;
use phase1_primitives::finality_providers::parse_finality_providers;

#[test]
fn api_format_files_parse() {
    for (rel, min) in [
        ("networks-bbn-1/finality-providers-api-format.json", 200),
        ("networks-bbn-test-4/finality-providers-api-format.json", 200),
        ("staking-api-service/v0.2.12/config_finality-providers.json", 4),
        ("staking-api-service/v0.3.8/config_finality-providers.json", 4),
        ("staking-api-service/v0.2.12/tests_config_finality-providers-test.json", 4),
        ("staking-api-service/v0.3.8/tests_config_finality-providers-test.json", 4),
        ("staking-api-service/e2e-HEAD/testdata/finality-providers.json", 4),
    ] {
        let Some(text) = common::read_text(rel) else { continue };
        let fps = parse_finality_providers(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(fps.len() >= min, "{rel}: {} entries", fps.len());
        let src: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (fp, raw) in fps.iter().zip(src["finality_providers"].as_array().unwrap()) {
            assert_eq!(fp.btc_pk.len(), 64);
            assert!(fp.xonly_pk().is_some());
            let key = raw.get("eots_pk").filter(|v| v.as_str() != Some("")).unwrap_or(&raw["btc_pk"]);
            assert_eq!(fp.btc_pk, key.as_str().unwrap().to_ascii_lowercase(), "{rel}");
            assert_eq!(fp.commission, str_of(raw, "commission"));
            assert_eq!(fp.description.moniker, raw["description"]["moniker"].as_str().unwrap());
        }
    }
}

#[test]
fn registry_entries_parse() {
    let mut n = 0;
    for rel in [
        "networks-bbn-1/finality-providers/01node.json",
        "networks-bbn-1/finality-providers/Figment.json",
        "networks-bbn-1/finality-providers/Cosmostation.json",
        "networks-bbn-1/finality-providers/Allnodes.json",
        "networks-bbn-test-4/finality-providers/007dba.json",
    ] {
        let Some(text) = common::read_text(rel) else { continue };
        let fps = parse_finality_providers(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(fps.len(), 1, "{rel}");
        n += 1;
    }
    // Every mainnet registry file, and the derived API file holds the same entries.
    let dir = data_path("networks-bbn-1/finality-providers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIP: {} not found", dir.display());
        return;
    };
    let mut all = Vec::new();
    for e in entries {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let mut fps = parse_finality_providers(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        all.append(&mut fps);
    }
    assert_eq!(all.len(), 213);
    if let Some(text) = common::read_text("networks-bbn-1/finality-providers-api-format.json") {
        let mut api = parse_finality_providers(&text).unwrap();
        api.sort_by(|a, b| a.btc_pk.cmp(&b.btc_pk));
        all.sort_by(|a, b| a.btc_pk.cmp(&b.btc_pk));
        assert_eq!(api, all);
    }
    assert!(n > 0);
}

fn entry(pk: &str, commission: &str) -> String {
    format!(
        r#"{{"description":{{"moniker":"m-{c}","identity":"","website":"","security_contact":"","details":""}},"commission":"{commission}","eots_pk":"{pk}"}}"#,
        c = &pk[..4.min(pk.len())]
    )
}

#[test]
fn bad_entries_are_named() {
    let good = "4209feea09cd799cae01a0dfc94a2791cf1701e5e5430ec490b169afdb1cc220";
    let other = "be269d18c63f87af05b6311ed4ecc31bc3ca974b18d7f008cf717a710653c7c4";
    let api = |entries: &[String]| format!(r#"{{"finality_providers":[{}]}}"#, entries.join(","));
    assert_eq!(parse_finality_providers(&api(&[entry(good, "0.05"), entry(other, "1.00")])).unwrap().len(), 2);
    // btc_pk fallback when eots_pk is empty
    let fallback = format!(
        r#"{{"finality_providers":[{{"description":{{}},"commission":"0.1","eots_pk":"","btc_pk":"{good}"}}]}}"#
    );
    assert_eq!(parse_finality_providers(&fallback).unwrap()[0].btc_pk, good);
    let cases = [
        ("short key", api(&[entry(good, "0.05"), entry(&good[..62], "0.05")]), "64 hex"),
        ("not a point", api(&[entry(&"ff".repeat(32), "0.05")]), "not a valid x-only"),
        ("commission > 1", api(&[entry(good, "1.5")]), "outside [0, 1]"),
        ("commission not decimal", api(&[entry(good, "5%")]), "not a decimal"),
        ("duplicate key", api(&[entry(good, "0.05"), entry(other, "0.05"), entry(good, "0.1")]), "already used"),
        ("no key", r#"{"finality_providers":[{"description":{},"commission":"0.1"}]}"#.into(), "neither"),
        ("missing commission", format!(r#"{{"description":{{}},"eots_pk":"{good}"}}"#), "missing \"commission\""),
        ("not JSON", "[".into(), "not valid JSON"),
    ];
    for (name, json, needle) in cases {
        let e = parse_finality_providers(&json).expect_err(name);
        eprintln!("{name:>22}: {e}");
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
    let e = parse_finality_providers(&api(&[entry(good, "0.05"), entry(other, "7")])).unwrap_err();
    assert_eq!(e.index(), Some(1));
    assert!(e.to_string().starts_with("finality_providers[1] (moniker \"m-be26\")"), "{e}");
}
