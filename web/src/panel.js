// The side panel: alarms, SR policies, slices, steering, and the details of the selection
// (a link's last 5 minutes of delay and loss beside the emulator's ground truth: fault tracing).
import { el, fmt, html } from './dom.js';

const rendered = new Map(); // list id -> JSON of what it shows, so unchanged lists keep focus

function list(id, items, key, make) {
  const signature = JSON.stringify(items.map(key));
  if (rendered.get(id) === signature) return;
  rendered.set(id, signature);
  const ul = document.getElementById(id);
  ul.replaceChildren();
  if (!items.length) html('li', { class: 'empty' }, 'none', ul);
  for (const item of items) ul.appendChild(make(item));
}

export function renderLists(state, selection, onSelect) {
  document.getElementById('topology-name').textContent = state.topology ? `· ${state.topology}` : '';
  document.getElementById('alarm-count').textContent = state.alarms.length ? `(${state.alarms.length})` : '';
  list('alarms', state.alarms, (a) => [a.kind, a.message], (alarm) => {
    const li = html('li', { class: `alarm ${alarm.severity}`, 'data-alarm': alarm.kind }, null);
    html('span', { class: 'severity' }, alarm.severity, li);
    const text = html('button', { type: 'button', class: 'link-button' }, alarm.message, li);
    const target = alarm.link ? { kind: 'link', id: alarm.link } : alarm.slice ? { kind: 'slice', id: alarm.slice }
      : alarm.site ? { kind: 'site', id: alarm.site } : null;
    if (target) text.addEventListener('click', () => onSelect(target));
    return li;
  });
  list('policies', state.policies, (p) => [p.name, p.path], (policy) => {
    const li = html('li', {}, null);
    const button = html('button', { type: 'button', 'data-policy': policy.name, 'aria-pressed': 'false' },
      `${policy.name}: ${policy.path.join(' → ')}`, li);
    button.addEventListener('click', () => onSelect({ kind: 'policy', id: policy.name }));
    return li;
  });
  list('slices', state.slices, (s) => [s.name, s.slo_state, s.links], (item) => {
    const li = html('li', {}, null);
    const button = html('button', { type: 'button', 'data-slice': item.name, 'aria-pressed': 'false',
      'data-slo': item.slo_state }, `${item.name}: ${item.slo_state}`, li);
    button.addEventListener('click', () => onSelect({ kind: 'slice', id: item.name }));
    return li;
  });
  document.getElementById('steering-policy').textContent = state.steering_policy ? `(${state.steering_policy})` : '';
  list('steering', state.steering, (a) => [a.from, a.service, a.instance, a.share], (arrow) => html('li', {
    'data-steer': `${arrow.from}|${arrow.service}|${arrow.instance}`,
  }, `${arrow.from} → ${arrow.instance} (${arrow.to}, ${arrow.service}): ${fmt(100 * arrow.share, 0)} %`));
  for (const button of document.querySelectorAll('#panel button[data-policy], #panel button[data-slice]')) {
    const kind = button.dataset.policy !== undefined ? 'policy' : 'slice';
    const pressed = selection && selection.kind === kind && selection.id === button.dataset[kind];
    button.setAttribute('aria-pressed', String(Boolean(pressed)));
  }
}

// Details of the selection, rebuilt for every state (the history chart keeps its own node).
export function renderDetails(state, selection, history) {
  const box = document.getElementById('details');
  const chart = box.querySelector('.charts');
  box.replaceChildren();
  if (!selection) {
    box.textContent = 'Select a link, a site, an SR policy or a slice.';
    return;
  }
  box.dataset.kind = selection.kind;
  box.dataset.id = selection.id;
  if (selection.kind === 'link') linkDetails(box, state, selection.id, history, chart);
  else if (selection.kind === 'policy') policyDetails(box, state, selection.id);
  else if (selection.kind === 'slice') sliceDetails(box, state, selection.id);
  else siteDetails(box, state, selection.id);
}

function gone(box, what) {
  html('p', {}, `${what} is gone.`, box);
}

function table(box, head, rows) {
  const t = html('table', {}, null, box);
  const tr = html('tr', {}, null, html('thead', {}, null, t));
  head.forEach((h) => html('th', { scope: 'col' }, h, tr));
  const body = html('tbody', {}, null, t);
  for (const row of rows) {
    const r = html('tr', {}, null, body);
    row.forEach((cell) => html('td', {}, cell, r));
  }
  return t;
}

function linkDetails(box, state, id, history, oldChart) {
  const link = state.links.find((l) => l.id === id);
  if (!link) return gone(box, `link ${id}`);
  html('h3', {}, `link ${link.a} ~ ${link.b}: ${link.state}`, box);
  if (link.reasons.length) html('p', { class: 'reasons' }, link.reasons.join('; '), box);
  const c = link.configured;
  html('p', {}, `configured ${fmt(c.delay_ms, 2)} ms, ${fmt(c.loss_pct, 2)} % loss, `
    + `${c.rate_mbps ? `${fmt(c.rate_mbps, 0)} Mbit/s` : 'no rate limit'}`, box);
  table(box, ['direction', 'delay ms', 'p99', 'truth ms', 'loss %', 'truth %', 'Mbit/s'], link.directions.map((d) => [
    `${d.from}→${d.to}`, fmt(d.delay_ms, 2), fmt(d.delay_p99_ms, 2), fmt(d.truth_delay_ms, 2), fmt(d.loss_pct, 2),
    fmt(d.truth_loss_pct, 2), fmt(d.throughput_mbps, 2)]));
  const charts = oldChart && oldChart.dataset.link === id ? oldChart : html('div', { class: 'charts', 'data-link': id });
  box.appendChild(charts);
  if (history && history.link === id) drawCharts(charts, history);
  else if (!charts.childElementCount) charts.textContent = 'loading the last 5 minutes…';
}

function policyDetails(box, state, name) {
  const policy = state.policies.find((p) => p.name === name);
  if (!policy) return gone(box, `policy ${name}`);
  html('h3', {}, `SR policy ${policy.name}`, box);
  html('p', {}, `${policy.headend} → ${policy.to} (${policy.objective || 'min_delay'}), path delay `
    + `${fmt(policy.path_delay_ms, 2)} ms`, box);
  html('p', { 'data-path': policy.path.join(' ') }, `path: ${policy.path.join(' → ')}`, box);
  html('p', {}, 'segment list (travel order):', box);
  const ol = html('ol', { class: 'segments', 'data-segments': policy.segments.join(' ') }, null, box);
  policy.segments.forEach((sid) => html('li', {}, sid, ol));
}

function sliceDetails(box, state, name) {
  const item = state.slices.find((s) => s.name === name);
  if (!item) return gone(box, `slice ${name}`);
  html('h3', {}, `slice ${item.name}: ${item.state}, SLO ${item.slo_state}`, box);
  const bounds = [`${fmt(item.rate_mbps, 1)} Mbit/s guaranteed`];
  if (item.max_latency_ms != null) bounds.push(`latency ≤ ${fmt(item.max_latency_ms, 2)} ms`);
  if (item.max_loss_pct != null) bounds.push(`loss ≤ ${fmt(item.max_loss_pct, 2)} %`);
  html('p', {}, bounds.join(', '), box);
  if (item.refusal) html('p', { class: 'reasons' }, item.refusal, box);
  const ok = (v) => (v === true ? 'ok' : v === false ? 'VIOLATED' : '–');
  table(box, ['pair', 'path', 'delay ms', 'delay', 'loss %', 'loss'], item.pairs.map((p) => [
    `${p.from}→${p.to}`, (p.path || []).join(' → '), fmt(p.delay_ms, 2), ok(p.delay_ok), fmt(p.loss_pct, 3),
    ok(p.loss_ok)]));
}

function siteDetails(box, state, name) {
  const site = state.sites.find((s) => s.name === name);
  if (!site) return gone(box, `site ${name}`);
  html('h3', {}, `site ${site.name} (${site.kind})`, box);
  const facts = [];
  if (site.lat != null) facts.push(`at ${fmt(site.lat, 2)}°, ${fmt(site.lon, 2)}°`);
  if (site.compute.length) facts.push(`compute ${site.compute.join(', ')}`);
  if (site.clients.length) facts.push(`clients ${site.clients.join(', ')}`);
  html('p', {}, facts.join('; '), box);
  if (site.compute.length) {
    table(box, ['load', 'surplus rps', 'capacity rps', 'price ¥/h'], [[
      site.load == null ? '–' : `${fmt(100 * site.load, 0)} %`, fmt(site.surplus_rps, 0), fmt(site.capacity_rps, 0),
      fmt(site.price_cny_per_hour, 1)]]);
  }
  const flows = state.steering.filter((a) => a.from === site.name || a.to === site.name);
  if (flows.length) {
    html('p', {}, 'steering:', box);
    const ul = html('ul', {}, null, box);
    flows.forEach((a) => html('li', {}, `${a.from} → ${a.instance} (${a.service}): ${fmt(100 * a.share, 0)} %`, ul));
  }
}

// Two charts of the last 5 minutes: delay (measured per direction, ground truth dashed) and block loss.
const CHART = { width: 300, height: 110, left: 34, right: 6, top: 8, bottom: 18 };
const DIRECTION_COLOURS = ['#1f6feb', '#a040c0'];

function drawCharts(box, history) {
  box.replaceChildren();
  const now = history.now;
  // The axis spans the window, or less while the history is younger than it (just after boot).
  const first = Math.min(...history.directions.flatMap((d) => [...d.delay, ...d.loss].map((row) => row[0])), now);
  const from = Math.max(now - history.window_s, first - 1);
  const cuts = history.directions.flatMap((d) => d.loss.filter((row) => row[4]).map((row) => row[0]));
  chart(box, 'delay', 'one-way delay (ms)', from, now, cuts, history.directions.map((d, i) => [
    { points: d.delay.map(([t, ms]) => [t, ms]), colour: DIRECTION_COLOURS[i], label: `${d.from}→${d.to}` },
    { points: d.delay.map(([t, , truth]) => [t, truth]), colour: DIRECTION_COLOURS[i], dashed: true,
      label: `${d.from}→${d.to} ground truth` },
  ]).flat(), 1);
  chart(box, 'loss', 'block loss (%)', from, now, cuts, history.directions.map((d, i) => [
    { points: d.loss.map(([t, pct]) => [t, pct]), colour: DIRECTION_COLOURS[i], label: `${d.from}→${d.to}` },
    { points: d.loss.map(([t, , truth]) => [t, truth]), colour: DIRECTION_COLOURS[i], dashed: true,
      label: `${d.from}→${d.to} element drops` },
  ]).flat(), 5);
  const legend = html('p', { class: 'chart-note' }, null, box);
  history.directions.forEach((d, i) => {
    html('span', { class: 'swatch', style: `background:${DIRECTION_COLOURS[i]}` }, null, legend);
    legend.append(`${d.from}→${d.to}  `);
  });
  legend.append('. Solid: measured (IOAM delay, alternate-marking block loss); dashed: the emulator\'s ground truth '
    + '(the link element\'s delay setting and its own drops in each block); red band: the link was cut. '
    + 'Up to the last 5 minutes.');
}

function ago(seconds) {
  return seconds >= 90 ? `−${Math.round(seconds / 60)} min` : `−${Math.round(seconds)} s`;
}

function chart(box, kind, title, t0, t1, cuts, lines, minTop) {
  html('p', { class: 'chart-title' }, title, box);
  const svg = el('svg', {
    class: 'chart', 'data-chart': kind, viewBox: `0 0 ${CHART.width} ${CHART.height}`, role: 'img',
    'aria-label': `${title}, last 5 minutes`,
  }, box);
  const values = lines.flatMap((l) => l.points.map(([, v]) => v)).filter((v) => v != null && Number.isFinite(v));
  const top = Math.max(minTop, ...values) * 1.1;
  const x = (t) => CHART.left + ((t - t0) / (t1 - t0)) * (CHART.width - CHART.left - CHART.right);
  const y = (v) => CHART.height - CHART.bottom - (v / top) * (CHART.height - CHART.top - CHART.bottom);
  el('line', { class: 'axis', x1: CHART.left, y1: y(0), x2: CHART.width - CHART.right, y2: y(0) }, svg);
  el('line', { class: 'axis', x1: CHART.left, y1: CHART.top, x2: CHART.left, y2: y(0) }, svg);
  el('text', { class: 'tick', x: CHART.left - 3, y: CHART.top + 8, 'text-anchor': 'end' }, svg)
    .textContent = fmt(top, top < 10 ? 1 : 0);
  el('text', { class: 'tick', x: CHART.left - 3, y: y(0), 'text-anchor': 'end' }, svg).textContent = '0';
  el('text', { class: 'tick', x: CHART.left, y: CHART.height - 4 }, svg).textContent = ago(t1 - t0);
  for (const t of cuts.filter((c) => c >= t0)) {
    // one block (1 s) read while the link was cut
    el('rect', { class: 'cut', x: x(t - 1), y: CHART.top, width: Math.max(2, x(t) - x(t - 1)),
      height: y(0) - CHART.top }, svg);
  }
  el('text', { class: 'tick', x: CHART.width - CHART.right, y: CHART.height - 4, 'text-anchor': 'end' }, svg)
    .textContent = 'now';
  for (const line of lines) {
    const pts = line.points.filter(([t, v]) => v != null && Number.isFinite(v) && t >= t0);
    if (!pts.length) continue;
    const poly = el('polyline', {
      points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '), fill: 'none',
      stroke: line.colour, 'stroke-width': line.dashed ? 1.2 : 1.6, 'stroke-dasharray': line.dashed ? '4 3' : null,
      'data-series': line.label,
    }, svg);
    el('title', {}, poly).textContent = line.label;
  }
}
