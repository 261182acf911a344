// The dashboard page: polls the /v1 staking API and the engine status, renders four views
// (overview, providers, staker, stake). Vanilla ES modules, no build step.

import { api, ApiError, explain } from './api.js';
import { addSample, tvlChartSvg } from './chart.js';
import { approxDuration, btc, blocksWithTime, formatCommission, formatInt, parseXonlyPk, shortHex } from './format.js';
import { activeVersion, capStatus, nextVersion, validateStake } from './params.js';
import { DevnetNodeWalletSigner, SignerError } from './signer.js';

// ---------------------------------------------------------------------------------------------
// State and helpers

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(500, Number(params.get('poll')) || 5000);
const PARAMS_EVERY = 12; // global params: every 12th poll (they change only with a new config)
const PROVIDERS_EVERY = 6;
// Transaction links: an explorer given as ?explorer=https://mempool.space/tx/ (the hash is
// appended), else the staking API's own record of the delegation.
const EXPLORER = /^https?:\/\//.test(params.get('explorer') ?? '') ? params.get('explorer') : null;
const txHref = (hash) => (EXPLORER ? `${EXPLORER}${hash}` : `/v1/delegation?staking_tx_hash_hex=${hash}`);

const state = {
  stats: null,
  versions: null,
  tip: null,
  providers: null,
  samples: [],
  tick: 0,
  down: false,
  fpSort: { key: 'active_tvl', dir: -1 },
  fpQuery: '',
};

const signers = { devnet: new DevnetNodeWalletSigner() };
const signer = () => signers[$('#stake-signer').value] ?? signers.devnet;

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ESC[c]);

function notice(kind, title, body = '') {
  return `<div class="notice ${kind}" role="${kind === 'error' ? 'alert' : 'status'}"><strong>${esc(title)}</strong>${
    body ? `<p>${body}</p>` : ''
  }</div>`;
}

function setConn(ok, text) {
  const el = $('#conn');
  el.textContent = text;
  el.className = `conn ${ok ? 'ok' : 'bad'}`;
}

function banner(message) {
  const el = $('#banner');
  if (!message) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  el.hidden = false;
  el.innerHTML = `<strong>The staking API is not answering.</strong> ${esc(message)} <span class="muted">Retrying every ${
    POLL_MS / 1000
  } s; figures below may be out of date.</span>`;
}

const providerByPk = (pk) => state.providers?.find((p) => p.btc_pk === pk);
const providerName = (pk) => providerByPk(pk)?.description?.moniker || shortHex(pk);

// ---------------------------------------------------------------------------------------------
// Routing: #overview, #providers, #staker[/<pk>], #stake[/<fp pk>]

function route() {
  const [view, arg] = (location.hash.replace(/^#/, '') || 'overview').split('/');
  const known = ['overview', 'providers', 'staker', 'stake'];
  const current = known.includes(view) ? view : 'overview';
  for (const s of $$('.view')) s.hidden = s.dataset.view !== current;
  for (const a of $$('.tabs a')) a.classList.toggle('active', a.dataset.tab === current);
  for (const a of $$('.tabs a')) a.toggleAttribute('aria-current', a.dataset.tab === current);
  if (current === 'overview') renderChart(); // sized to the now visible box
  if (current === 'staker' && arg) {
    $('#staker-pk').value = arg;
    lookupStaker(arg);
  }
  if (current === 'stake' && arg) {
    state.preselectFp = arg;
    fillProviderSelect();
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Overview

function renderStats() {
  const s = state.stats;
  if (!s) return;
  for (const el of $$('[data-stat]')) {
    const key = el.dataset.stat;
    const v = s[key];
    el.dataset.raw = String(v);
    el.textContent = key.endsWith('_tvl') ? btc(v) : formatInt(v);
  }
}

function renderTip() {
  const t = state.tip;
  if (!t) return;
  $('#tip-height').textContent = formatInt(t.height);
  $('#tip-height').dataset.raw = String(t.height);
  $('#tip-hint').textContent = t.block ? `block ${shortHex(t.block, 6)}` : 'indexed by the engine';
}

function renderParams() {
  const capEl = $('#cap-body');
  const parEl = $('#params-body');
  const limits = $('#stake-limits');
  if (!state.versions || !state.tip) return;
  const h = state.tip.height;
  const v = activeVersion(state.versions, h);
  const next = nextVersion(state.versions, h);
  const nextLine = next
    ? `<p class="countdown" data-next-version="${next.version}">Version <b>${next.version}</b> activates at height ${formatInt(
        next.activation_height,
      )}: in <b data-countdown>${formatInt(next.activation_height - h)}</b> blocks (${approxDuration(next.activation_height - h)})</p>`
    : '<p class="muted">No later parameters version is scheduled.</p>';

  if (!v) {
    const first = next;
    capEl.innerHTML = notice('info', 'Staking has not started yet.', first ? `It opens at height ${formatInt(first.activation_height)}.` : '');
    parEl.innerHTML = `<p>No active version at height ${formatInt(h)}.</p>${nextLine}`;
    limits.textContent = 'Staking has not started yet: no parameters version is active.';
    return;
  }

  const cap = capStatus(v, state.stats?.active_tvl, h);
  if (cap.kind === 'value') {
    const pct = Math.min(100, cap.fraction * 100);
    capEl.innerHTML = `
      <p class="cap-figures"><b>${btc(cap.tvl)}</b> of <b>${btc(cap.cap)}</b> <span class="muted">(${(cap.fraction * 100).toFixed(
        cap.fraction < 0.1 ? 2 : 1,
      )}%)</span></p>
      <div class="bar ${cap.reached ? 'full' : ''}" role="progressbar" aria-label="Staking cap filled" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct.toFixed(
        1,
      )}"><span style="width:${pct}%"></span></div>
      <p class="${cap.reached ? 'warn-text' : 'muted'}" data-cap-state="${cap.reached ? 'reached' : 'open'}">${
        cap.reached
          ? 'Cap reached: new stakes are marked overflow and do not count towards the TVL.'
          : `${btc(cap.cap - cap.tvl)} left before the cap of version ${v.version}.`
      }</p>`;
  } else if (cap.kind === 'height') {
    capEl.innerHTML = `
      <p class="cap-figures">Open until height <b>${formatInt(cap.capHeight)}</b></p>
      <p class="${cap.reached ? 'warn-text' : ''}" data-cap-state="${cap.reached ? 'reached' : 'open'}">${
        cap.reached
          ? `Staking window closed ${formatInt(-cap.remaining)} block(s) ago: new stakes are marked overflow.`
          : `<b data-remaining>${formatInt(cap.remaining)}</b> blocks remaining (${approxDuration(cap.remaining)})`
      }</p>`;
  } else {
    capEl.textContent = 'This version has no cap.';
  }

  parEl.innerHTML = `
    <p>Active: version <b data-active-version>${v.version}</b> <span class="muted">since height ${formatInt(v.activation_height)}</span></p>
    ${nextLine}
    <dl class="kv">
      <dt>Amount</dt><dd>${btc(v.min_staking_amount)} – ${btc(v.max_staking_amount)}</dd>
      <dt>Term</dt><dd>${formatInt(v.min_staking_time)} – ${formatInt(v.max_staking_time)} blocks</dd>
      <dt>Unbonding</dt><dd>${formatInt(v.unbonding_time)} blocks, fee ${formatInt(v.unbonding_fee)} sat</dd>
      <dt>Confirmations</dt><dd>${formatInt(v.confirmation_depth)} blocks</dd>
      <dt>Covenant</dt><dd>${v.covenant_quorum} of ${v.covenant_pks?.length ?? '?'}</dd>
    </dl>`;

  limits.innerHTML = `Checked against the active parameters (version ${v.version}): amount ${btc(v.min_staking_amount)} – ${btc(
    v.max_staking_amount,
  )}, term ${formatInt(v.min_staking_time)} – ${formatInt(v.max_staking_time)} blocks.${
    cap.reached ? ' <b class="warn-text">The staking cap is reached.</b>' : ''
  }`;
}

function renderChart() {
  const v = state.versions && state.tip ? activeVersion(state.versions, state.tip.height) : null;
  const cap = v && v.staking_cap > 0 ? v.staking_cap : null;
  const box = $('#tvl-chart');
  box.innerHTML = tvlChartSvg(state.samples, { cap, width: box.clientWidth || 640 });
}

// ---------------------------------------------------------------------------------------------
// 2. Finality providers

const fpValue = {
  moniker: (p) => (p.description?.moniker || '').toLowerCase(),
  commission: (p) => Number(p.commission) || 0,
  btc_pk: (p) => p.btc_pk,
  active_tvl: (p) => p.active_tvl,
  active_delegations: (p) => p.active_delegations,
};

function renderProviders() {
  const body = $('#fp-rows');
  const noticeEl = $('#fp-notice');
  if (!state.providers) return;
  const q = state.fpQuery.trim().toLowerCase();
  const all = state.providers;
  const rows = all.filter((p) => !q || fpValue.moniker(p).includes(q) || p.btc_pk.includes(q));
  const { key, dir } = state.fpSort;
  rows.sort((a, b) => {
    const x = fpValue[key](a);
    const y = fpValue[key](b);
    return (x < y ? -1 : x > y ? 1 : 0) * dir || a.btc_pk.localeCompare(b.btc_pk);
  });
  for (const th of $$('#fp-table th')) {
    const k = th.querySelector('button')?.dataset.sort;
    if (k === key) th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  $('#fp-count').textContent = q ? `${rows.length} of ${all.length} providers` : `${all.length} provider${all.length === 1 ? '' : 's'}`;
  noticeEl.innerHTML =
    all.length === 0
      ? notice('info', 'No finality providers yet.', 'The engine has no registered provider and no delegation names one.')
      : rows.length === 0
        ? notice('info', `No provider matches “${state.fpQuery.trim()}”.`, 'Search looks at the moniker and the public key.')
        : '';
  body.innerHTML = rows
    .map(
      (p) => `<tr data-pk="${esc(p.btc_pk)}">
        <td data-label="Moniker" class="moniker">${esc(p.description?.moniker || '(unnamed)')}</td>
        <td data-label="Commission">${esc(formatCommission(p.commission))}</td>
        <td data-label="Public key" class="mono"><span title="${esc(p.btc_pk)}">${esc(shortHex(p.btc_pk, 10))}</span></td>
        <td data-label="Active TVL" class="num" data-raw="${p.active_tvl}">${btc(p.active_tvl)}</td>
        <td data-label="Active delegations" class="num"><span>${formatInt(p.active_delegations)} <span class="muted">of ${formatInt(
          p.total_delegations,
        )}</span></span></td>
        <td class="act"><a class="btn small" href="#stake/${esc(p.btc_pk)}">Stake</a></td>
      </tr>`,
    )
    .join('');
}

function fillProviderSelect() {
  const sel = $('#stake-fp');
  if (!state.providers) return;
  const keep = state.preselectFp ?? sel.value;
  const opts = state.providers
    .slice()
    .sort((a, b) => (a.description?.moniker || a.btc_pk).localeCompare(b.description?.moniker || b.btc_pk))
    .map(
      (p) =>
        `<option value="${esc(p.btc_pk)}">${esc(p.description?.moniker || shortHex(p.btc_pk))} · ${esc(
          formatCommission(p.commission),
        )} commission</option>`,
    );
  sel.innerHTML = `<option value="">${opts.length ? 'Choose a finality provider…' : 'No finality provider available'}</option>${opts.join('')}`;
  if (keep && state.providers.some((p) => p.btc_pk === keep)) sel.value = keep;
  state.preselectFp = undefined;
}

// ---------------------------------------------------------------------------------------------
// 3. Staker's view

const STATES = ['active', 'unbonding_requested', 'unbonding', 'unbonded', 'withdrawn'];
const STATE_LABEL = {
  active: 'active',
  unbonding_requested: 'unbonding requested',
  unbonding: 'unbonding',
  unbonded: 'unbonded',
  withdrawn: 'withdrawn',
};

function timeline(d) {
  const idx = STATES.indexOf(d.state);
  // No unbonding transaction and past the unbonding steps: the staking timelock simply expired.
  const expired = !d.unbonding_tx && idx >= 3;
  return `<ol class="timeline" aria-label="Delegation state">${STATES.map((s, i) => {
    let cls = i < idx ? 'done' : i === idx ? 'current' : 'todo';
    let title = STATE_LABEL[s];
    if (expired && (i === 1 || i === 2)) {
      cls = 'skipped';
      title += ' (skipped: the staking timelock expired)';
    }
    return `<li class="${cls}" title="${esc(title)}"${i === idx ? ' aria-current="step"' : ''}><span>${esc(STATE_LABEL[s])}</span></li>`;
  }).join('')}</ol>`;
}

function timelockText(d) {
  const tip = state.tip?.height;
  const rem = (tx) => {
    const end = tx.start_height + tx.timelock;
    if (tip === undefined || tip === null) return `ends at height ${formatInt(end)}`;
    const left = end - tip;
    return left > 0 ? `<b>${formatInt(left)}</b> of ${formatInt(tx.timelock)} blocks left <span class="muted">(ends at height ${formatInt(end)})</span>` : `ended at height ${formatInt(end)}`;
  };
  switch (d.state) {
    case 'active':
    case 'unbonding_requested':
      return rem(d.staking_tx);
    case 'unbonding':
      return d.unbonding_tx ? `unbonding: ${rem(d.unbonding_tx)}` : 'unbonding';
    case 'unbonded':
      return 'over: the stake can be withdrawn';
    case 'withdrawn':
      return 'over: withdrawn';
    default:
      return '—';
  }
}

function delegationCard(d) {
  const actions = [];
  if (d.state === 'active') actions.push(`<button type="button" class="btn small" data-action="unbond">Unbond…</button>`);
  if (d.state === 'unbonded') actions.push(`<button type="button" class="btn small" data-action="withdraw">Withdraw…</button>`);
  return `<article class="deleg" data-hash="${esc(d.staking_tx_hash_hex)}" data-state="${esc(d.state)}">
    <header>
      <span class="amount">${btc(d.staking_value)}</span>
      <span class="badge state-${esc(d.state)}">${esc(STATE_LABEL[d.state] ?? d.state)}</span>
      ${
        d.is_overflow
          ? '<span class="badge overflow" title="Staked while the cap was reached: this stake does not count towards the TVL">overflow</span>'
          : ''
      }
    </header>
    ${timeline(d)}
    <dl class="kv">
      <dt>Provider</dt><dd>${esc(providerName(d.finality_provider_pk_hex))}</dd>
      <dt>Start height</dt><dd>${formatInt(d.staking_tx.start_height)} <span class="muted">${esc(
        (d.staking_tx.start_timestamp || '').replace('T', ' ').replace('Z', ' UTC'),
      )}</span></dd>
      <dt>Timelock</dt><dd data-timelock>${timelockText(d)}</dd>
      <dt>Tx hash</dt><dd class="mono hash"><a href="${esc(txHref(d.staking_tx_hash_hex))}" target="_blank" rel="noopener">${esc(
        d.staking_tx_hash_hex,
      )}</a></dd>
    </dl>
    ${actions.length ? `<div class="actions">${actions.join('')}<span class="action-result" aria-live="polite"></span></div>` : ''}
  </article>`;
}

let stakerSeq = 0;

async function lookupStaker(raw, pageKey = '', { quiet = false } = {}) {
  const out = $('#staker-result');
  const errEl = $('#staker-pk-error');
  const parsed = parseXonlyPk(raw);
  if (parsed.error) {
    errEl.hidden = false;
    errEl.textContent = parsed.error;
    out.innerHTML = '';
    return;
  }
  errEl.hidden = true;
  if (!pageKey) out.dataset.pk = parsed.pk; // a new block reloads this key's view (even when empty)
  const seq = ++stakerSeq;
  if (!pageKey && !quiet) out.innerHTML = '<p class="muted">Loading delegations…</p>';
  try {
    if (!state.providers || !state.versions) await firstLoad; // provider names, confirmation depth
    const { rows, nextKey } = await api.stakerDelegations(parsed.pk, pageKey);
    if (seq !== stakerSeq) return;
    if (!pageKey && rows.length === 0) {
      const fp = providerByPk(parsed.pk);
      const depth = state.versions && state.tip ? activeVersion(state.versions, state.tip.height)?.confirmation_depth : null;
      out.innerHTML = notice(
        'info',
        'No delegations for this key.',
        fp
          ? `This is the key of the finality provider <b>${esc(fp.description?.moniker || '')}</b>, not a staker's key. Enter the key your wallet staked with.`
          : `This staker key has no delegation the indexer knows of. Check that it is the key your wallet staked with (not an address or a transaction hash). A new stake appears once its transaction has ${
              depth ? `${depth} confirmations` : 'enough confirmations'
            }.`,
      );
      out.dataset.empty = '1';
      return;
    }
    delete out.dataset.empty;
    if (!pageKey) {
      out.innerHTML = `<p class="summary" id="staker-summary"></p><div class="delegs"></div><div class="more"></div>`;
    }
    $('.delegs', out).insertAdjacentHTML('beforeend', rows.map(delegationCard).join(''));
    const cards = $$('.deleg', out);
    const active = cards.filter((c) => c.dataset.state === 'active').length;
    $('#staker-summary').textContent = `${cards.length} delegation${cards.length === 1 ? '' : 's'} shown, ${active} active.`;
    $('.more', out).innerHTML = nextKey
      ? `<button type="button" class="btn" data-next="${esc(nextKey)}">Load more delegations</button>`
      : '';
  } catch (e) {
    if (seq !== stakerSeq) return;
    if (e instanceof ApiError && e.status === 400) {
      out.innerHTML = notice(
        'error',
        'This is not a valid public key.',
        'The API refused it: it is not a point on the secp256k1 curve. Check that you copied the whole staker key.',
      );
    } else {
      out.innerHTML = notice('error', 'Could not load the delegations.', esc(explain(e)));
    }
  }
}

async function onDelegationAction(btn) {
  const card = btn.closest('.deleg');
  const hash = card.dataset.hash;
  const action = btn.dataset.action;
  const result = $('.action-result', card);
  if (!btn.dataset.armed) {
    btn.dataset.armed = '1';
    btn.textContent = `Confirm ${action} (${signer().name})`;
    result.textContent = '';
    return;
  }
  delete btn.dataset.armed;
  btn.disabled = true;
  btn.textContent = `${action === 'unbond' ? 'Unbonding' : 'Withdrawing'}…`;
  try {
    if (action === 'unbond') {
      // The signer builds the unbonding transaction and signs it as the staker; the page posts the
      // request to the staking API, and the covenant committee's signatures complete it.
      const request = await signer().signUnbonding(hash);
      try {
        await api.requestUnbonding(request);
      } catch (e) {
        result.innerHTML = `<span class="err-text">The staking API refused the unbonding request: ${esc(explain(e))}</span>`;
        return;
      }
      await showActionResult(
        card,
        `<span class="ok-text">Unbonding requested: transaction <span class="mono">${esc(
          request.unbonding_tx_hash_hex,
        )}</span>. The covenant committee signs it and it is broadcast; the state moves to “unbonding” once it confirms.</span>`,
      );
    } else {
      const r = await signer().withdraw(hash);
      await showActionResult(
        card,
        `<span class="ok-text">Withdrawal sent: transaction <span class="mono">${esc(
          r.withdrawTxHashHex,
        )}</span>. The state moves to “withdrawn” once it confirms.</span>`,
      );
    }
  } catch (e) {
    result.innerHTML = `<span class="err-text">${esc(signerMessage(e))}</span>`;
  } finally {
    btn.disabled = false;
    btn.textContent = action === 'unbond' ? 'Unbond…' : 'Withdraw…';
  }
}

/** Reloads the staker's delegations (the action may have moved this one on, e.g. to "unbonding
 *  requested") and shows `html` under the card again. */
async function showActionResult(card, html) {
  const hash = card.dataset.hash;
  const out = $('#staker-result');
  if (out.dataset.pk) await lookupStaker(out.dataset.pk, '', { quiet: true });
  const fresh = $$('.deleg', out).find((c) => c.dataset.hash === hash) ?? card;
  const result = $('.action-result', fresh);
  if (result) result.innerHTML = html;
  else fresh.insertAdjacentHTML('beforeend', `<div class="actions"><span class="action-result" aria-live="polite">${html}</span></div>`);
}
function signerMessage(e) {
  if (e instanceof SignerError) return e.code === 'rejected' ? `The wallet refused: ${e.message}` : `${e.message[0].toUpperCase()}${e.message.slice(1)}.`;
  return `Unexpected error: ${e?.message ?? e}`;
}

// ---------------------------------------------------------------------------------------------
// 4. Stake form

function showStakeErrors(result) {
  for (const p of $$('#stake-form .field-error')) {
    const msg = result?.fields?.[p.dataset.for];
    p.hidden = !msg;
    p.textContent = msg ?? '';
    const input = p.previousElementSibling;
    input?.toggleAttribute('aria-invalid', Boolean(msg));
  }
  const n = $('#stake-form-notices');
  n.innerHTML = [
    ...(result?.form ?? []).map((m) => notice('error', m)),
    ...(result?.warnings ?? []).map((m) => notice('warn', m)),
  ].join('');
}

function currentStakeValidation() {
  return validateStake(
    { fpPk: $('#stake-fp').value, amountBtc: $('#stake-amount').value, termBlocks: $('#stake-term').value },
    { versions: state.versions, height: state.tip?.height, activeTvl: state.stats?.active_tvl },
  );
}

let stakeAttempted = false;

async function onStakeSubmit(ev) {
  ev.preventDefault();
  stakeAttempted = true;
  const result = currentStakeValidation();
  showStakeErrors(result);
  const out = $('#stake-result');
  if (!result.ok) {
    out.innerHTML = '';
    $('#stake-form [aria-invalid]')?.focus();
    return;
  }
  const { fpPk, amountSat, termBlocks } = result.value;
  out.innerHTML = `<div class="review">
      <p>Stake <b>${btc(amountSat)}</b> with <b>${esc(providerName(fpPk))}</b> for <b>${blocksWithTime(termBlocks)}</b>, under parameters version ${
        result.version.version
      }. The transaction is built and signed by: <b>${esc(signer().name)}</b>.</p>
      <button type="button" class="primary" id="stake-confirm">Sign and broadcast</button>
    </div>`;
  $('#stake-confirm').addEventListener('click', async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    b.textContent = 'Signing…';
    try {
      const r = await signer().stake(result.value);
      out.innerHTML = notice(
        'ok',
        'Staking transaction sent.',
        `Transaction <span class="mono">${esc(r.stakingTxHashHex)}</span>. It shows up under ${
          state.signerInfo?.stakerPkHex ? `<a href="#staker/${esc(state.signerInfo.stakerPkHex)}">My delegations</a>` : '“My delegations”'
        } once it has enough confirmations.`,
      );
    } catch (err) {
      out.innerHTML = notice('error', 'Not sent.', esc(signerMessage(err)));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Polling

function renderUpdated() {
  const t = new Date();
  $('#updated').textContent = `· Updated ${t.toLocaleTimeString()}.`;
}

async function refresh() {
  const tick = state.tick++;
  const wantParams = !state.versions || tick % PARAMS_EVERY === 0 || crossedActivation();
  const wantProviders = !state.providers || tick % PROVIDERS_EVERY === 0;
  const [stats, tip, versions, providers] = await Promise.allSettled([
    api.stats(),
    api.tip(),
    wantParams ? api.globalParams() : Promise.resolve(state.versions),
    wantProviders ? api.finalityProviders() : Promise.resolve(state.providers),
  ]);
  const failures = [stats, tip, versions, providers].filter((r) => r.status === 'rejected').map((r) => r.reason);
  const down = failures.find((e) => e instanceof ApiError && e.isDown);

  if (stats.status === 'fulfilled') state.stats = stats.value;
  const newBlock = tip.status === 'fulfilled' && state.tip && tip.value.height !== state.tip.height;
  if (tip.status === 'fulfilled') state.tip = tip.value;
  if (versions.status === 'fulfilled') state.versions = versions.value;
  if (providers.status === 'fulfilled') state.providers = providers.value;

  if (down) {
    state.down = true;
    setConn(false, 'API unreachable');
    banner(explain(down));
    // Never leave "Loading…" up forever: say what is missing and why.
    const unavailable = '<p class="muted">Not available: the staking API is not answering.</p>';
    if (!state.versions || !state.tip) {
      $('#cap-body').innerHTML = unavailable;
      $('#params-body').innerHTML = unavailable;
      $('#stake-limits').textContent = 'The limits cannot be checked while the staking API is not answering.';
    }
    if (!state.providers) {
      $('#fp-rows').innerHTML = '';
      $('#fp-notice').innerHTML = notice('error', 'Finality providers unavailable.', esc(explain(down)));
      $('#stake-fp').innerHTML = '<option value="">Not available (API not answering)</option>';
    }
  } else {
    state.down = false;
    banner(null);
    setConn(failures.length === 0, failures.length ? 'partly loaded' : `live · height ${formatInt(state.tip?.height)}`);
  }
  // Errors of single endpoints (the API answers, but refuses one request) show in their panel.
  if (!down) {
    if (tip.status === 'rejected') $('#tip-hint').textContent = `unknown: ${explain(tip.reason)}`;
    if (versions.status === 'rejected' && !state.versions) {
      $('#cap-body').innerHTML = notice('error', 'Parameters unavailable.', esc(explain(versions.reason)));
      $('#params-body').innerHTML = '';
    }
    if (providers.status === 'rejected' && !state.providers) {
      $('#fp-rows').innerHTML = '';
      $('#fp-notice').innerHTML = notice('error', 'Finality providers unavailable.', esc(explain(providers.reason)));
    }
  }

  if (stats.status === 'fulfilled' && tip.status === 'fulfilled') {
    state.samples = addSample(state.samples, { height: tip.value.height, active: stats.value.active_tvl, total: stats.value.total_tvl });
  }
  renderStats();
  renderTip();
  renderParams();
  renderChart();
  if (providers.status === 'fulfilled' && wantProviders) {
    renderProviders();
    fillProviderSelect();
  }
  if (stakeAttempted) showStakeErrors(currentStakeValidation());
  if (newBlock) refreshStakerView();
  if (stats.status === 'fulfilled') {
    renderUpdated();
    if (!document.body.dataset.ready) performance.mark('dashboard:data'); // first figures on screen
    document.body.dataset.ready = '1';
  }
}

/** A new block may move delegations on: reload the one open staker view (not while the user is
 *  confirming or sending an action in it). */
function refreshStakerView() {
  const out = $('#staker-result');
  if ($('#view-staker').hidden || !out.dataset.pk) return;
  if ($('[data-armed], [data-action]:disabled', out)) return;
  lookupStaker(out.dataset.pk, '', { quiet: true });
}

/** The signer's wallet: its staker key for "My delegations", its balance next to the stake form. */
async function showSignerInfo() {
  const info = await signer().info();
  state.signerInfo = info;
  const btn = $('#staker-use-wallet');
  btn.hidden = !info.available;
  $('#signer-info').textContent = info.available
    ? `Wallet “${info.wallet ?? signer().name}”: ${btc(info.balanceSat ?? 0)} available; staker key ${shortHex(info.stakerPkHex)}.`
    : `${signer().name}: ${info.reason}. Stakes can be checked here but not signed.`;
}

function crossedActivation() {
  if (!state.versions || !state.tip) return false;
  const next = nextVersion(state.versions, state.tip.height);
  return Boolean(next && next.activation_height <= state.tip.height + 1);
}

async function loop() {
  try {
    await refresh();
  } catch (e) {
    // A rendering bug must not stop polling; show it instead of failing silently.
    banner(`Dashboard error: ${e?.message ?? e}`);
    console.error(e);
  }
  setTimeout(loop, POLL_MS);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  window.addEventListener('hashchange', route);
  let resizeTimer;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(renderChart, 150);
  });

  $('#fp-search').addEventListener('input', (e) => {
    state.fpQuery = e.target.value;
    renderProviders();
  });
  for (const b of $$('#fp-table [data-sort]')) {
    b.addEventListener('click', () => {
      const key = b.dataset.sort;
      const textual = key === 'moniker' || key === 'btc_pk' || key === 'commission';
      state.fpSort = state.fpSort.key === key ? { key, dir: -state.fpSort.dir } : { key, dir: textual ? 1 : -1 };
      renderProviders();
    });
  }

  $('#staker-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('#staker-pk').value.trim();
    const parsed = parseXonlyPk(v);
    const target = `#staker/${parsed.pk ?? v}`;
    if (parsed.pk && location.hash !== target) location.hash = target; // route() looks it up
    else lookupStaker(v);
  });
  $('#staker-result').addEventListener('click', (e) => {
    const more = e.target.closest('[data-next]');
    if (more) {
      more.disabled = true;
      lookupStaker($('#staker-result').dataset.pk, more.dataset.next);
    }
    const act = e.target.closest('[data-action]');
    if (act) onDelegationAction(act);
  });

  $('#staker-use-wallet').addEventListener('click', async () => {
    await showSignerInfo();
    const pk = state.signerInfo?.stakerPkHex;
    if (!pk) return;
    $('#staker-pk').value = pk;
    if (location.hash !== `#staker/${pk}`) location.hash = `#staker/${pk}`;
    else lookupStaker(pk);
  });
  $('#stake-form').addEventListener('submit', onStakeSubmit);
  $('#stake-form').addEventListener('input', () => {
    if (stakeAttempted) showStakeErrors(currentStakeValidation());
    $('#stake-result').innerHTML = '';
  });
}

wire();
showSignerInfo();
const firstLoad = loop(); // resolves after the first refresh (loop schedules the next one itself)
route();
