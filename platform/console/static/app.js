// aiaas console: plain ES module, no framework. The key lives only in
// sessionStorage and travels only in the Authorization header.
import { chartBox, plot, destroyCharts, showEmpty, quantile } from './chart.js?v=dev';
import { sample, series } from './metrics.js?v=dev';
import { toMNIST, drawHeat } from './mnist.js?v=dev';
import { setupText, errorMessage } from './text.js?v=dev';
import { setupEvaluations } from './evaluations.js?v=dev';

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
// opts.allow404: a 404 is returned, not thrown (a route this server may
// not have).
async function request(path, opts = {}) {
  const key = sessionStorage.getItem(KEY);
  const { allow404, ...init } = opts;
  const headers = { Authorization: 'Bearer ' + key, ...(init.headers || {}) };
  const res = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
  if (res.status === 401) { signOut('Key refused.'); throw new Refused('key refused'); }
  if (res.status === 404 && allow404) return res;
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
  for (const t of timers) clearInterval(t); // clears timeouts too
  timers.clear();
  metricSamples.length = 0;
  evals.reset();
  $('app').hidden = true; $('signout').hidden = true; $('nav').hidden = true; $('signin').hidden = false;
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
  $('signin').hidden = true; $('app').hidden = false; $('signout').hidden = false; $('nav').hidden = false;
  route();
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
  every(4000, guard(evals.load));
  // A rate needs two samples: take the second one a second after the
  // first, so the chart has a point right away rather than after 3 s.
  metricSamples.length = 0;
  guard(loadMetrics)();
  timers.add(setTimeout(() => every(3000, guard(loadMetrics)), 1000));
}

// --- sections -----------------------------------------------------------------

// Each section is a page of its own, picked by the URL's fragment
// (#models, #metrics, …), so the back button, bookmarks and links work.
function sections() { return [...document.querySelectorAll('section.page')].filter(s => !s.dataset.unavailable); }

function route(focus = false) {
  const all = sections();
  const want = location.hash.slice(1);
  const cur = all.find(s => s.id === want) || all[0];
  for (const s of document.querySelectorAll('section.page')) s.hidden = s !== cur;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#' + cur.id) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = `${cur.querySelector('h2').textContent} · aiaas console`;
  // Moving focus to the heading tells screen-reader and keyboard users
  // where they are; on first display the sign-in button had it.
  if (focus) cur.querySelector('h2').focus({ preventScroll: true });
  window.scrollTo(0, 0);
}
window.addEventListener('hashchange', () => { if (!$('app').hidden) route(true); });

// --- models ---------------------------------------------------------------

// The list is aria-busy while its cards load one by one (each card's
// details are a request of their own). One load at a time: a call during
// a load asks for one more after it, so two never interleave their cards.
let modelsLoading = null, modelsAgain = false;
function loadModels() {
  if (modelsLoading) { modelsAgain = true; return modelsLoading; }
  const list = $('model-list');
  list.setAttribute('aria-busy', 'true');
  modelsLoading = renderModels(list).finally(() => {
    list.setAttribute('aria-busy', 'false');
    modelsLoading = null;
    if (modelsAgain) { modelsAgain = false; loadModels().catch(() => {}); }
  });
  return modelsLoading;
}

const COLORS = { loss: '#b3261e', valLoss: '#92400e', acc: '#0b57d0', valAcc: '#15803d', other: '#4b5563' };

async function renderModels(list) {
  const { models = [] } = await api('/v1/models');
  destroyCharts(list);
  list.replaceChildren();
  if (!models.length) list.append(el('p', { class: 'muted' }, 'No models yet: push one with aiaas model push, or start a training job.'));
  for (const m of models) {
    const card = el('article', { class: 'card model', 'data-model': m.name, 'aria-labelledby': 'model-h-' + m.name });
    const aliasOf = {};
    for (const [a, v] of Object.entries(m.aliases || {})) (aliasOf[v.version] ||= []).push(a);
    const aliases = Object.entries(m.aliases || {}).map(([a, v]) => `${a} → v${v.version}`).join(', ') || 'none';
    card.append(el('h3', { id: 'model-h-' + m.name }, m.name),
      el('p', {}, `latest v${m.latest} · ${Array.isArray(m.versions) ? m.versions.length : m.versions} version(s) · aliases: ${aliases}`));
    list.append(card);
    const d = await api('/v1/models/' + encodeURIComponent(m.name));
    const versions = d.versions || [];
    const v = versions.find(x => x.version === m.latest) || versions.at(-1);
    if (!v) continue;
    const met = v.metrics || {};
    if (Number.isFinite(met.test_accuracy)) {
      card.append(el('p', { class: 'accuracy' }, `v${v.version}: test accuracy ${pct(met.test_accuracy)}, test loss ${num(met.test_loss)} · ${v.params ?? '?'} parameters · ${v.size ?? '?'} bytes`));
    } else {
      card.append(el('p', {}, `v${v.version}: ${arch(v)} · ${v.params ?? '?'} parameters · ${v.size ?? '?'} bytes`));
    }
    if (v.provenance?.weights) card.append(el('p', { class: 'muted' }, `weights: ${v.provenance.weights}`));
    const sig = t => (t || []).map(x => `${x.name} ${x.datatype} [${(x.shape || []).join(',')}]`).join('; ');
    card.append(el('p', { class: 'muted' }, `inputs: ${sig(v.inputs)} → outputs: ${sig(v.outputs)}`));
    const vt = table(['version', 'aliases', 'created', 'architecture', 'parameters', 'size', 'test accuracy', 'test loss', 'forward pass, batch 1'],
      versions.slice().reverse().map(x => {
        const b1 = (x.latency?.batches || []).find(b => b.batch === 1);
        return ['v' + x.version, (aliasOf[x.version] || []).join(', '), (x.created || '').replace('T', ' ').replace(/\.\d+Z$/, ' UTC'), arch(x),
          x.params ?? '', bytes(x.size), pct(x.metrics?.test_accuracy, ''), num(x.metrics?.test_loss, ''), b1 ? `${(b1.median_ns / 1000).toFixed(1)} µs` : ''];
      }));
    vt.classList.add('versions');
    card.append(el('details', {}, el('summary', {}, `Versions (${versions.length})`), vt));
    const ep = met.history?.epochs || [];
    if (ep.length) {
      const charts = el('div', { class: 'charts' });
      const loss = chartBox('loss', `${m.name} v${v.version}: loss per epoch`, 'loss-chart');
      const acc = chartBox('accuracy', `${m.name} v${v.version}: accuracy per epoch`, 'acc-chart');
      charts.append(loss, acc);
      card.append(charts);
      const x = { label: 'epoch', values: ep.map((e, i) => e.epoch ?? i + 1) };
      const val = key => (ep.some(e => Number.isFinite(e[key])) ? [key] : []);
      plot(loss, { x, y: { label: 'loss' }, series: [
        { label: 'train loss', color: COLORS.loss, values: ep.map(e => e.loss) },
        ...val('val_loss').map(() => ({ label: 'validation loss', color: COLORS.valLoss, dash: [6, 4], values: ep.map(e => e.val_loss) })),
      ] });
      plot(acc, { x, y: { label: 'accuracy', unit: '%', max: 100, digits: 2 }, series: [
        { label: 'train accuracy', color: COLORS.acc, values: ep.map(e => 100 * e.accuracy) },
        ...val('val_accuracy').map(() => ({ label: 'validation accuracy', color: COLORS.valAcc, dash: [6, 4], values: ep.map(e => 100 * e.val_accuracy) })),
      ] });
    }
  }
}

const arch = v => (v.architecture === 'graph' ? `graph, opset ${v.opset ?? '?'}` : (v.architecture || 'model'));
const bytes = n => (!Number.isFinite(n) ? '' : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : n + ' B');
const pct = (x, none = '?') => (Number.isFinite(x) ? (100 * x).toFixed(2) + '%' : none);
const num = (x, none = '?') => (Number.isFinite(x) ? x.toFixed(4) : none);

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
      card = el('article', { class: 'card job', 'data-job': j.id },
        el('h3', {}, `${j.model} · job ${j.id}`), el('p', { class: 'job-status' }),
        el('progress', { max: 1, value: 0, 'aria-label': `job ${j.id} progress` }),
        el('div', { class: 'charts' }, chartBox('job-loss', `job ${j.id}: loss per epoch`, 'job-chart')));
      jobCharts.set(j.id, card); list.prepend(card);
    } else if (card.dataset.done === '1') continue;
    const p = j.progress || {};
    const frac = p.epochs ? ((p.epoch - 1 + (p.batches ? p.batch / p.batches : 0)) / p.epochs) : 0;
    card.querySelector('progress').setAttribute('value', j.status === 'succeeded' ? 1 : Math.max(0, Math.min(1, frac)));
    const info = j.status === 'succeeded' && j.result ? `done: v${j.result.version}, test accuracy ${pct(j.result.test_accuracy)}`
      : j.status === 'failed' ? `failed: ${j.error || ''}`
        : `epoch ${p.epoch ?? 0}/${p.epochs ?? '?'}, batch ${p.batch ?? 0}/${p.batches ?? '?'}, loss ${num(p.loss)}, accuracy ${pct(p.accuracy)}`;
    card.querySelector('.job-status').textContent = `${j.status}: ${info}`;
    // Finished epochs at whole numbers; while running, the current loss at
    // the fraction of the epoch done, so the curve grows as it trains.
    const ep = j.epochs || [];
    const xs = ep.map((e, i) => e.epoch ?? i + 1), loss = ep.map(e => e.loss), val = ep.map(e => e.val_loss);
    if (j.status === 'running' && Number.isFinite(p.loss) && p.batches && p.batch < p.batches) {
      xs.push((p.epoch - 1) + p.batch / p.batches); loss.push(p.loss); val.push(null);
    }
    plot(card.querySelector('.chart-box'), {
      x: { label: 'epoch', values: xs }, y: { label: 'loss' }, height: 180,
      empty: j.status === 'failed' ? 'No epochs finished.' : 'Waiting for the first batches…',
      series: [{ label: 'train loss', color: COLORS.loss, values: loss },
        ...(val.some(Number.isFinite) ? [{ label: 'validation loss', color: COLORS.valLoss, dash: [6, 4], values: val }] : [])],
    });
    if (j.status === 'succeeded' || j.status === 'failed') card.dataset.done = '1';
    // A job seen finishing from this page made a new version: show it.
    if (j.status === 'succeeded' && card.dataset.status && card.dataset.status !== j.status) loadModels().catch(() => {});
    card.dataset.status = j.status;
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

const metricSamples = [];

async function loadMetrics() {
  const m = await api('/v1/metrics');
  metricSamples.push(sample(m, Date.now() / 1000));
  if (metricSamples.length > 121) metricSamples.shift(); // 6 minutes
  const last = metricSamples.at(-1), s = series(metricSamples);
  const box = $('metric-charts');
  let rate = box.querySelector('[data-chart="rate"]'), lat = box.querySelector('[data-chart="latency"]');
  if (!rate) {
    rate = chartBox('rate', 'Requests per second', 'rate-chart');
    lat = chartBox('latency', 'Inference latency of the requests in each interval', 'latency-chart');
    box.append(rate, lat);
  }
  $('metrics-note').textContent = last.inference ? ''
    : 'No inference requests yet: invoke an endpoint (from the Playground, the Text section, or aiaas invoke) and they appear here.';
  const x = { label: 'time', time: true, values: s.t };
  plot(rate, { x, y: { label: 'rate', unit: 'requests/s', zero: true }, empty: 'Measuring: a rate needs two samples…', series: [
    { label: 'inference', color: COLORS.acc, values: s.inference },
    { label: 'control plane', color: COLORS.other, dash: [6, 4], values: s.other },
    { label: 'errors (4xx, 5xx)', color: COLORS.loss, values: s.errors },
  ] });
  if (!last.latencyCount) showEmpty(lat, 'No inference requests yet.');
  else {
    plot(lat, { x, y: { label: 'latency', unit: 'ms', zero: true }, empty: 'No inference requests since this page opened; the table below has the totals.', series: [
      { label: 'p50', color: COLORS.acc, values: s.p50 },
      { label: 'p95', color: COLORS.valLoss, dash: [6, 4], values: s.p95 },
    ] });
  }
  const ms = v => (Number.isFinite(v) ? (1000 * v).toFixed(1) + ' ms' : '?');
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
const evals = setupEvaluations({ request, api, el, status, Refused, onAvailable: () => route() });
const saved = sessionStorage.getItem(KEY);
if (saved) signIn(saved); else $('key').focus();
