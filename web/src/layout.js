// Where each site sits: its coordinates through a map projection, a force layout for sites without them.
import { geoMercator } from 'd3-geo';
import { forceCollide, forceLink, forceManyBody, forceSimulation, forceX, forceY } from 'd3-force';

const MARGIN_DEG = 1.5; // around the sites' bounding box, so no site sits on the edge
const TICKS = 300; // the force layout runs to rest before drawing: same topology, same picture
const DECLUTTER_RADIUS = 34; // half the height a site's name, marker and figures need
const LABEL_ASPECT = 2.2; // their width over their height

const hasCoordinates = (site) => Number.isFinite(site.lat) && Number.isFinite(site.lon);

/**
 * @param {Array} sites  map state sites (name, lat, lon)
 * @param {Array} links  map state links (a, b, configured.delay_ms)
 * @returns {{pos: Map<string, {x: number, y: number, placed: string}>, projection: Function|null}}
 */
export function layout(sites, links, width, height, pad = 70) {
  const pos = new Map();
  const located = sites.filter(hasCoordinates);
  let projection = null;
  if (located.length) {
    const lons = located.map((s) => s.lon);
    const lats = located.map((s) => s.lat);
    const box = {
      type: 'MultiPoint',
      coordinates: [[Math.min(...lons) - MARGIN_DEG, Math.min(...lats) - MARGIN_DEG],
        [Math.max(...lons) + MARGIN_DEG, Math.max(...lats) + MARGIN_DEG]],
    };
    projection = geoMercator().fitExtent([[pad, pad], [width - pad, height - pad]], box);
    // Land is drawn a drawing's size beyond the view box: a page wider or taller than it still shows land.
    projection.clipExtent([[-width, -height], [2 * width, 2 * height]]);
    for (const site of declutter(located.map((s) => {
      const [x, y] = projection([s.lon, s.lat]);
      return { id: s.name, x, y, anchorX: x, anchorY: y };
    }))) {
      pos.set(site.id, {
        x: site.x, y: site.y, anchor: { x: site.anchorX, y: site.anchorY }, placed: 'coordinates',
      });
    }
  }
  const free = sites.filter((s) => !pos.has(s.name));
  if (!free.length) return { pos, projection };

  const nodes = sites.map((s) => (pos.has(s.name)
    ? { id: s.name, fx: pos.get(s.name).x, fy: pos.get(s.name).y }
    : { id: s.name }));
  const names = new Set(sites.map((s) => s.name));
  const edges = links.filter((l) => names.has(l.a) && names.has(l.b)).map((l) => ({
    source: l.a, target: l.b, delay: (l.configured && l.configured.delay_ms) || 1,
  }));
  const simulation = forceSimulation(nodes)
    .force('link', forceLink(edges).id((d) => d.id).distance((e) => 90 + 7 * Math.min(e.delay, 40)).strength(0.7))
    .force('charge', forceManyBody().strength(-700))
    .force('collide', forceCollide(55))
    .force('x', forceX(width / 2).strength(0.04))
    .force('y', forceY(height / 2).strength(0.04))
    .stop();
  for (let i = 0; i < TICKS; i += 1) simulation.tick();

  if (!located.length) {
    alongWidth(nodes);
    fitInto(nodes, width, height, pad);
  }
  for (const node of nodes) {
    if (pos.has(node.id)) continue;
    const x = Math.min(width - pad / 2, Math.max(pad / 2, node.x));
    const y = Math.min(height - pad / 2, Math.max(pad / 2, node.y));
    pos.set(node.id, { x, y, placed: 'force' });
  }
  return { pos, projection };
}

// Sites closer than a marker and its label (a city and its data centre) are pushed apart a little,
// each pulled back towards its true place; the page draws a leader line to that place.
// Collision runs with x squeezed by LABEL_ASPECT: a site then needs LABEL_ASPECT times more room across
// (its name and figures are wide) than up and down.
function declutter(nodes) {
  for (const d of nodes) {
    d.x /= LABEL_ASPECT;
    d.anchorX /= LABEL_ASPECT;
  }
  const simulation = forceSimulation(nodes)
    .force('collide', forceCollide(DECLUTTER_RADIUS).strength(0.9))
    .force('x', forceX((d) => d.anchorX).strength(0.2))
    .force('y', forceY((d) => d.anchorY).strength(0.2))
    .stop();
  for (let i = 0; i < TICKS; i += 1) simulation.tick();
  for (const d of nodes) {
    d.x *= LABEL_ASPECT;
    d.anchorX *= LABEL_ASPECT;
  }
  return nodes;
}

// Turn a free layout so its longest extent runs along the (wider) horizontal: its principal axis.
function alongWidth(nodes) {
  const n = nodes.length;
  if (n < 2) return;
  const mx = nodes.reduce((s, d) => s + d.x, 0) / n;
  const my = nodes.reduce((s, d) => s + d.y, 0) / n;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (const d of nodes) {
    sxx += (d.x - mx) ** 2;
    syy += (d.y - my) ** 2;
    sxy += (d.x - mx) * (d.y - my);
  }
  const angle = -0.5 * Math.atan2(2 * sxy, sxx - syy);
  const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
  for (const d of nodes) {
    const [x, y] = [d.x - mx, d.y - my];
    d.x = mx + x * cos - y * sin;
    d.y = my + x * sin + y * cos;
  }
}

// Scale and centre free nodes into the drawing, keeping their proportions.
function fitInto(nodes, width, height, pad) {
  const xs = nodes.map((n) => n.x);
  const ys = nodes.map((n) => n.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const spanX = Math.max(x1 - x0, 1);
  const spanY = Math.max(y1 - y0, 1);
  const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY, 2.5);
  const offsetX = (width - spanX * scale) / 2;
  const offsetY = (height - spanY * scale) / 2;
  for (const node of nodes) {
    node.x = offsetX + (node.x - x0) * scale;
    node.y = offsetY + (node.y - y0) * scale;
  }
}
