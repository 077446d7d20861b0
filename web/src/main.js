// The cpn_net map: one page, live over Server-Sent Events from the controller (GET /events).
// Everything it draws comes from the map state the controller computes (GET /map/state); the page
// keeps no rules of its own about what is degraded or alarming.
import { layout } from './layout.js';
import { drawMap, highlight, updateMap } from './render.js';
import { renderDetails, renderLists } from './panel.js';

const WIDTH = 1000;
const HEIGHT = 640;
const STALE_MS = 5000; // no update for this long: the page says so
const HISTORY_REFRESH_MS = 2000;
const MAX_LAGS = 600;

const app = {
  state: null,
  shape: null,
  placed: null,
  selection: null,
  history: null,
  showSteering: true,
  lastUpdate: 0,
  stats: { firstRenderMs: null, updates: 0, lagsMs: [] },
};
window.cpnMap = app; // for tests and the curious: the state, the selection, load time and update lags

const svg = () => document.getElementById('map');

function shapeOf(state) {
  return JSON.stringify([state.sites.map((s) => [s.name, s.lat, s.lon, s.kind]), state.links.map((l) => l.id)]);
}

function apply(state) {
  app.state = state;
  const shape = shapeOf(state);
  if (shape !== app.shape) {
    app.shape = shape;
    app.placed = layout(state.sites, state.links, WIDTH, HEIGHT);
    drawMap(svg(), state, app.placed, select);
  }
  updateMap(svg(), state, app.placed, app.selection, app.showSteering);
  renderLists(state, app.selection, select);
  renderDetails(state, app.selection, app.history);
  const now = Date.now();
  app.lastUpdate = now;
  app.stats.updates += 1;
  // How far the page is behind the telemetry view it shows (one host clock for both).
  const lag = now - 1000 * (state.telemetry_at || state.at);
  app.stats.lagsMs.push(Math.round(lag));
  if (app.stats.lagsMs.length > MAX_LAGS) app.stats.lagsMs.shift();
  const root = document.documentElement;
  root.dataset.updatedAt = String(state.at);
  root.dataset.lagMs = String(Math.round(lag));
  if (app.stats.firstRenderMs === null) {
    app.stats.firstRenderMs = Math.round(performance.now()); // since navigation started
    root.dataset.ready = 'true';
  }
  showLive();
}

function select(selection) {
  const same = app.selection && selection && app.selection.kind === selection.kind && app.selection.id === selection.id;
  app.selection = same ? null : selection;
  app.history = null;
  if (app.selection && app.selection.kind === 'link') fetchHistory();
  if (app.state) {
    highlight(svg(), app.state, app.selection);
    renderLists(app.state, app.selection, select);
    renderDetails(app.state, app.selection, app.history);
  }
}

async function fetchHistory() {
  const wanted = app.selection;
  if (!wanted || wanted.kind !== 'link') return;
  try {
    const answer = await fetch(`/map/history/${encodeURIComponent(wanted.id)}`, { cache: 'no-store' });
    if (answer.ok && app.selection === wanted) {
      app.history = await answer.json();
      if (app.state) renderDetails(app.state, app.selection, app.history);
    }
  } catch (err) {
    // offline for a moment: the next refresh tries again
  }
}

function showLive() {
  const live = document.getElementById('live');
  const age = Date.now() - app.lastUpdate;
  if (live.dataset.connection === 'closed' || live.dataset.connection === 'reconnecting') return;
  if (!app.lastUpdate) return;
  const stale = age > STALE_MS;
  const connection = stale ? 'stale' : 'live';
  if (live.dataset.connection !== connection || !live.textContent.startsWith(connection)) {
    // a status region: its text changes only when the connection does, not with every update
    live.dataset.connection = connection;
    live.textContent = stale ? 'stale: no update' : 'live';
  }
  const lag = app.stats.lagsMs[app.stats.lagsMs.length - 1];
  document.getElementById('lag').textContent = stale ? `last update ${Math.round(age / 1000)} s ago`
    : `${lag} ms behind the telemetry`;
}

function connect() {
  const live = document.getElementById('live');
  const source = new EventSource('/events');
  source.addEventListener('state', (event) => apply(JSON.parse(event.data)));
  source.addEventListener('open', () => {
    live.dataset.connection = 'live';
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      // refused (e.g. 503: too many streams): EventSource gives up, so try again ourselves
      live.dataset.connection = 'closed';
      live.textContent = 'disconnected; retrying…';
      setTimeout(connect, 3000);
    } else {
      live.dataset.connection = 'reconnecting';
      live.textContent = 'reconnecting…';
    }
  });
}

function start() {
  const toggle = document.getElementById('show-steering');
  toggle.addEventListener('change', () => {
    app.showSteering = toggle.checked;
    if (app.state) updateMap(svg(), app.state, app.placed, app.selection, app.showSteering);
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && app.selection) select(app.selection);
  });
  setInterval(showLive, 1000);
  setInterval(fetchHistory, HISTORY_REFRESH_MS);
  connect();
}

start();
