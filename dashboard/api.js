// The staking API client: GET JSON from the same origin (the engine, or dev-server.mjs which
// proxies to it), with errors classified so the page can explain them to a newcomer.

const TIMEOUT_MS = 8000;

/**
 * kind: 'network'  the request never got an answer (engine down, wrong address, timeout)
 *       'gateway'  a proxy answered 502/503/504: the engine behind it is unreachable
 *       'http'     the API answered an error ({errorCode, message} when it is the staking API)
 *       'parse'    the answer was not JSON
 */
export class ApiError extends Error {
  constructor(kind, message, { status = null, code = null, path = '' } = {}) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.path = path;
  }

  /** Whether the API as a whole is unreachable (as opposed to one request being refused). */
  get isDown() {
    return this.kind === 'network' || this.kind === 'gateway';
  }
}

/** A sentence for the page. */
export function explain(err) {
  if (!(err instanceof ApiError)) return `Unexpected error: ${err?.message ?? err}`;
  switch (err.kind) {
    case 'network':
      return 'Cannot reach the staking API. Check that the engine is running and serving this page (or that dev-server.mjs points at it with --api).';
    case 'gateway':
      return `The dashboard server cannot reach the engine (HTTP ${err.status}). Is the engine running?`;
    case 'parse':
      return `The server answered ${err.path} with something that is not JSON: is this the staking API?`;
    default:
      if (err.status === 404 && err.code === null) {
        return `This server has no ${err.path}: is the phase1-staking plugin loaded in the engine?`;
      }
      if (err.status >= 500) return `The staking API failed (HTTP ${err.status}: ${err.message}). Try again shortly.`;
      return err.message;
  }
}

/** GET `path` (absolute, same origin) and return the parsed JSON body; with `body`, POST it as JSON. */
export async function getJson(path, { timeoutMs = TIMEOUT_MS, body: payload } = {}) {
  let res;
  try {
    const init = { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) };
    if (payload !== undefined) {
      init.method = 'POST';
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    res = await fetch(path, init);
  } catch (e) {
    const timedOut = e?.name === 'TimeoutError';
    throw new ApiError('network', timedOut ? `no answer within ${timeoutMs / 1000} s` : 'network error', { path });
  }
  const text = await res.text();
  let body = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    if (!res.ok) {
      const kind = [502, 503, 504].includes(res.status) ? 'gateway' : 'http';
      throw new ApiError(kind, `HTTP ${res.status}`, { status: res.status, path });
    }
    throw new ApiError('parse', 'not JSON', { status: res.status, path });
  }
  if (!res.ok) {
    const kind = [502, 503, 504].includes(res.status) ? 'gateway' : 'http';
    throw new ApiError(kind, body?.message ?? `HTTP ${res.status}`, {
      status: res.status,
      code: body?.errorCode ?? null,
      path,
    });
  }
  return body;
}

/** `{data}` of a `/v1` answer. */
const data = async (path) => (await getJson(path)).data;

/** Follows `pagination.next_key` (bounded: `maxPages`). */
async function allPages(path, maxPages = 50) {
  const rows = [];
  let key = '';
  for (let i = 0; i < maxPages; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const body = await getJson(key ? `${path}${sep}pagination_key=${encodeURIComponent(key)}` : path);
    rows.push(...(body.data ?? [])); // an empty list is `null` on some legacy routes
    key = body.pagination?.next_key ?? '';
    if (!key) break;
  }
  return rows;
}

export const api = {
  stats: () => data('/v1/stats'),
  globalParams: async () => (await data('/v1/global-params'))?.versions ?? [],
  finalityProviders: () => allPages('/v1/finality-providers'),
  /** One page of a staker's delegations: {rows, nextKey}. */
  stakerDelegations: async (pk, key = '') => {
    const q = `staker_btc_pk=${encodeURIComponent(pk)}` + (key ? `&pagination_key=${encodeURIComponent(key)}` : '');
    const body = await getJson(`/v1/staker/delegations?${q}`);
    return { rows: body.data ?? [], nextKey: body.pagination?.next_key ?? '' };
  },
  /** POST /v1/unbonding with a staker-signed request (202, body `null`, when accepted). */
  requestUnbonding: (request) => getJson('/v1/unbonding', { body: request }),
  delegation: (hash) => data(`/v1/delegation?staking_tx_hash_hex=${encodeURIComponent(hash)}`),
  /** The indexed BTC tip: {height, block} of the phase1-staking plugin (engine status). */
  tip: async () => {
    const s = await getJson('/status/phase1-staking');
    return { height: s.height, block: s.block, status: s.status };
  },
};
