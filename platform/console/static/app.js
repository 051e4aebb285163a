// aiaas console: plain ES module, no framework. The key lives only in
// sessionStorage and travels only in the Authorization header.
import { lineChart, quantile } from './chart.js?v=dev';
import { toMNIST, drawHeat } from './mnist.js?v=dev';
import { setupText, errorMessage } from './text.js?v=dev';

const $ = id => document.getElementById(id);
const KEY = 'aiaas.key';
const timers = new Set();

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : String(k ?? ''));
  return e;
}

function table(cols, rows) {
  return el('table', {}, el('thead', {}, el('tr', {}, ...cols.map(c => el('th', { scope: 'col' }, c)))),
    el('tbody', {}, ...rows.map(r => el('tr', {}, ...r.map(c => el('td', {}, c))))));
}

class Refused extends Error {}

// request sends the key and returns the response; an error answer throws
// with the server's message (either error shape), a 401 signs out.
async function request(path, opts = {}) {
  const key = sessionStorage.getItem(KEY);
  const headers = { Authorization: 'Bearer ' + key, ...(opts.headers || {}) };
  const res = await fetch(path, { ...opts, headers, credentials: 'omit', cache: 'no-store' });
  if (res.status === 401) { signOut('Key refused.'); throw new Refused('key refused'); }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(errorMessage(body, res.status, res.statusText));
  }
  return res;
}

async function api(path, opts = {}) {
  const res = await request(path, opts);
  return res.json().catch(() => ({}));
}

function status(msg) { $('status').textContent = msg || ''; }

function signOut(msg) {
  sessionStorage.removeItem(KEY);
  text.abort();
  for (const t of timers) clearInterval(t);
  timers.clear();
  $('app').hidden = true; $('signout').hidden = true; $('signin').hidden = false;
  $('key').value = '';
  status(msg);
  $('key').focus();
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    await api('/v1/models');
  } catch (e) {
    if (!(e instanceof Refused)) { status('Sign-in failed: ' + e.message); sessionStorage.removeItem(KEY); }
    return;
  }
  status('');
  $('signin').hidden = true; $('app').hidden = false; $('signout').hidden = false;
  loadAll();
}

function every(ms, fn) { fn(); const t = setInterval(fn, ms); timers.add(t); return t; }

function loadAll() {
  const guard = fn => () => fn().catch(e => { if (!(e instanceof Refused)) status(e.message); });
  guard(loadModels)();
  guard(loadPlugins)();
  guard(loadEndpoints)();
  every(2000, guard(loadJobs));
  every(5000, guard(loadAudit));
  every(3000, guard(loadMetrics));
}

// --- models ---------------------------------------------------------------

// The list is aria-busy while its cards load one by one (each card's
// details are a request of their own, and the cards push what follows down).
async function loadModels() {
  const list = $('model-list');
  list.setAttribute('aria-busy', 'true');
  try { await renderModels(list); } finally { list.setAttribute('aria-busy', 'false'); }
}

async function renderModels(list) {
  const { models = [] } = await api('/v1/models');
  list.replaceChildren();
  if (!models.length) list.append(el('p', { class: 'muted' }, 'No models yet.'));
  for (const m of models) {
    const card = el('div', { class: 'card model', 'data-model': m.name });
    const aliases = Object.entries(m.aliases || {}).map(([a, v]) => `${a}→v${v.version}`).join(', ') || 'none';
    card.append(el('h3', {}, m.name), el('p', {}, `latest v${m.latest} · ${Array.isArray(m.versions) ? m.versions.length : m.versions} version(s) · aliases: ${aliases}`));
    list.append(card);
    const d = await api('/v1/models/' + encodeURIComponent(m.name));
    const v = (d.versions || []).find(x => x.version === m.latest) || (d.versions || []).at(-1);
    if (!v) continue;
    const met = v.metrics || {};
    if (Number.isFinite(met.test_accuracy)) {
      card.append(el('p', { class: 'accuracy' }, `v${v.version}: test accuracy ${pct(met.test_accuracy)}, test loss ${num(met.test_loss)} · ${v.params ?? '?'} parameters · ${v.size ?? '?'} bytes`));
    } else {
      const arch = v.architecture === 'graph' ? `graph, opset ${v.opset ?? '?'}` : (v.architecture || 'model');
      card.append(el('p', {}, `v${v.version}: ${arch} · ${v.params ?? '?'} parameters · ${v.size ?? '?'} bytes`));
    }
    if (v.provenance?.weights) card.append(el('p', { class: 'muted' }, `weights: ${v.provenance.weights}`));
    const sig = t => (t || []).map(x => `${x.name} ${x.datatype} [${(x.shape || []).join(',')}]`).join('; ');
    card.append(el('p', { class: 'muted' }, `inputs: ${sig(v.inputs)} → outputs: ${sig(v.outputs)}`));
    const ep = met.history?.epochs || [];
    if (ep.length) {
      const loss = el('canvas', { width: 300, height: 160, class: 'chart loss-chart', 'aria-label': `${m.name} loss per epoch` });
      const acc = el('canvas', { width: 300, height: 160, class: 'chart acc-chart', 'aria-label': `${m.name} accuracy per epoch` });
      card.append(loss, acc);
      lineChart(loss, [{ label: 'loss', color: '#b3261e', points: ep.map(e => e.loss) },
        { label: 'val loss', color: '#f59e0b', points: ep.map(e => e.val_loss) }]);
      lineChart(acc, [{ label: 'accuracy', color: '#0b57d0', points: ep.map(e => e.accuracy) },
        { label: 'val accuracy', color: '#16a34a', points: ep.map(e => e.val_accuracy) }], { yMax: 1 });
    }
  }
}

const pct = x => Number.isFinite(x) ? (100 * x).toFixed(2) + '%' : '?';
const num = x => Number.isFinite(x) ? x.toFixed(4) : '?';

async function loadPlugins() {
  const { plugins = [] } = await api('/v1/plugins');
  $('plugin-list').replaceChildren(table(['name', 'exports', 'ABI', 'size', 'sha256'],
    plugins.map(p => [p.name, (p.exports || []).join(', '), p.abi_version, p.size, (p.sha256 || '').slice(0, 12)])));
}

async function loadEndpoints() {
  const { endpoints = [] } = await api('/v1/endpoints');
  text.setEndpoints(endpoints);
  setPlayEndpoints(endpoints);
  $('endpoint-list').replaceChildren(table(['name', 'model', 'version', 'preprocess', 'postprocess', 'updated'],
    endpoints.map(e => [e.name, e.model, e.version, fmtList(e.preprocess), fmtList(e.postprocess), e.updated || e.created || ''])));
}
// An endpoint names at most one plugin per stage, as a plain string.
const fmtList = x => (typeof x === 'string' ? x : '');

// --- training ---------------------------------------------------------------

const jobCharts = new Map();

async function loadJobs() {
  const { jobs = [] } = await api('/v1/training-jobs');
  const list = $('job-list');
  for (const j0 of jobs.slice(-10).reverse()) {
    let j = j0;
    if (j.status === 'running' || j.status === 'queued' || !jobCharts.has(j.id)) {
      j = await api('/v1/training-jobs/' + encodeURIComponent(j0.id));
    }
    let card = jobCharts.get(j.id);
    if (!card) {
      card = el('div', { class: 'card job', 'data-job': j.id });
      jobCharts.set(j.id, card); list.prepend(card);
    } else if (card.dataset.done === '1') continue;
    const p = j.progress || {};
    const frac = p.epochs ? ((p.epoch - 1 + (p.batches ? p.batch / p.batches : 0)) / p.epochs) : 0;
    const bar = el('progress', { max: 1, value: j.status === 'succeeded' ? 1 : Math.max(0, Math.min(1, frac)), 'aria-label': `job ${j.id} progress` });
    const info = j.status === 'succeeded' && j.result ? `done: v${j.result.version}, test accuracy ${pct(j.result.test_accuracy)}`
      : j.status === 'failed' ? `failed: ${j.error || ''}`
        : `epoch ${p.epoch ?? 0}/${p.epochs ?? '?'}, batch ${p.batch ?? 0}/${p.batches ?? '?'}, loss ${num(p.loss)}, accuracy ${pct(p.accuracy)}`;
    const chart = el('canvas', { width: 300, height: 120, class: 'chart', 'aria-label': `job ${j.id} loss` });
    card.replaceChildren(el('h3', {}, `${j.model} · job ${j.id}`), el('p', { class: 'job-status' }, `${j.status}: ${info}`), bar, chart);
    const ep = j.epochs || [];
    lineChart(chart, [{ label: 'loss', color: '#b3261e', points: [...ep.map(e => e.loss), ...(j.status === 'running' && Number.isFinite(p.loss) ? [p.loss] : [])] }]);
    if (j.status === 'succeeded' || j.status === 'failed') card.dataset.done = '1';
    if (j.status === 'succeeded' && j0.status !== j.status) loadModels().catch(() => {});
  }
}

async function startJob(ev) {
  ev.preventDefault();
  const layers = $('job-layers').value.split(/[ ,]+/).filter(Boolean).map(Number);
  const body = { model: $('job-model').value, dataset: 'mnist', layers, epochs: Number($('job-epochs').value), limit: Number($('job-limit').value) };
  try {
    const j = await api('/v1/training-jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    status(''); jobCharts.delete(j.id);
    await loadJobs();
  } catch (e) { if (!(e instanceof Refused)) status('Training: ' + e.message); }
}

// --- metrics ------------------------------------------------------------------

const history = [];
async function loadMetrics() {
  const m = await api('/v1/metrics');
  const total = (m.requests || []).reduce((a, r) => a + r.count, 0);
  const errs = (m.requests || []).filter(r => String(r.status) >= '400').reduce((a, r) => a + r.count, 0);
  const now = Date.now() / 1000;
  const prev = history.at(-1);
  history.push({ t: now, total, errs });
  if (history.length > 60) history.shift();
  const rates = [], errRates = [];
  for (let i = 1; i < history.length; i++) {
    const dt = history[i].t - history[i - 1].t || 1;
    rates.push((history[i].total - history[i - 1].total) / dt);
    errRates.push((history[i].errs - history[i - 1].errs) / dt);
  }
  if (prev || history.length === 1) lineChart($('rate-chart'), [{ label: 'requests/s', color: '#0b57d0', points: rates }, { label: 'errors/s', color: '#b3261e', points: errRates }], { yMin: 0 });
  const ms = s => Number.isFinite(s) ? (1000 * s).toFixed(1) + ' ms' : '?';
  $('latency-table').replaceChildren(table(['action', 'model', 'count', 'mean', 'p50', 'p95'],
    (m.latency || []).map(l => [l.action, l.model || '', l.count, ms(l.count ? l.sum_seconds / l.count : NaN), ms(quantile(l.buckets, 0.5)), ms(quantile(l.buckets, 0.95))])));
}

async function loadAudit() {
  const { records = [] } = await api('/v1/audit?limit=50');
  $('audit-list').replaceChildren(table(['time', 'actor', 'action', 'object', 'status', 'ms'],
    records.slice().reverse().map(r => [r.time, r.actor, r.action, r.object || '', r.status, r.latency_ms])));
}

// --- playground -------------------------------------------------------------

function setupPad() {
  const pad = $('pad'), ctx = pad.getContext('2d');
  const clear = () => { ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, pad.width, pad.height); $('heat').getContext('2d').clearRect(0, 0, 280, 280); $('prediction').replaceChildren(); };
  clear();
  let drawing = false;
  const pos = e => { const r = pad.getBoundingClientRect(); return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height]; };
  pad.addEventListener('pointerdown', e => { drawing = true; pad.setPointerCapture(e.pointerId); const [x, y] = pos(e); ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.1, y); stroke(); });
  pad.addEventListener('pointermove', e => { if (!drawing) return; const [x, y] = pos(e); ctx.lineTo(x, y); stroke(); });
  pad.addEventListener('pointerup', () => { drawing = false; });
  function stroke() { ctx.strokeStyle = '#000'; ctx.lineWidth = 22; ctx.lineCap = 'round'; ctx.lineJoin = 'round'; ctx.stroke(); }
  $('clear').addEventListener('click', clear);
  $('play-endpoint').addEventListener('change', () => { showPlayModel(); clear(); });
  $('predict').addEventListener('click', () => predict().catch(e => { if (!(e instanceof Refused)) status('Prediction: ' + e.message); }));
}

// The playground's endpoints: those whose preprocess plugin turns an image
// into an MNIST tensor, for a dense model or a CNN alike.
let playEndpoints = [];
function setPlayEndpoints(endpoints) {
  playEndpoints = endpoints.filter(e => fmtList(e.preprocess) === 'png-to-tensor');
  const sel = $('play-endpoint'), keep = sel.value || 'mnist';
  sel.replaceChildren(...playEndpoints.map(e => el('option', { value: e.name }, `${e.name} (model ${e.model})`)));
  if (playEndpoints.some(e => e.name === keep)) sel.value = keep;
  showPlayModel();
}
function showPlayModel() {
  const e = playEndpoints.find(e => e.name === $('play-endpoint').value);
  $('play-model').textContent = e ? `model ${e.model}, version ${e.version}` : 'no endpoint with the png-to-tensor plugin';
}

async function predict() {
  const pad = $('pad');
  const input = toMNIST(pad);
  if (!input) { status('Draw a digit first.'); return; }
  const ep = playEndpoints.find(e => e.name === $('play-endpoint').value);
  if (!ep) { status('No endpoint takes images: create one with the png-to-tensor plugin.'); return; }
  status('');
  const png = await new Promise(r => pad.toBlob(r, 'image/png'));
  const res = await api(`/v1/endpoints/${encodeURIComponent(ep.name)}/invoke`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: png });
  $('prediction').replaceChildren(...(res.predictions || []).slice(0, 3).map(p =>
    el('li', { class: 'pred' }, el('strong', { class: 'label' }, p.label), ` ${pct(p.score)}`)));
  const ex = await api(`/v1/models/${encodeURIComponent(ep.model)}/explain`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ version: ep.version, input, method: 'integrated_gradients', steps: 32 }) });
  drawHeat($('heat'), input, ex.attributions || []);
  $('heat').dataset.drawn = '1';
}

// --- boot ---------------------------------------------------------------------

$('signin-form').addEventListener('submit', e => { e.preventDefault(); signIn($('key').value.trim()); });
$('signout').addEventListener('click', () => signOut('Signed out.'));
$('job-form').addEventListener('submit', startJob);
setupPad();
const text = setupText({ request, el, Refused });
const saved = sessionStorage.getItem(KEY);
if (saved) signIn(saved); else $('key').focus();
