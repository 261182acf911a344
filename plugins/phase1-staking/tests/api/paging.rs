//! Pagination: every row exactly once, in the legacy order, with ties in the sort key (equal
//! start heights, equal active TVL — the staking-api-service#97 case) and with a state filter.

use guest_sdk::testing::TestHost;
use phase1_staking::state::{Hash32, State};
use serde_json::Value;

use crate::support::{self, assert_error, body};

/// Follows `next_key` from `first` to the last page; returns the pages' `data`.
fn all_pages(h: &mut TestHost, first: &str) -> Vec<Vec<Value>> {
    let sep = if first.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    let mut target = first.to_string();
    loop {
        let r = support::get(h, &target);
        assert_eq!(r.status, 200, "{target}: {}", r.text_body());
        let b = body(&r);
        pages.push(b["data"].as_array().cloned().unwrap_or_default());
        let next = b["pagination"]["next_key"].as_str().expect("paginated").to_string();
        if next.is_empty() {
            return pages;
        }
        assert!(pages.len() < 100, "paging does not end");
        target = format!("{first}{sep}pagination_key={next}");
    }
}

const STAKER: u32 = 1;
const FP: u32 = 2;

/// 25 delegations of one staker, start heights 200..206 (four or so per height); every third
/// one unbonded.
fn seed_staker(h: &mut TestHost) -> Vec<(u32, Hash32)> {
    let mut rows = Vec::new();
    for i in 0..25u32 {
        let txid = support::txid(i);
        let height = 200 + i / 4;
        let st = if i % 3 == 0 { State::Unbonded } else { State::Active };
        let d = support::delegation(&txid, &support::pk(STAKER), &support::pk(FP), 150_000, height, 1_700_000_000, st);
        support::put_delegation(h, &txid, &d);
        rows.push((height, txid));
    }
    // Legacy order: start height descending, then hash (display hex) ascending.
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| support::display(&a.1).cmp(&support::display(&b.1))));
    rows
}

#[test]
fn staker_delegations_pages_cover_every_row_once_in_order() {
    let mut h = support::host(&[]);
    let rows = seed_staker(&mut h);
    let pages = all_pages(&mut h, &format!("/v1/staker/delegations?staker_btc_pk={}", support::pk_hex(STAKER)));
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
    let got: Vec<String> =
        pages.concat().iter().map(|d| d["staking_tx_hash_hex"].as_str().unwrap().to_string()).collect();
    let want: Vec<String> = rows.iter().map(|(_, t)| support::display(t)).collect();
    assert_eq!(got, want);
}

#[test]
fn staker_delegations_state_filter_pages_correctly() {
    let mut h = support::host(&[]);
    let rows = seed_staker(&mut h);
    for (filter, keep) in [("active", State::Active), ("unbonded", State::Unbonded)] {
        let pages = all_pages(
            &mut h,
            &format!("/v1/staker/delegations?staker_btc_pk={}&state={filter}", support::pk_hex(STAKER)),
        );
        let got: Vec<String> =
            pages.concat().iter().map(|d| d["staking_tx_hash_hex"].as_str().unwrap().to_string()).collect();
        let want: Vec<String> = rows
            .iter()
            .filter(|(_, t)| {
                let seed = (0..25).find(|i| support::txid(*i) == *t).unwrap();
                (if seed % 3 == 0 { State::Unbonded } else { State::Active }) == keep
            })
            .map(|(_, t)| support::display(t))
            .collect();
        assert_eq!(got, want, "state={filter}");
        assert!(pages.iter().all(|p| p.iter().all(|d| d["state"] == filter)));
        assert!(pages[..pages.len() - 1].iter().all(|p| p.len() == 10), "filtered pages are full");
    }
    // A state nobody is in: one empty page.
    let r = support::get(
        &mut h,
        &format!("/v1/staker/delegations?staker_btc_pk={}&state=withdrawn", support::pk_hex(STAKER)),
    );
    assert_eq!(body(&r), serde_json::json!({ "data": [], "pagination": { "next_key": "" } }));
    let r = support::get(
        &mut h,
        &format!("/v1/staker/delegations?staker_btc_pk={}&state=slashed", support::pk_hex(STAKER)),
    );
    assert_error(&r, 400, "BAD_REQUEST", "invalid delegation state: slashed");
}

#[test]
fn malformed_pagination_keys_are_rejected() {
    let mut h = support::host(&[]);
    seed_staker(&mut h);
    let base = format!("/v1/staker/delegations?staker_btc_pk={}", support::pk_hex(STAKER));
    for bad in ["invalid", "abc", "ab-_", "%3D%3D%3D%3D"] {
        let r = support::get(&mut h, &format!("{base}&pagination_key={bad}"));
        assert_error(&r, 400, "BAD_REQUEST", "invalid pagination key format");
    }
    // Well-formed base64, but not a token.
    for bad in ["AAAA", "eyJzdGFraW5nX3R4X2hhc2hfaGV4IjoxfQ=="] {
        let r = support::get(&mut h, &format!("{base}&pagination_key={bad}"));
        assert_error(&r, 400, "BAD_REQUEST", "Invalid pagination token");
    }
    for path in ["/v1/finality-providers", "/v1/stats/staker"] {
        assert_error(
            &support::get(&mut h, &format!("{path}?pagination_key=invalid")),
            400,
            "BAD_REQUEST",
            "invalid pagination key format",
        );
        assert_error(
            &support::get(&mut h, &format!("{path}?pagination_key=AAAA")),
            400,
            "BAD_REQUEST",
            "Invalid pagination token",
        );
    }
}

/// Active TVL of the i-th ranked row: only three distinct values, so most rows tie.
fn tied_tvl(i: u32) -> u64 {
    [5_000_000, 3_000_000, 1_000_000][(i % 3) as usize]
}

/// The legacy order of a ranking: active TVL descending, then (the tiebreak) public key
/// descending.
fn ranking_order(seeds: &[u32]) -> Vec<String> {
    let mut rows: Vec<(u64, String)> = seeds.iter().map(|s| (tied_tvl(*s), support::pk_hex(*s))).collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    rows.into_iter().map(|(_, pk)| pk).collect()
}

#[test]
fn finality_provider_pages_with_tied_tvl_have_no_skip_or_duplicate() {
    let ranked: Vec<u32> = (100..125).collect();
    let registered_only = [300, 301, 302];
    let registered: Vec<u32> = ranked.iter().take(5).copied().chain(registered_only).collect();
    let mut h = support::host(&registered);
    for s in &ranked {
        support::put_fp_stats(&mut h, support::pk(*s), support::stats(tied_tvl(*s), tied_tvl(*s) * 2, 3, 4));
    }
    let pages = all_pages(&mut h, "/v1/finality-providers");
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5 + 3]);
    let rows = pages.concat();
    let got: Vec<String> = rows.iter().map(|r| r["btc_pk"].as_str().unwrap().to_string()).collect();
    let mut want = ranking_order(&ranked);
    let mut unranked: Vec<String> = registered_only.iter().map(|s| support::pk_hex(*s)).collect();
    unranked.sort();
    want.extend(unranked);
    assert_eq!(got, want);
    for r in &rows {
        let seed = (0..400).find(|s| support::pk_hex(*s) == r["btc_pk"]).unwrap();
        if registered.contains(&seed) {
            assert_eq!(r["description"]["moniker"], format!("FP {seed}"));
            assert_eq!(r["commission"], "0.050000000000000000");
        } else {
            assert_eq!(
                r["description"],
                serde_json::json!({"moniker":"","identity":"","website":"","security_contact":"","details":""})
            );
            assert_eq!(r["commission"], "");
        }
        if registered_only.contains(&seed) {
            assert_eq!((r["active_tvl"].as_u64(), r["total_delegations"].as_u64()), (Some(0), Some(0)));
        }
    }
}

#[test]
fn staker_ranking_pages_with_tied_tvl_have_no_skip_or_duplicate() {
    let mut h = support::host(&[]);
    let seeds: Vec<u32> = (500..525).collect();
    for s in &seeds {
        support::put_staker_stats(&mut h, support::pk(*s), support::stats(tied_tvl(*s), tied_tvl(*s), 1, 2));
    }
    let pages = all_pages(&mut h, "/v1/stats/staker");
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
    let got: Vec<String> = pages.concat().iter().map(|r| r["staker_pk_hex"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, ranking_order(&seeds));
    let first = &pages[0][0];
    assert_eq!(
        first.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>(),
        ["active_delegations", "active_tvl", "staker_pk_hex", "total_delegations", "total_tvl"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn exact_page_size_ends_with_an_empty_next_key() {
    let mut h = support::host(&[]);
    for s in 0..10u32 {
        support::put_staker_stats(&mut h, support::pk(600 + s), support::stats(1_000 + u64::from(s), 1_000, 1, 1));
    }
    let r = support::get(&mut h, "/v1/stats/staker");
    let b = body(&r);
    assert_eq!(b["data"].as_array().unwrap().len(), 10);
    assert_eq!(b["pagination"]["next_key"], "");
}

#[test]
fn ranking_token_is_the_legacy_json() {
    let mut h = support::host_with(&[], 2, false);
    for s in 0..3u32 {
        support::put_staker_stats(&mut h, support::pk(700 + s), support::stats(10, 10, 1, 1));
    }
    let r = support::get(&mut h, "/v1/stats/staker");
    let b = body(&r);
    let key = b["pagination"]["next_key"].as_str().unwrap();
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE.decode(key).unwrap();
    let last = b["data"][1]["staker_pk_hex"].as_str().unwrap();
    assert_eq!(String::from_utf8(json).unwrap(), format!("{{\"staker_pk_hex\":\"{last}\",\"active_tvl\":10}}"));
}
