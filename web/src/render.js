// The SVG map: land, links, steering arrows, alarm markers and sites; drawn once per topology,
// updated in place for every state so focus and selection survive updates.
import { geoPath } from 'd3-geo';
import { feature } from 'topojson-client';
import countries from 'world-atlas/countries-110m.json';
import { el, fmt } from './dom.js';
import { linkColour, linkWidth } from './colour.js';

const SITE_RADIUS = 12;
let land = null; // GeoJSON of the world's countries, converted once

export function drawMap(svg, state, placed, onSelect) {
  svg.replaceChildren();
  const defs = el('defs', {}, svg);
  const marker = el('marker', {
    id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 11, markerHeight: 11,
    markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse',
  }, defs);
  el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' }, marker);

  if (placed.projection) {
    land = land || feature(countries, countries.objects.countries);
    const path = geoPath(placed.projection);
    const g = el('g', { class: 'land', 'aria-hidden': 'true' }, svg);
    for (const country of land.features) {
      const d = path(country);
      if (d) el('path', { d }, g);
    }
  }
  const linkLayer = el('g', { class: 'links' }, svg);
  for (const link of state.links) {
    const a = placed.pos.get(link.a);
    const b = placed.pos.get(link.b);
    if (!a || !b) continue;
    const g = el('g', {
      class: 'link', 'data-link': link.id, 'data-state': link.state, tabindex: 0, role: 'button',
    }, linkLayer);
    el('line', { class: 'hit', x1: a.x, y1: a.y, x2: b.x, y2: b.y }, g);
    el('line', { class: 'wire', x1: a.x, y1: a.y, x2: b.x, y2: b.y }, g);
    el('title', {}, g);
    const label = el('text', { class: 'link-label', x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6 }, g);
    label.textContent = '';
    activate(g, () => onSelect({ kind: 'link', id: link.id }));
  }
  el('g', { class: 'steering' }, svg);
  el('g', { class: 'alarm-markers', 'aria-hidden': 'true' }, svg);
  const leaders = el('g', { class: 'leaders', 'aria-hidden': 'true' }, svg);
  const siteLayer = el('g', { class: 'sites' }, svg);
  for (const site of state.sites) {
    const p = placed.pos.get(site.name);
    if (!p) continue;
    if (p.anchor && Math.hypot(p.x - p.anchor.x, p.y - p.anchor.y) > 3) {
      // moved off its coordinates to stay readable: a line back to where it really is
      el('line', { x1: p.anchor.x, y1: p.anchor.y, x2: p.x, y2: p.y }, leaders);
      el('circle', { cx: p.anchor.x, cy: p.anchor.y, r: 2.5 }, leaders);
    }
    const g = el('g', {
      class: 'site', 'data-site': site.name, 'data-kind': site.kind, 'data-placed': p.placed,
      transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'button',
    }, siteLayer);
    if (site.kind === 'demand') {
      el('rect', { class: 'marker', x: -9, y: -9, width: 18, height: 18, transform: 'rotate(45)' }, g);
    } else {
      el('circle', { class: 'marker', r: SITE_RADIUS }, g);
      if (site.kind === 'mixed') el('circle', { class: 'clients-dot', r: 4 }, g);
      el('path', { class: 'load-arc' }, g);
    }
    el('title', {}, g);
    const name = el('text', { class: 'site-name', y: -SITE_RADIUS - 8 }, g);
    name.textContent = site.name;
    el('text', { class: 'site-info', y: SITE_RADIUS + 16 }, g);
    activate(g, () => onSelect({ kind: 'site', id: site.name }));
  }
}

// Click and keyboard (Enter, Space) select, as a button would.
function activate(node, action) {
  node.addEventListener('click', action);
  node.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      action();
    }
  });
}

export function updateMap(svg, state, placed, selection, showSteering) {
  for (const link of state.links) {
    const g = svg.querySelector(`g.link[data-link="${CSS.escape(link.id)}"]`);
    if (!g) continue;
    g.dataset.state = link.state;
    g.dataset.measured = String(link.measured);
    const wire = g.querySelector('line.wire');
    wire.setAttribute('stroke', linkColour(link));
    wire.setAttribute('stroke-width', linkWidth(link));
    const text = linkText(link);
    g.querySelector('title').textContent = text;
    g.setAttribute('aria-label', text);
    const worst = link.directions.reduce((m, d) => Math.max(m, d.loss_pct || 0), 0);
    g.querySelector('text.link-label').textContent = link.state === 'down' ? 'down'
      : worst >= 1 ? `${fmt(worst, 1)} % loss` : '';
  }
  for (const site of state.sites) {
    const g = svg.querySelector(`g.site[data-site="${CSS.escape(site.name)}"]`);
    if (!g) continue;
    const arc = g.querySelector('path.load-arc');
    if (arc) arc.setAttribute('d', loadArc(site.load));
    const info = [];
    if (site.load != null) info.push(`${fmt(100 * site.load, 0)} % load`);
    if (site.surplus_rps != null) info.push(`${fmt(site.surplus_rps, 0)} rps free`);
    if (site.price_cny_per_hour != null) info.push(`¥${fmt(site.price_cny_per_hour, 0)}/h`);
    g.querySelector('text.site-info').textContent = info.join(' · ');
    const text = `site ${site.name} (${site.kind})${info.length ? `: ${info.join(', ')}` : ''}`;
    g.querySelector('title').textContent = text;
    g.setAttribute('aria-label', text);
    g.dataset.healthy = String(site.healthy);
  }
  drawSteering(svg.querySelector('g.steering'), state, placed, showSteering);
  drawAlarmMarkers(svg.querySelector('g.alarm-markers'), state, placed);
  highlight(svg, state, selection);
}

function linkText(link) {
  const parts = [`link ${link.a} to ${link.b}: ${link.state}`];
  for (const d of link.directions) {
    const bits = [];
    if (d.delay_ms != null) bits.push(`${fmt(d.delay_ms, 2)} ms (configured ${fmt(link.configured.delay_ms, 1)})`);
    if (d.loss_pct != null) bits.push(`${fmt(d.loss_pct, 2)} % loss`);
    if (d.throughput_mbps != null) bits.push(`${fmt(d.throughput_mbps, 2)} Mbit/s`);
    if (bits.length) parts.push(`${d.from}→${d.to} ${bits.join(', ')}`);
  }
  if (link.reasons.length) parts.push(link.reasons.join('; '));
  return parts.join('. ');
}

// An arc around the site's marker, clockwise from the top, for a load in 0..1.
function loadArc(load) {
  if (load == null || load <= 0) return '';
  const r = SITE_RADIUS + 4;
  const angle = Math.min(load, 0.9999) * 2 * Math.PI;
  const x = r * Math.sin(angle);
  const y = -r * Math.cos(angle);
  return `M0,${-r} A${r},${r} 0 ${angle > Math.PI ? 1 : 0} 1 ${x.toFixed(2)},${y.toFixed(2)}`;
}

// One arrow per client site, service and instance site (a site's instances share it), as wide as their share.
function siteArrows(steering) {
  const merged = new Map();
  for (const arrow of steering) {
    const key = `${arrow.from}|${arrow.service}|${arrow.to}`;
    const entry = merged.get(key) || { ...arrow, share: 0, instances: [], preferred: false };
    entry.share += arrow.share;
    entry.instances.push(`${arrow.instance} ${fmt(100 * arrow.share, 0)} %`);
    entry.preferred = entry.preferred || arrow.preferred;
    merged.set(key, entry);
  }
  return [...merged.values()];
}

function drawSteering(layer, state, placed, show) {
  layer.replaceChildren();
  layer.style.display = show ? '' : 'none';
  const bySite = new Map();
  for (const arrow of siteArrows(state.steering)) {
    const a = placed.pos.get(arrow.from);
    const b = placed.pos.get(arrow.to);
    if (!a || !b) continue;
    const n = bySite.get(arrow.from) || 0;
    bySite.set(arrow.from, n + 1);
    let d;
    let width = 1.2 + 6 * arrow.share;
    if (arrow.from === arrow.to) {
      // An instance at the client's own site: a loop on the site's left.
      const reach = 34 + 8 * n;
      d = `M${a.x - SITE_RADIUS},${a.y - 5} C${a.x - reach},${a.y - reach * 0.8} ${a.x - reach},${a.y + reach * 0.8} `
        + `${a.x - SITE_RADIUS - 3},${a.y + 6}`;
      width = Math.min(width, 3);
    } else {
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const length = Math.hypot(dx, dy) || 1;
      const bend = 28 + 10 * n;
      const cx = (a.x + b.x) / 2 - (dy / length) * bend;
      const cy = (a.y + b.y) / 2 + (dx / length) * bend;
      const end = SITE_RADIUS + 6;
      const ex = b.x - ((b.x - cx) / Math.hypot(b.x - cx, b.y - cy)) * end;
      const ey = b.y - ((b.y - cy) / Math.hypot(b.x - cx, b.y - cy)) * end;
      d = `M${a.x},${a.y} Q${cx},${cy} ${ex},${ey}`;
    }
    const path = el('path', {
      class: `steer${arrow.preferred ? ' preferred' : ''}`, d, 'stroke-width': width.toFixed(2),
      'marker-end': 'url(#arrow)', 'data-steer': `${arrow.from}|${arrow.service}|${arrow.to}`,
    }, layer);
    el('title', {}, path).textContent = `${arrow.from} → ${arrow.to} (${arrow.service}): `
      + `${fmt(100 * arrow.share, 0)} % of new flows (${arrow.instances.join(', ')})`;
  }
}

function drawAlarmMarkers(layer, state, placed) {
  layer.replaceChildren();
  const seen = new Set();
  for (const alarm of state.alarms) {
    let at = null;
    if (alarm.link && !seen.has(alarm.link)) {
      const link = state.links.find((l) => l.id === alarm.link);
      const a = link && placed.pos.get(link.a);
      const b = link && placed.pos.get(link.b);
      if (a && b) at = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 + 12 };
      seen.add(alarm.link);
    } else if (alarm.site && !seen.has(alarm.site)) {
      const p = placed.pos.get(alarm.site);
      if (p) at = { x: p.x + SITE_RADIUS + 8, y: p.y - SITE_RADIUS };
      seen.add(alarm.site);
    }
    if (!at) continue;
    const g = el('g', { class: `alarm-marker ${alarm.severity}`, transform: `translate(${at.x},${at.y})` }, layer);
    el('circle', { r: 8 }, g);
    el('text', { y: 4 }, g).textContent = '!';
  }
}

// The selected link, site, policy or slice stands out; the rest of the map dims.
export function highlight(svg, state, selection) {
  const links = new Set();
  const sites = new Set();
  if (selection) {
    let pairs = [];
    if (selection.kind === 'policy') {
      const policy = state.policies.find((p) => p.name === selection.id);
      if (policy) {
        pairs = policy.links;
        policy.path.forEach((s) => sites.add(s));
      }
    } else if (selection.kind === 'slice') {
      const item = state.slices.find((s) => s.name === selection.id);
      if (item) pairs = item.links;
      pairs.forEach(([a, b]) => { sites.add(a); sites.add(b); });
    } else if (selection.kind === 'link') {
      links.add(selection.id);
    } else if (selection.kind === 'site') {
      sites.add(selection.id);
    }
    for (const [a, b] of pairs) {
      const link = state.links.find((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a));
      if (link) links.add(link.id);
    }
  }
  svg.classList.toggle('has-selection', Boolean(selection));
  for (const g of svg.querySelectorAll('g.link')) g.dataset.highlight = String(links.has(g.dataset.link));
  for (const g of svg.querySelectorAll('g.site')) g.dataset.highlight = String(sites.has(g.dataset.site));
}
