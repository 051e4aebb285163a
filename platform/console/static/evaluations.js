// The Evaluations section: candidate model versions run over one labelled
// dataset (POST /v1/evaluations), compared side by side. The section is
// shown only when the server has the API; the pure helpers are exported
// for the unit tests.
import { chartBox, plot, destroyCharts } from './chart.js?v=dev';
import { heatColor } from './text.js?v=dev';

const PALETTE = ['#0b57d0', '#b3261e', '#15803d', '#92400e', '#6d28d9', '#0e7490', '#be185d', '#374151'];

// columns of the comparison table: title, value from a result, printed
// form, and which way is better (1: higher, -1: lower, 0: not ranked).
export const COLUMNS = [
  ['accuracy', r => r.classification?.accuracy, v => pct(v), 1],
  ['top-k accuracy', r => r.classification?.top_k_accuracy, (v, r) => `${pct(v)} (k=${r.classification.top_k})`, 1],
  ['macro F1', r => r.classification?.macro_f1, v => v.toFixed(3), 1],
  ['MSE', r => r.regression?.mse, v => v.toPrecision(3), -1],
  ['MAE', r => r.regression?.mae, v => v.toPrecision(3), -1],
  ['p50, batch 1', r => r.latency?.p50_ms, v => ms(v), -1],
  ['p99, batch 1', r => r.latency?.p99_ms, v => ms(v), -1],
  ['throughput', r => r.latency?.best_rows_per_second, (v, r) => `${Math.round(v).toLocaleString('en')} rows/s (batch ${r.latency.best_batch})`, 1],
  ['memory', r => r.memory?.model_bytes, v => bytes(v), -1],
  ['artifact', r => r.artifact_bytes, v => bytes(v), -1],
  ['cost / 1M requests', r => r.cost?.per_million_requests_usd, v => '$' + v.toFixed(v < 1 ? 4 : 2), -1],
];

const pct = v => (100 * v).toFixed(2) + ' %';
const ms = v => (v >= 1 ? v.toFixed(1) : v >= 0.01 ? v.toFixed(3) : v.toPrecision(2)) + ' ms';
const bytes = n => (n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : n + ' B');

// best returns, per column, the best value among the ok results, or
// undefined when there is nothing to rank (fewer than two values, or all
// equal). Every result with that value is marked, ties included.
export function best(results) {
  return COLUMNS.map(([, get, , dir]) => {
    const vs = results.filter(r => r.status === 'ok').map(get).filter(Number.isFinite);
    if (!dir || vs.length < 2) return undefined;
    const b = dir > 0 ? Math.max(...vs) : Math.min(...vs);
    return vs.every(v => v === b) ? undefined : b;
  });
}

// candidateName names a result as the user asked for it and as resolved.
export function candidateName(r) {
  const asked = r.version && r.version !== String(r.resolved_version) ? ` (${r.version})` : '';
  return `${r.model} v${r.resolved_version ?? '?'}${asked}`;
}

// scatterData aligns one point per candidate for uPlot: a sorted, shared
// x (latency) and one series per candidate, null except at its own x.
export function scatterData(results) {
  const pts = results.map((r, i) => ({ i, x: r.latency?.p50_ms, y: r.classification ? 100 * r.classification.accuracy : undefined }))
    .filter(p => results[p.i].status === 'ok' && Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = [...new Set(pts.map(p => p.x))].sort((a, b) => a - b);
  const series = pts.map(p => ({ i: p.i, values: xs.map(x => (x === p.x ? p.y : null)) }));
  return { xs, series };
}

// setupEvaluations wires the section. deps: api (JSON with the key, throws
// on an error answer), request (the raw response), el, table, status,
// Refused. It returns load(), to call on sign-in and on a timer.
export function setupEvaluations({ request, api, el, status, Refused, onAvailable }) {
  const $ = id => document.getElementById(id);
  const cards = new Map(); // id → {card, updated}
  let available = null;

  async function probe() {
    if (available !== null) return available;
    const res = await request('/v1/evaluations', { allow404: true });
    available = res.ok;
    const sec = $('evaluations');
    if (available) delete sec.dataset.unavailable; else sec.dataset.unavailable = '1';
    $('nav-evaluations').hidden = !available;
    if (available) { await fillForm(); onAvailable(); }
    return available;
  }

  async function fillForm() {
    const [{ models = [] }, ds] = await Promise.all([api('/v1/models'), api('/v1/datasets').catch(() => ({ datasets: [] }))]);
    const box = $('eval-candidates');
    box.replaceChildren(el('span', { class: 'muted' }, 'Candidates:'), ...models.flatMap(m => {
      const id = 'eval-c-' + m.name;
      const version = m.aliases?.prod ? 'prod' : String(m.latest);
      const cb = el('input', { type: 'checkbox', id, value: m.name, 'data-version': version });
      if (m.aliases?.prod) cb.checked = true;
      return [el('label', { for: id, class: 'check' }, cb, ` ${m.name} (${version === 'prod' ? 'prod' : 'v' + version})`)];
    }));
    const names = ['mnist', ...(ds.datasets || []).map(d => d.name ?? d.Name).filter(n => n && n !== 'mnist')];
    $('eval-dataset').replaceChildren(...names.map(n => el('option', { value: n }, n === 'mnist' ? 'mnist (the MNIST test set)' : n)));
  }

  async function submit(ev) {
    ev.preventDefault();
    const candidates = [...document.querySelectorAll('#eval-candidates input:checked')].map(c => ({ model: c.value, version: c.dataset.version }));
    if (!candidates.length) { status('Evaluation: pick at least one candidate.'); return; }
    try {
      await api('/v1/evaluations', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ candidates, dataset: $('eval-dataset').value, limit: Number($('eval-limit').value) }) });
      status('');
      await load();
    } catch (e) { if (!(e instanceof Refused)) status('Evaluation: ' + e.message); }
  }
  $('eval-form').addEventListener('submit', submit);

  async function load() {
    if (!(await probe())) return;
    const { evaluations = [] } = await api('/v1/evaluations');
    const list = $('eval-list');
    if (!evaluations.length && !cards.size) {
      list.replaceChildren(el('p', { class: 'muted' }, 'No evaluations yet.'));
      return;
    }
    list.querySelector(':scope > p.muted')?.remove();
    const recent = evaluations.slice().sort((a, b) => String(b.created).localeCompare(String(a.created))).slice(0, 20);
    for (const [k, i] of recent.map((e, i) => [e, i])) {
      const seen = cards.get(k.id);
      const sig = `${k.status}|${k.finished || ''}|${(k.results || []).map(r => r.status).join(',')}`;
      if (seen && seen.sig === sig && k.status !== 'running' && k.status !== 'queued') continue;
      // Running ones are fetched whole for their progress.
      const e = k.status === 'running' || k.status === 'queued' || !seen ? await api('/v1/evaluations/' + encodeURIComponent(k.id)) : k;
      const card = render(e, i === 0);
      if (seen) { destroyCharts(seen.card); seen.card.replaceWith(card); } else list.append(card);
      cards.set(k.id, { card, sig });
    }
    // Newest first (appending moves the existing cards, charts and all).
    list.append(...recent.map(k => cards.get(k.id)?.card).filter(Boolean));
  }

  function render(e, open) {
    const results = e.results || [];
    const card = el('article', { class: 'card eval', 'data-eval': e.id, 'data-status': e.status, 'aria-labelledby': 'eval-h-' + e.id });
    const when = (e.created || '').replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    // The list's summaries name the dataset; a whole record describes it.
    const d = e.dataset;
    const ds = d && typeof d === 'object' ? `${d.name}, ${d.rows} rows` : (d || e.request?.dataset || '');
    card.append(el('h3', { id: 'eval-h-' + e.id }, `Evaluation ${e.id}`),
      el('p', { class: 'eval-status' }, `${e.status} · dataset ${ds} · ${when}` + (e.error ? ` · ${e.error}` : '')));
    const p = e.progress;
    if ((e.status === 'running' || e.status === 'queued') && p) {
      const frac = p.candidates ? ((p.candidate - 1) + (p.rows_total ? p.rows / p.rows_total : 0)) / p.candidates : 0;
      card.append(el('progress', { max: 1, value: Math.max(0, Math.min(1, frac)), 'aria-label': `evaluation ${e.id} progress` }),
        el('p', { class: 'muted' }, `candidate ${p.candidate}/${p.candidates} (${p.model}): ${p.phase}`));
    }
    card.append(compareTable(results));
    if (e.status === 'succeeded' && results.some(r => r.status === 'ok')) {
      const more = el('details', { class: 'eval-more' }, el('summary', {}, 'Latency against accuracy, confusion matrices'));
      if (open) more.open = true;
      // Drawn on first opening: the list's summaries carry no matrices.
      let drawn = false;
      const draw = async () => {
        if (drawn || !more.open) return;
        drawn = true;
        const full = e.results?.some(r => r.classification?.confusion_matrix) ? e : await api('/v1/evaluations/' + encodeURIComponent(e.id));
        details(more, full.results || []);
      };
      more.addEventListener('toggle', () => draw().catch(err => { if (!(err instanceof Refused)) status(err.message); }));
      card.append(more);
      if (open) queueMicrotask(() => draw().catch(err => { if (!(err instanceof Refused)) status(err.message); }));
    }
    return card;
  }

  function compareTable(results) {
    const bi = best(results);
    const cols = COLUMNS.map((c, i) => [c, i]).filter(([[, get]]) => results.some(r => Number.isFinite(get(r))));
    const t = el('table', { class: 'compare' },
      el('caption', {}, 'Candidates side by side (★ marks the best value of a column)'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'candidate'), el('th', { scope: 'col' }, 'status'),
        ...cols.map(([[name]]) => el('th', { scope: 'col' }, name)))),
      el('tbody', {}, ...results.map(r => el('tr', { 'data-model': r.model, 'data-status': r.status },
        el('th', { scope: 'row' }, candidateName(r)),
        // A candidate that did not run says why across the whole row.
        ...(r.status !== 'ok' ? [el('td', { class: 'status-' + r.status, colspan: cols.length + 1 }, r.status + (r.reason ? `: ${r.reason}` : ''))] : [el('td', {}, r.status)]),
        ...(r.status !== 'ok' ? [] : cols.map(([[name, get, show], ci]) => {
          const v = r.status === 'ok' ? get(r) : undefined;
          if (!Number.isFinite(v)) return el('td', {}, '');
          const isBest = v === bi[ci];
          return el('td', { class: isBest ? 'best' : '', 'data-col': name }, show(v, r),
            ...(isBest ? [el('span', { 'aria-hidden': 'true' }, ' ★'), el('span', { class: 'sr-only' }, ' (best)')] : []));
        }))))));
    return el('div', { class: 'table-scroll' }, t);
  }

  function details(root, results) {
    const { xs, series } = scatterData(results);
    const charts = el('div', { class: 'charts' });
    root.append(charts);
    if (series.length) {
      const box = chartBox('scatter', 'Latency (p50, batch 1) against accuracy: up and to the left is better', 'scatter-chart');
      charts.append(box);
      plot(box, {
        x: { label: 'latency p50, batch 1', unit: 'ms', values: xs, num: true, zero: true },
        y: { label: 'accuracy', unit: '%', max: 100, digits: 2 },
        series: series.map((s, k) => ({ label: candidateName(results[s.i]), color: PALETTE[k % PALETTE.length], values: s.values, line: false })),
        height: 260,
      });
    }
    const mats = el('div', { class: 'matrices' });
    for (const r of results) {
      const cm = r.classification?.confusion_matrix;
      if (r.status === 'ok' && cm?.length) mats.append(confusion(r, cm));
    }
    if (mats.childElementCount) root.append(mats);
  }

  // confusion draws a confusion matrix as a table of counts coloured by
  // the share of their row (the true class): a strong diagonal is good.
  function confusion(r, cm) {
    const names = i => r.classification?.per_class?.find(c => c.class === i)?.name || String(i);
    const t = el('table', { class: 'heat confusion', 'data-model': r.model },
      el('caption', {}, `${candidateName(r)}: rows are the true class, columns the predicted one`),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'true \\ predicted'), ...cm.map((_, j) => el('th', { scope: 'col' }, names(j))))),
      el('tbody', {}, ...cm.map((row, i) => {
        const total = row.reduce((a, b) => a + b, 0) || 1;
        return el('tr', {}, el('th', { scope: 'row' }, names(i)), ...row.map((n, j) => {
          const td = el('td', { class: 'cm', 'data-i': i, 'data-j': j, title: `true ${names(i)}, predicted ${names(j)}: ${n} (${(100 * n / total).toFixed(1)} % of the row)` }, n);
          td.style.backgroundColor = heatColor(n / total);
          return td;
        }));
      })));
    return el('figure', { class: 'matrix' }, t);
  }

  function reset() {
    available = null;
    cards.clear();
    destroyCharts($('eval-list'));
    $('eval-list').replaceChildren();
    $('nav-evaluations').hidden = true;
    $('evaluations').dataset.unavailable = '1';
  }

  return { load, reset };
}
