// Small DOM helpers: SVG and HTML elements with attributes, number formatting.
const SVG_NS = 'http://www.w3.org/2000/svg';
const SVG_TAGS = new Set(['svg', 'g', 'line', 'path', 'circle', 'rect', 'text', 'title', 'defs', 'marker',
  'polyline']);

export function el(tag, attrs = {}, parent = null) {
  const node = SVG_TAGS.has(tag) ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  if (parent) parent.appendChild(node);
  return node;
}

export function html(tag, attrs = {}, text = null, parent = null) {
  const node = el(tag, attrs, parent);
  if (text !== null) node.textContent = text;
  return node;
}

export function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return Number(value).toFixed(digits).replace(/\.0+$/, '');
}
