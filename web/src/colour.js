// Link colour and width: measured delay against the configured delay, block loss, utilisation.
const GREEN = [46, 157, 79];
const AMBER = [232, 163, 23];
const RED = [214, 48, 43];
export const DOWN_COLOUR = '#7a1712';
export const UNMEASURED_COLOUR = '#9aa0a6';
const LOSS_FOR_RED_PCT = 10; // block loss at which a link is fully red
const DELAY_TOLERANCE_MS = 0.5; // what the emulated link and the routers add to any link: still as configured
const MIN_WIDTH = 2.5;
const UTILISATION_WIDTH = 10;

function mix(a, b, t) {
  return a.map((v, i) => Math.round(v + (b[i] - v) * t));
}

// 0: as configured, no loss; 1: twice the configured delay (plus the tolerance) or 10 % loss, or worse.
export function badness(link) {
  let score = 0;
  const configured = link.configured && link.configured.delay_ms;
  for (const d of link.directions) {
    if (d.delay_ms != null && configured) {
      const excess = Math.max(0, d.delay_ms - configured - DELAY_TOLERANCE_MS);
      score = Math.max(score, Math.min(1, excess / Math.max(configured, 1)));
    }
    if (d.loss_pct != null) score = Math.max(score, Math.min(1, d.loss_pct / LOSS_FOR_RED_PCT));
  }
  // Red means degraded: an ok link's noisy measurement reaches amber at most.
  return link.state === 'degraded' ? Math.max(score, 0.6) : Math.min(score, 0.45);
}

export function linkColour(link) {
  if (link.state === 'down') return DOWN_COLOUR;
  if (!link.measured) return UNMEASURED_COLOUR;
  const t = badness(link);
  const rgb = t < 0.5 ? mix(GREEN, AMBER, t * 2) : mix(AMBER, RED, (t - 0.5) * 2);
  return `rgb(${rgb.join(',')})`;
}

export function linkWidth(link) {
  return (MIN_WIDTH + UTILISATION_WIDTH * Math.min(1, link.utilisation || 0)).toFixed(2);
}
