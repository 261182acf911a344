// Formatting and parsing helpers. Pure functions (no DOM), so Node's test runner can import
// them as well as the page.

export const SAT_PER_BTC = 100_000_000;

const group = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** An integer with thousands separators ("1,234,567"); "—" for null/undefined. */
export function formatInt(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  const sign = n < 0 ? '-' : '';
  return sign + group(String(Math.trunc(Math.abs(n))));
}

/**
 * Satoshis as BTC without floating-point rounding: "21", "0.5", "1,234.00000001".
 * Negative values keep their sign (the legacy pending_tvl can be a wrapped u64, shown as is).
 */
export function formatBtc(sat) {
  if (sat === null || sat === undefined || Number.isNaN(sat)) return '—';
  const big = BigInt(Math.trunc(sat));
  const neg = big < 0n;
  const abs = neg ? -big : big;
  const whole = abs / 100_000_000n;
  const frac = (abs % 100_000_000n).toString().padStart(8, '0').replace(/0+$/, '');
  return (neg ? '-' : '') + group(whole.toString()) + (frac ? '.' + frac : '');
}

/** "21 BTC". */
export const btc = (sat) => `${formatBtc(sat)} BTC`;

/**
 * Parses an amount typed in BTC into satoshis, exactly (no floats).
 * Returns {sat} or {error} with a message a newcomer understands.
 */
export function parseBtcToSat(text) {
  const s = String(text ?? '').trim();
  if (s === '') return { error: 'Enter an amount in BTC, for example 0.5.' };
  if (s.includes(',')) return { error: 'Use a dot as the decimal separator, for example 0.5 (no commas).' };
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) return { error: 'The amount must be a number of BTC, for example 0.5.' };
  const frac = m[2] ?? '';
  if (frac.length > 8) return { error: 'At most 8 decimal places: the smallest unit is 1 satoshi (0.00000001 BTC).' };
  const sat = BigInt(m[1] || '0') * 100_000_000n + BigInt(frac.padEnd(8, '0') || '0');
  if (sat > BigInt(Number.MAX_SAFE_INTEGER)) return { error: 'That amount is larger than all bitcoin in existence.' };
  if (sat === 0n) return { error: 'The amount must be greater than zero.' };
  return { sat: Number(sat) };
}

/** Parses a whole number of blocks; {value} or {error}. */
export function parseBlocks(text) {
  const s = String(text ?? '').trim();
  if (s === '') return { error: 'Enter the staking term in blocks, for example 1000.' };
  if (!/^\d+$/.test(s)) return { error: 'The term must be a whole number of blocks.' };
  const n = Number(s);
  if (!Number.isSafeInteger(n)) return { error: 'The term is too large.' };
  return { value: n };
}

/** "abcd1234…9876fedc" for long hex strings. */
export function shortHex(hex, keep = 8) {
  if (!hex) return '—';
  return hex.length <= keep * 2 + 1 ? hex : `${hex.slice(0, keep)}…${hex.slice(-keep)}`;
}

/** The API's commission decimal string ("0.050000000000000000") as a percentage ("5%"). */
export function formatCommission(c) {
  if (c === null || c === undefined || c === '') return '—';
  const n = Number(c);
  if (!Number.isFinite(n)) return String(c);
  const pct = Math.round(n * 100 * 100) / 100;
  return `${pct}%`;
}

/** Blocks as wall-clock time at Bitcoin's 10-minute target: "~50 min", "~6.9 days". */
export function approxDuration(n) {
  const minutes = n * 10;
  if (minutes < 60) return `~${minutes} min`;
  if (minutes < 48 * 60) return `~${Math.round(minutes / 6) / 10} h`;
  return `~${Math.round(minutes / 144) / 10} days`;
}

/** "1,000 blocks (~6.9 days)". */
export function blocksWithTime(n) {
  if (n === null || n === undefined) return '—';
  return `${formatInt(n)} block${n === 1 ? '' : 's'} (${approxDuration(n)})`;
}

/** An x-only public key: 64 hex digits. Returns {pk} (lower-case) or {error}. */
export function parseXonlyPk(text) {
  const s = String(text ?? '').trim().toLowerCase();
  if (s === '') return { error: 'Enter a staker public key.' };
  if (!/^[0-9a-f]*$/.test(s)) return { error: 'A public key is written in hexadecimal: only 0-9 and a-f.' };
  if (s.length === 66 && (s.startsWith('02') || s.startsWith('03'))) {
    return { error: 'This looks like a 33-byte compressed key. Remove the leading 02/03: the API expects the 32-byte x-only key (64 hex characters).' };
  }
  if (s.length !== 64) return { error: `A staker public key is 64 hex characters (32-byte x-only key); this one has ${s.length}.` };
  return { pk: s };
}
