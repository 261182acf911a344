// TVL-over-height chart as inline SVG markup (no chart library). Pure: returns a string, so the
// page sets it with innerHTML and Node's tests can check it.

import { formatBtc, formatInt } from './format.js';

const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

/** Keeps one sample per height (the latest), ordered by height, at most `max`. */
export function addSample(samples, sample, max = 500) {
  const out = samples.filter((s) => s.height !== sample.height);
  out.push(sample);
  out.sort((a, b) => a.height - b.height);
  return out.length > max ? out.slice(out.length - max) : out;
}

/** Round-ish tick values between lo and hi. */
function ticks(lo, hi, count) {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(t);
  return out;
}

/**
 * SVG markup for `samples` ([{height, active, total}] in satoshis). `cap` (satoshis, optional)
 * draws the value cap as a dashed line. Fewer than two heights: a short explanation instead.
 */
export function tvlChartSvg(samples, { cap = null, width = 640 } = {}) {
  // The viewBox is the box's real width (in CSS px), so the labels keep their size on a phone.
  const W = Math.max(280, Math.round(width));
  const H = W < 480 ? 180 : 220;
  if (!samples || samples.length < 2) {
    const n = samples?.length ?? 0;
    return `<p class="chart-empty" data-samples="${n}">Collecting samples: the chart draws one point per BTC block height seen while this page is open${
      n === 1 ? ` (1 so far, at height ${formatInt(samples[0].height)})` : ''
    }. It fills in as new blocks arrive.</p>`;
  }
  const x0 = samples[0].height;
  const x1 = samples[samples.length - 1].height;
  let yMax = Math.max(...samples.map((s) => Math.max(s.active, s.total)), cap ?? 0, 1);
  yMax *= 1.08;
  const sx = (h) => PAD.left + ((h - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (v) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const line = (key) => samples.map((s) => `${sx(s.height).toFixed(1)},${sy(s[key]).toFixed(1)}`).join(' ');

  const yTicks = ticks(0, yMax / 1e8, 4); // in BTC
  const xTicks = ticks(x0, x1, Math.min(W < 480 ? 4 : 6, x1 - x0)).filter((t) => Number.isInteger(t));
  const parts = [];
  parts.push(
    `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Active and total TVL by BTC block height, ${samples.length} samples from height ${x0} to ${x1}" data-samples="${samples.length}">`,
  );
  for (const t of yTicks) {
    const y = sy(t * 1e8).toFixed(1);
    parts.push(`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text class="axis" x="${PAD.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatBtc(Math.round(t * 1e8))}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<text class="axis" x="${sx(t).toFixed(1)}" y="${H - 8}" text-anchor="middle">${formatInt(t)}</text>`);
  }
  if (cap) {
    const y = sy(cap).toFixed(1);
    parts.push(`<line class="cap" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text class="axis cap-label" x="${PAD.left + 4}" y="${(Number(y) + 13).toFixed(1)}">cap ${formatBtc(cap)} BTC</text>`);
  }
  parts.push(`<polyline class="total" points="${line('total')}"/>`);
  parts.push(`<polyline class="active" points="${line('active')}"/>`);
  const last = samples[samples.length - 1];
  parts.push(`<circle class="active" cx="${sx(last.height).toFixed(1)}" cy="${sy(last.active).toFixed(1)}" r="3"/>`);
  parts.push('</svg>');
  parts.push(
    '<div class="legend"><span class="key active"></span>active TVL <span class="key total"></span>total TVL' +
      (cap ? ' <span class="key cap"></span>staking cap' : '') +
      ' <span class="muted">(BTC, by block height)</span></div>',
  );
  return parts.join('');
}
