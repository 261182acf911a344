// Global parameters: which version is active at a height, the cap, and the stake form's
// validation. Pure functions (no DOM): the page and Node's unit tests both import them.
//
// Rules mirror the indexer (phase1-primitives `GlobalParams::for_height`,
// `validate_staking_amount_time`): the active version is the last one whose activation_height
// is <= the height; amounts and terms are checked inclusively against min/max.

import { btc, formatInt, parseBtcToSat, parseBlocks } from './format.js';

const byActivation = (versions) => [...(versions ?? [])].sort((a, b) => a.activation_height - b.activation_height);

/** The version in force at `height` (null before the first activation or when unknown). */
export function activeVersion(versions, height) {
  if (height === null || height === undefined) return null;
  let found = null;
  for (const v of byActivation(versions)) if (v.activation_height <= height) found = v;
  return found;
}

/** The first version activating after `height` (null when none is scheduled). */
export function nextVersion(versions, height) {
  if (height === null || height === undefined) return null;
  return byActivation(versions).find((v) => v.activation_height > height) ?? null;
}

/**
 * The cap of version `v`:
 * - value cap (staking_cap > 0): {kind: 'value', cap, tvl, fraction, reached}
 * - height cap (cap_height > 0): {kind: 'height', capHeight, remaining, reached}
 *   (the indexer marks a stake overflow when its block height > cap_height, so blocks up to and
 *   including cap_height still count: remaining = cap_height - height).
 */
export function capStatus(v, activeTvl, height) {
  if (!v) return null;
  if (v.cap_height > 0) {
    const remaining = height === null || height === undefined ? null : v.cap_height - height;
    return { kind: 'height', capHeight: v.cap_height, remaining, reached: remaining !== null && remaining <= 0 };
  }
  if (v.staking_cap > 0) {
    const tvl = activeTvl ?? 0;
    return { kind: 'value', cap: v.staking_cap, tvl, fraction: tvl / v.staking_cap, reached: tvl >= v.staking_cap };
  }
  return { kind: 'none' };
}

/** The messages the stake form shows (exported so tests check the exact wording). */
export const messages = {
  noParams: 'Staking parameters are not loaded yet: the API has not answered. Try again in a moment.',
  notStarted: (v) =>
    `Staking has not started: parameters version ${v.version} activates at height ${formatInt(v.activation_height)}.`,
  noProvider: 'Choose a finality provider.',
  belowMin: (v) => `Amount is below the minimum of ${btc(v.min_staking_amount)} (parameters version ${v.version}).`,
  aboveMax: (v) => `Amount is above the maximum of ${btc(v.max_staking_amount)} (parameters version ${v.version}).`,
  termRange: (v) =>
    `Term out of range: it must be between ${formatInt(v.min_staking_time)} and ${formatInt(v.max_staking_time)} blocks (parameters version ${v.version}).`,
  capValue: (c) =>
    `Staking cap reached: active TVL is ${btc(c.tvl)} and the cap is ${btc(c.cap)}. A stake sent now would be marked overflow and would not count towards the TVL.`,
  capHeight: (c, v) =>
    `Staking cap reached: the staking window of parameters version ${v.version} closed at height ${formatInt(c.capHeight)}. A stake sent now would be marked overflow.`,
  nextSoon: (n, blocks) =>
    `Parameters version ${n.version} activates in ${formatInt(blocks)} block${blocks === 1 ? '' : 's'}: a stake confirmed from height ${formatInt(n.activation_height)} on is checked against that version's limits instead.`,
};

/** u16 on the wire (the OP_RETURN's staking_time). */
const MAX_TERM_ON_WIRE = 65535;

/**
 * Validates the stake form against the ACTIVE params (the version in force at the indexed tip).
 *
 * input: {fpPk, amountBtc (text), termBlocks (text)}
 * ctx:   {versions, height, activeTvl}
 * Returns {ok, fields: {fp?, amount?, term?}, form: [blocking messages], warnings: [...], value?}
 * where value = {fpPk, amountSat, termBlocks} when ok.
 */
export function validateStake(input, ctx) {
  const fields = {};
  const form = [];
  const warnings = [];
  const versions = ctx?.versions;
  if (!versions || versions.length === 0 || ctx.height === null || ctx.height === undefined) {
    return { ok: false, fields, form: [messages.noParams], warnings };
  }
  const v = activeVersion(versions, ctx.height);
  if (!v) {
    return { ok: false, fields, form: [messages.notStarted(byActivation(versions)[0])], warnings };
  }

  if (!input.fpPk) fields.fp = messages.noProvider;

  const amount = parseBtcToSat(input.amountBtc);
  if (amount.error) fields.amount = amount.error;
  else if (amount.sat < v.min_staking_amount) fields.amount = messages.belowMin(v);
  else if (amount.sat > v.max_staking_amount) fields.amount = messages.aboveMax(v);

  const term = parseBlocks(input.termBlocks);
  if (term.error) fields.term = term.error;
  else if (term.value < v.min_staking_time || term.value > Math.min(v.max_staking_time, MAX_TERM_ON_WIRE)) {
    fields.term = messages.termRange(v);
  }

  const cap = capStatus(v, ctx.activeTvl, ctx.height);
  if (cap?.reached) form.push(cap.kind === 'height' ? messages.capHeight(cap, v) : messages.capValue(cap));

  const next = nextVersion(versions, ctx.height);
  if (next && next.activation_height - ctx.height <= 10) {
    warnings.push(messages.nextSoon(next, next.activation_height - ctx.height));
  }

  const ok = Object.keys(fields).length === 0 && form.length === 0;
  return {
    ok,
    fields,
    form,
    warnings,
    version: v,
    value: ok ? { fpPk: input.fpPk, amountSat: amount.sat, termBlocks: term.value } : undefined,
  };
}
