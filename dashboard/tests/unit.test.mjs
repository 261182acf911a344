// Unit tests of the page's pure modules, the signer and the dev server. No browser and no
// engine needed: `node --test tests/unit.test.mjs`.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';

import { addSample, tvlChartSvg } from '../chart.js';
import { startServer } from '../dev-server.mjs';
import { approxDuration, formatBtc, formatCommission, parseBlocks, parseBtcToSat, parseXonlyPk } from '../format.js';
import { activeVersion, capStatus, messages, nextVersion, validateStake } from '../params.js';
import { DEVNET_UNAVAILABLE, DevnetNodeWalletSigner, Signer, SignerError } from '../signer.js';

// The demo's global-params (demo/global-params.json shape).
const V0 = {
  version: 0, activation_height: 115, staking_cap: 1_000_000_000, cap_height: 0,
  min_staking_amount: 100_000_000, max_staking_amount: 1_000_000_000, min_staking_time: 10, max_staking_time: 1000,
  unbonding_time: 3, unbonding_fee: 500, confirmation_depth: 2, covenant_quorum: 2, covenant_pks: [],
};
const V1 = { ...V0, version: 1, activation_height: 130, staking_cap: 2_000_000_000, min_staking_amount: 200_000_000, max_staking_amount: 2_000_000_000, min_staking_time: 1, max_staking_time: 5000 };
const V2H = { ...V0, version: 2, activation_height: 200, staking_cap: 0, cap_height: 250 };
const VERSIONS = [V1, V0, V2H]; // deliberately unordered
const FP = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';

describe('format', () => {
  it('formats satoshis as BTC exactly', () => {
    assert.equal(formatBtc(2_100_000_000), '21');
    assert.equal(formatBtc(1), '0.00000001');
    assert.equal(formatBtc(123_456_789_012_345), '1,234,567.89012345');
    assert.equal(formatBtc(-50_000_000), '-0.5');
    assert.equal(formatBtc(null), '—');
  });
  it('parses BTC amounts without floating point', () => {
    assert.deepEqual(parseBtcToSat('0.1'), { sat: 10_000_000 });
    assert.deepEqual(parseBtcToSat(' 1.00000001 '), { sat: 100_000_001 });
    assert.deepEqual(parseBtcToSat('.5'), { sat: 50_000_000 });
    assert.match(parseBtcToSat('').error, /Enter an amount/);
    assert.match(parseBtcToSat('1,5').error, /dot/);
    assert.match(parseBtcToSat('1.000000001').error, /8 decimal/);
    assert.match(parseBtcToSat('abc').error, /number/);
    assert.match(parseBtcToSat('0').error, /greater than zero/);
    assert.match(parseBtcToSat('99999999999').error, /larger than all bitcoin/);
  });
  it('parses blocks, keys, commission and durations', () => {
    assert.deepEqual(parseBlocks('1000'), { value: 1000 });
    assert.match(parseBlocks('1.5').error, /whole number/);
    assert.deepEqual(parseXonlyPk(FP.toUpperCase()), { pk: FP });
    assert.match(parseXonlyPk('02' + FP).error, /compressed key/);
    assert.match(parseXonlyPk('abc').error, /64 hex characters/);
    assert.match(parseXonlyPk('xyz').error, /hexadecimal/);
    assert.equal(formatCommission('0.050000000000000000'), '5%');
    assert.equal(formatCommission('0.125'), '12.5%');
    assert.equal(approxDuration(3), '~30 min');
    assert.equal(approxDuration(1000), '~6.9 days');
  });
});

describe('params', () => {
  it('picks the active and the next version by height', () => {
    assert.equal(activeVersion(VERSIONS, 114), null);
    assert.equal(activeVersion(VERSIONS, 115).version, 0);
    assert.equal(activeVersion(VERSIONS, 129).version, 0);
    assert.equal(activeVersion(VERSIONS, 130).version, 1);
    assert.equal(nextVersion(VERSIONS, 129).version, 1);
    assert.equal(nextVersion(VERSIONS, 142).version, 2);
    assert.equal(nextVersion(VERSIONS, 200), null);
  });
  it('computes value and height caps', () => {
    assert.deepEqual(capStatus(V1, 1_000_000_000, 140), { kind: 'value', cap: 2_000_000_000, tvl: 1_000_000_000, fraction: 0.5, reached: false });
    assert.equal(capStatus(V1, 2_000_000_000, 140).reached, true);
    assert.deepEqual(capStatus(V2H, 0, 240), { kind: 'height', capHeight: 250, remaining: 10, reached: false });
    assert.equal(capStatus(V2H, 0, 250).reached, true); // a stake in block 250 counts, 251 overflows: nothing left
  });
  it('validates the stake form against the active version', () => {
    const ctx = { versions: VERSIONS, height: 142, activeTvl: 0 };
    const ok = validateStake({ fpPk: FP, amountBtc: '2', termBlocks: '5000' }, ctx);
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.value, { fpPk: FP, amountSat: 200_000_000, termBlocks: 5000 });

    const below = validateStake({ fpPk: FP, amountBtc: '1.99999999', termBlocks: '10' }, ctx);
    assert.equal(below.fields.amount, messages.belowMin(V1));
    assert.match(below.fields.amount, /below the minimum of 2 BTC/);
    const above = validateStake({ fpPk: FP, amountBtc: '20.00000001', termBlocks: '10' }, ctx);
    assert.match(above.fields.amount, /above the maximum of 20 BTC/);
    const term = validateStake({ fpPk: FP, amountBtc: '3', termBlocks: '5001' }, ctx);
    assert.match(term.fields.term, /between 1 and 5,000 blocks/);
    assert.equal(validateStake({ fpPk: '', amountBtc: '3', termBlocks: '10' }, ctx).fields.fp, messages.noProvider);
    // Before version 1 the version 0 limits apply: 1 BTC is fine there.
    assert.equal(validateStake({ fpPk: FP, amountBtc: '1', termBlocks: '10' }, { ...ctx, height: 120 }).ok, true);
  });
  it('refuses when the cap is reached, and explains missing params', () => {
    const full = validateStake({ fpPk: FP, amountBtc: '3', termBlocks: '10' }, { versions: VERSIONS, height: 142, activeTvl: 2_100_000_000 });
    assert.equal(full.ok, false);
    assert.match(full.form[0], /^Staking cap reached: active TVL is 21 BTC and the cap is 20 BTC/);
    const closed = validateStake({ fpPk: FP, amountBtc: '3', termBlocks: '10' }, { versions: VERSIONS, height: 251, activeTvl: 0 });
    assert.match(closed.form[0], /closed at height 250/);
    assert.deepEqual(validateStake({}, { versions: null, height: 1 }).form, [messages.noParams]);
    assert.match(validateStake({}, { versions: VERSIONS, height: 100 }).form[0], /has not started/);
    const soon = validateStake({ fpPk: FP, amountBtc: '3', termBlocks: '10' }, { versions: VERSIONS, height: 195, activeTvl: 0 });
    assert.equal(soon.ok, true);
    assert.match(soon.warnings[0], /version 2 activates in 5 blocks/);
  });
});

describe('chart', () => {
  it('keeps one sample per height, bounded', () => {
    let s = [];
    for (const h of [3, 1, 2, 2]) s = addSample(s, { height: h, active: h, total: h }, 2);
    assert.deepEqual(s.map((x) => x.height), [2, 3]);
  });
  it('explains until two heights are seen, then draws lines and the cap', () => {
    assert.match(tvlChartSvg([]), /Collecting samples/);
    assert.match(tvlChartSvg([{ height: 5, active: 1, total: 1 }]), /1 so far, at height 5/);
    const svg = tvlChartSvg(
      [
        { height: 100, active: 0, total: 0 },
        { height: 110, active: 1_000_000_000, total: 1_500_000_000 },
      ],
      { cap: 2_000_000_000 },
    );
    assert.match(svg, /^<svg class="chart"/);
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    assert.match(svg, /cap 20 BTC/);
    assert.doesNotMatch(svg, /NaN|Infinity/);
  });
});

describe('signer', () => {
  const fakeFetch = (status, body) => async (url, init) => {
    fakeFetch.last = { url, init };
    return new Response(body === undefined ? '' : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
  const req = { fpPk: FP, amountSat: 200_000_000, termBlocks: 1000 };

  it('the base class refuses everything', async () => {
    await assert.rejects(new Signer().stake(req), (e) => e instanceof SignerError && e.code === 'not_implemented');
  });
  it('devnet signer: a 404 is "not available", never a fake success', async () => {
    const s = new DevnetNodeWalletSigner({ fetchImpl: fakeFetch(404, { errorCode: 'NOT_FOUND', message: 'no such route' }) });
    await assert.rejects(s.stake(req), (e) => e.code === 'unavailable' && e.message === DEVNET_UNAVAILABLE);
    await assert.rejects(s.signUnbonding('aa'.repeat(32)), (e) => e.code === 'unavailable');
    await assert.rejects(s.withdraw('aa'.repeat(32)), (e) => e.code === 'unavailable');
    assert.deepEqual(await s.info(), { available: false, reason: DEVNET_UNAVAILABLE });
  });
  it('devnet signer: posts the contract body and returns the hash it gets', async () => {
    const hash = 'ab'.repeat(32);
    const f = fakeFetch(200, { data: { staking_tx_hash_hex: hash } });
    const s = new DevnetNodeWalletSigner({ fetchImpl: f });
    assert.deepEqual(await s.stake(req), { stakingTxHashHex: hash });
    assert.equal(fakeFetch.last.url, '/devnet/stake');
    assert.equal(fakeFetch.last.init.method, 'POST');
    assert.deepEqual(JSON.parse(fakeFetch.last.init.body), { finality_provider_pk_hex: FP, staking_value: 200_000_000, staking_time: 1000 });
  });
  it('devnet signer: the unbonding request is returned for the page to post, exactly its four fields', async () => {
    const staking = 'ab'.repeat(32);
    const request = {
      staking_tx_hash_hex: staking,
      unbonding_tx_hex: '02000000' + '00'.repeat(40),
      unbonding_tx_hash_hex: 'cd'.repeat(32),
      staker_signed_signature_hex: 'ef'.repeat(64),
    };
    const s = new DevnetNodeWalletSigner({ fetchImpl: fakeFetch(200, { data: { ...request, extra: 1 } }) });
    assert.deepEqual(await s.signUnbonding(staking), request);
    assert.equal(fakeFetch.last.url, '/devnet/unbonding-request');
    assert.deepEqual(JSON.parse(fakeFetch.last.init.body), { staking_tx_hash_hex: staking });
    // For another stake, or with a short signature: never posted.
    await assert.rejects(s.signUnbonding('12'.repeat(32)), (e) => e.code === 'bad_answer');
    const short = new DevnetNodeWalletSigner({ fetchImpl: fakeFetch(200, { data: { ...request, staker_signed_signature_hex: 'ef' } }) });
    await assert.rejects(short.signUnbonding(staking), (e) => e.code === 'bad_answer');
  });
  it('devnet signer: wallet info needs a staker key', async () => {
    const good = new DevnetNodeWalletSigner({
      fetchImpl: fakeFetch(200, { data: { wallet: 'staker', staker_pk_hex: FP, address: 'bcrt1q', balance_sat: 5 } }),
    });
    assert.deepEqual(await good.info(), { available: true, wallet: 'staker', stakerPkHex: FP, address: 'bcrt1q', balanceSat: 5 });
    const bad = new DevnetNodeWalletSigner({ fetchImpl: fakeFetch(200, { data: { staker_pk_hex: 'xyz' } }) });
    assert.equal((await bad.info()).available, false);
  });
  it('devnet signer: refusals, bad answers, bad arguments, network errors', async () => {
    const refused = new DevnetNodeWalletSigner({ fetchImpl: fakeFetch(400, { errorCode: 'BAD_REQUEST', message: 'insufficient funds' }) });
    await assert.rejects(refused.stake(req), (e) => e.code === 'rejected' && e.message === 'insufficient funds');
    const empty = new DevnetNodeWalletSigner({ fetchImpl: fakeFetch(200, { data: {} }) });
    await assert.rejects(empty.stake(req), (e) => e.code === 'bad_answer');
    await assert.rejects(empty.stake({ ...req, amountSat: 0.5 }), (e) => e.code === 'invalid_argument');
    await assert.rejects(empty.signUnbonding('xyz'), (e) => e.code === 'invalid_argument');
    await assert.rejects(empty.signUnbonding('ab'.repeat(32)), (e) => e.code === 'bad_answer');
    const down = new DevnetNodeWalletSigner({ fetchImpl: async () => { throw new TypeError('fetch failed'); } });
    await assert.rejects(down.stake(req), (e) => e.code === 'network');
  });
});

describe('dev server', () => {
  it('serves the page, hides private files, proxies the API and reports a dead engine as 502', async () => {
    const engine = createServer((q, r) => {
      r.writeHead(200, { 'content-type': 'application/json' });
      r.end(JSON.stringify({ data: { path: q.url } }));
    });
    await new Promise((ok) => engine.listen(0, '127.0.0.1', ok));
    const api = `http://127.0.0.1:${engine.address().port}`;
    const server = await startServer({ api, port: 0 });
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      const page = await fetch(`${base}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type'), /text\/html/);
      assert.equal((await fetch(`${base}/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
      for (const p of ['/package.json', '/dev-server.mjs', '/tests/unit.test.mjs', '/node_modules/x.js', '/%2e%2e/Cargo.toml']) {
        assert.equal((await fetch(`${base}${p}`)).status, 404, p);
      }
      assert.deepEqual(await (await fetch(`${base}/v1/stats?x=1`)).json(), { data: { path: '/v1/stats?x=1' } });
      assert.deepEqual(await (await fetch(`${base}/status/phase1-staking`)).json(), { data: { path: '/status/phase1-staking' } });
    } finally {
      await new Promise((ok) => engine.close(ok));
    }
    try {
      const dead = await fetch(`${base}/v1/stats`);
      assert.equal(dead.status, 502);
      assert.equal((await dead.json()).errorCode, 'BAD_GATEWAY');
    } finally {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    }
  });
});
