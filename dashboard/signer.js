// The signer interface: whatever builds, signs and broadcasts the staker's transactions.
//
// The dashboard never builds or fakes a transaction itself: it validates the form, then hands the
// request to a Signer and shows what the Signer returns (a real transaction hash) or its error.
// Unbonding is split the way Phase-1 splits it: the signer returns the staker-signed request and
// the page posts it to the staking API (`POST /v1/unbonding`); the covenant committee co-signs.
//
//   class Signer {
//     get name(): string                                   shown next to the form
//     async info(): {available, reason?, stakerPkHex?, address?, balanceSat?}
//     async stake({fpPk, amountSat, termBlocks}): {stakingTxHashHex}
//     async signUnbonding(stakingTxHash): {staking_tx_hash_hex, unbonding_tx_hex,
//                                          unbonding_tx_hash_hex, staker_signed_signature_hex}
//     async withdraw(stakingTxHash): {withdrawTxHashHex}
//   }
//
// Every method rejects with a SignerError (code: 'unavailable' | 'rejected' | 'network' |
// 'bad_answer' | 'invalid_argument' | 'not_implemented'). Implementations:
// - DevnetNodeWalletSigner (below): the devnet node's wallet, through the engine's /devnet/
//   endpoints (`[devnet]` in the runtime file; a server without them answers 404, and every call
//   then fails with 'unavailable').
// - a browser wallet (mainnet) implements the same class with the wallet's own API: build with
//   btc-staking-ts, sign the PSBTs in the wallet, broadcast through a node or a mempool API.

export const DEVNET_UNAVAILABLE = 'devnet signing is not available on this server';

export class SignerError extends Error {
  constructor(code, message, { status = null } = {}) {
    super(message);
    this.name = 'SignerError';
    this.code = code;
    this.status = status;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Argument checks shared by every signer: a signer never receives what the form would refuse. */
export function checkStakeArgs({ fpPk, amountSat, termBlocks } = {}) {
  if (typeof fpPk !== 'string' || !HEX64.test(fpPk)) {
    throw new SignerError('invalid_argument', 'finality provider key must be 64 lower-case hex characters');
  }
  if (!Number.isSafeInteger(amountSat) || amountSat <= 0) {
    throw new SignerError('invalid_argument', 'amount must be a positive whole number of satoshis');
  }
  if (!Number.isInteger(termBlocks) || termBlocks < 1 || termBlocks > 65535) {
    throw new SignerError('invalid_argument', 'term must be a whole number of blocks between 1 and 65535');
  }
}

function checkTxHash(hash) {
  if (typeof hash !== 'string' || !HEX64.test(hash)) {
    throw new SignerError('invalid_argument', 'transaction hash must be 64 lower-case hex characters');
  }
}

/**
 * The staker-signed unbonding request as `POST /v1/unbonding` takes it: exactly its four fields,
 * for the stake asked about. Anything else is a 'bad_answer', never posted.
 */
export function checkUnbondingRequest(d, stakingTxHash) {
  const hex = (v, len) => typeof v === 'string' && /^[0-9a-f]+$/.test(v) && (len === undefined || v.length === len);
  const ok =
    d &&
    d.staking_tx_hash_hex === stakingTxHash &&
    hex(d.unbonding_tx_hex) &&
    d.unbonding_tx_hex.length % 2 === 0 &&
    hex(d.unbonding_tx_hash_hex, 64) &&
    hex(d.staker_signed_signature_hex, 128);
  if (!ok) throw new SignerError('bad_answer', 'the signer answered without a complete unbonding request for this stake');
  const { staking_tx_hash_hex, unbonding_tx_hex, unbonding_tx_hash_hex, staker_signed_signature_hex } = d;
  return { staking_tx_hash_hex, unbonding_tx_hex, unbonding_tx_hash_hex, staker_signed_signature_hex };
}

/** The interface, with every action refused: subclasses override what they support. */
export class Signer {
  get name() {
    return 'no signer';
  }
  async info() {
    return { available: false, reason: 'no signer is configured' };
  }
  async stake(_req) {
    throw new SignerError('not_implemented', `${this.name} cannot stake`);
  }
  async signUnbonding(_stakingTxHash) {
    throw new SignerError('not_implemented', `${this.name} cannot sign an unbonding request`);
  }
  async withdraw(_stakingTxHash) {
    throw new SignerError('not_implemented', `${this.name} cannot withdraw`);
  }
}

/**
 * Signs with the devnet node's wallet, through the engine (devnet mode only). The contract the
 * engine is expected to serve (errors as the API's {errorCode, message}):
 *
 *   GET  /devnet/wallet    -> {"data": {"wallet", "staker_pk_hex", "address", "balance_sat"}}
 *   POST /devnet/stake     {"finality_provider_pk_hex", "staking_value", "staking_time"}
 *                          -> {"data": {"staking_tx_hash_hex", "params_version"}}
 *   POST /devnet/unbonding-request {"staking_tx_hash_hex"}
 *                          -> {"data": the POST /v1/unbonding body, signed by the wallet}
 *   POST /devnet/withdraw  {"staking_tx_hash_hex"} -> {"data": {"withdraw_tx_hash_hex", "from", "address"}}
 *
 * A 404 means the server has no devnet signing: the caller gets
 * SignerError('unavailable', DEVNET_UNAVAILABLE), never a made-up result.
 */
export class DevnetNodeWalletSigner extends Signer {
  constructor({ base = '/devnet', fetchImpl = (...a) => globalThis.fetch(...a), timeoutMs = 30000 } = {}) {
    super();
    this.base = base.replace(/\/$/, '');
    this.fetch = fetchImpl;
    this.timeoutMs = timeoutMs;
  }

  get name() {
    return 'Devnet node wallet';
  }

  async #call(method, path, body) {
    let res;
    try {
      res = await this.fetch(`${this.base}${path}`, {
        method,
        headers: body ? { 'content-type': 'application/json', accept: 'application/json' } : { accept: 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch {
      throw new SignerError('network', 'cannot reach the server to sign: is the engine running?');
    }
    if (res.status === 404 || res.status === 405 || res.status === 501) {
      throw new SignerError('unavailable', DEVNET_UNAVAILABLE, { status: res.status });
    }
    let json = null;
    try {
      json = await res.json();
    } catch {
      json = null;
    }
    if (!res.ok) {
      throw new SignerError('rejected', json?.message ?? `the devnet wallet refused (HTTP ${res.status})`, {
        status: res.status,
      });
    }
    return json?.data;
  }

  /** Requires `field` to be a 64-hex transaction hash in the answer: no hash, no success. */
  static #hash(data, field) {
    const h = data?.[field];
    if (typeof h !== 'string' || !/^[0-9a-fA-F]{64}$/.test(h)) {
      throw new SignerError('bad_answer', `the devnet wallet answered without a valid ${field}`);
    }
    return h.toLowerCase();
  }

  async info() {
    try {
      const d = await this.#call('GET', '/wallet');
      if (typeof d?.staker_pk_hex !== 'string' || !HEX64.test(d.staker_pk_hex)) {
        return { available: false, reason: 'the devnet wallet answered without a staker key' };
      }
      return {
        available: true,
        wallet: d.wallet,
        stakerPkHex: d.staker_pk_hex,
        address: d.address,
        balanceSat: d.balance_sat,
      };
    } catch (e) {
      if (e instanceof SignerError) return { available: false, reason: e.message };
      throw e;
    }
  }

  async stake(req) {
    checkStakeArgs(req);
    const d = await this.#call('POST', '/stake', {
      finality_provider_pk_hex: req.fpPk,
      staking_value: req.amountSat,
      staking_time: req.termBlocks,
    });
    return { stakingTxHashHex: DevnetNodeWalletSigner.#hash(d, 'staking_tx_hash_hex') };
  }

  async signUnbonding(stakingTxHash) {
    checkTxHash(stakingTxHash);
    const d = await this.#call('POST', '/unbonding-request', { staking_tx_hash_hex: stakingTxHash });
    return checkUnbondingRequest(d, stakingTxHash);
  }

  async withdraw(stakingTxHash) {
    checkTxHash(stakingTxHash);
    const d = await this.#call('POST', '/withdraw', { staking_tx_hash_hex: stakingTxHash });
    return { withdrawTxHashHex: DevnetNodeWalletSigner.#hash(d, 'withdraw_tx_hash_hex') };
  }
}
