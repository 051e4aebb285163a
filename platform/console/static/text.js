// The Text page: sentence similarity through an embedding endpoint and
// streamed completions through a generation endpoint, both over the
// OpenAI-shaped routes. The pure helpers are exported for unit tests;
// setupText wires the page and touches the DOM only when called.

// endpointMode tells what an endpoint is for from its configuration:
// 'generate' (generation settings, or the bpe detokenizer after the
// model), 'embed' (pooling, or the attention mask forwarded to the
// postprocess plugin), or '' when it cannot tell.
export function endpointMode(ep) {
  if (!ep) return '';
  if (ep.generation || ep.postprocess === 'bpe') return 'generate';
  if (ep.postprocess === 'pool' || (ep.forward_inputs || []).includes('attention_mask')) return 'embed';
  return '';
}

// cosineMatrix gives the cosine similarity of every pair of vectors.
export function cosineMatrix(vs) {
  const norms = vs.map(v => Math.sqrt(v.reduce((a, x) => a + x * x, 0)));
  return vs.map((a, i) => vs.map((b, j) => {
    let d = 0;
    for (let k = 0; k < a.length; k++) d += a[k] * b[k];
    const n = norms[i] * norms[j];
    return n > 0 ? d / n : 0;
  }));
}

// heatColor maps a similarity in [-1, 1] to a cell background: white at
// 0, red towards 1, blue towards -1 (as the MNIST heat map), never so dark
// that the value printed on it in dark text loses contrast.
export function heatColor(v) {
  const t = Math.min(1, Math.abs(Number.isFinite(v) ? v : 0));
  const c = v >= 0 ? [255 - 25 * t, 255 - 135 * t, 255 - 145 * t] : [255 - 145 * t, 255 - 105 * t, 255 - 20 * t];
  return `rgb(${c.map(Math.round).join(', ')})`;
}

// errorMessage reads an error body: OpenAI's {"error": {"message"}} or
// the control plane's {"error": "…"}.
export function errorMessage(body, status = 0, statusText = '') {
  const e = body && body.error;
  if (typeof e === 'string' && e) return e;
  if (e && typeof e.message === 'string' && e.message) return e.message;
  return status ? `${status} ${statusText}`.trim() : 'request failed';
}

// sseParser splits a server-sent-event stream, fed in arbitrary pieces,
// into the data of each event (several data: lines joined by newlines;
// comments and other fields ignored). push returns the events completed
// by a piece; end returns a last event not followed by a blank line.
export function sseParser() {
  let buf = '';
  const parse = block => {
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
    }
    return data.length ? [data.join('\n')] : [];
  };
  return {
    push(chunk) {
      buf += chunk;
      const out = [];
      for (let m; (m = /\r\n\r\n|\n\n|\r\r/.exec(buf));) {
        out.push(...parse(buf.slice(0, m.index)));
        buf = buf.slice(m.index + m[0].length);
      }
      return out;
    },
    end() { const b = buf; buf = ''; return parse(b); },
  };
}

// stopList reads the stop field: one string per line, "\n" and "\t"
// written as escapes, blank lines ignored.
export function stopList(text) {
  return text.split('\n').filter(s => s.trim() !== '')
    .map(s => s.replace(/\\([nt\\])/g, (_, c) => ({ n: '\n', t: '\t', '\\': '\\' })[c]));
}

// sentences reads the similarity box: one sentence per non-blank line.
export const sentences = text => text.split('\n').map(s => s.trim()).filter(Boolean);

const fmtMs = ms => ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
const short = (s, n = 48) => s.length > n ? s.slice(0, n - 1) + '…' : s;

// setupText wires the Text section. deps: request (fetch with the key,
// throws on an error answer), el, Refused (the sign-out error). It returns
// setEndpoints, to call with GET /v1/endpoints' list, and abort, which
// stops a generation in flight (on sign-out).
export function setupText({ request, el, Refused }) {
  const $ = id => document.getElementById(id);
  let endpoints = [];
  let running = null; // the AbortController of a generation in flight

  const showError = msg => { $('text-error').textContent = msg || ''; };
  const fail = e => { if (!(e instanceof Refused)) showError(e.message); };

  function current() { return endpoints.find(e => e.name === $('text-endpoint').value); }

  function setMode(mode) {
    $('text-mode').value = mode;
    $('sim').hidden = mode !== 'embed';
    $('gen').hidden = mode !== 'generate';
  }

  function pick() {
    const ep = current();
    const mode = endpointMode(ep);
    const why = !ep ? ''
      : mode === 'generate' ? `a generation endpoint (${ep.generation ? 'it has generation settings' : 'its postprocess is bpe'})`
        : mode === 'embed' ? `an embedding endpoint (${ep.postprocess === 'pool' ? 'its postprocess is pool' : 'it forwards attention_mask'})`
          : 'neither an embedding nor a generation endpoint by its plugins: choose a mode';
    const chain = ep ? [ep.preprocess, `model ${ep.model}${ep.version ? ' (' + ep.version + ')' : ''}`, ep.postprocess].filter(Boolean).join(' → ') : '';
    $('text-detected').textContent = ep ? `${chain}: ${why}` : '';
    if (mode) setMode(mode);
    if (ep?.generation?.max_tokens) $('gen-max').value = ep.generation.max_tokens;
    showError('');
  }

  function setEndpoints(list) {
    endpoints = list;
    const sel = $('text-endpoint');
    const keep = sel.value;
    sel.replaceChildren(...list.map(e => {
      const m = endpointMode(e);
      return el('option', { value: e.name }, m ? `${e.name} (${m === 'embed' ? 'embeddings' : 'generation'})` : e.name);
    }));
    const none = !list.length;
    $('text-none').hidden = !none;
    for (const id of ['sim-run', 'gen-run']) $(id).disabled = none || (id === 'gen-run' && running !== null);
    if (none) return;
    sel.value = list.some(e => e.name === keep) ? keep : (list.find(e => endpointMode(e)) || list[0]).name;
    if (sel.value !== keep) pick();
  }

  async function compare() {
    showError('');
    const input = sentences($('sim-input').value);
    if (!input.length) { showError('Write at least one sentence.'); return; }
    $('sim-run').disabled = true;
    $('sim-stats').textContent = 'Embedding…';
    try {
      const t0 = performance.now();
      const res = await request('/openai/v1/embeddings', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: $('text-endpoint').value, input }),
      });
      const body = await res.json();
      const ms = performance.now() - t0;
      const vs = (body.data || []).slice().sort((a, b) => a.index - b.index).map(d => d.embedding);
      if (vs.length !== input.length || vs.some(v => !Array.isArray(v))) throw new Error(`expected ${input.length} embeddings, got ${vs.length}`);
      renderMatrix(input, cosineMatrix(vs));
      const tokens = body.usage?.prompt_tokens;
      $('sim-stats').textContent = `${input.length} sentence${input.length > 1 ? 's' : ''} · ${tokens ?? '?'} tokens · ${vs[0].length} dimensions · ${fmtMs(ms)}`;
    } catch (e) {
      $('sim-stats').textContent = '';
      fail(e);
    } finally {
      $('sim-run').disabled = false;
    }
  }

  function renderMatrix(input, m) {
    const head = el('tr', {}, el('td', {}), ...input.map((s, j) => el('th', { scope: 'col', title: s }, String(j + 1))));
    const rows = m.map((row, i) => el('tr', {}, el('th', { scope: 'row', title: input[i] }, `${i + 1}. ${short(input[i])}`),
      ...row.map((v, j) => {
        const td = el('td', { class: 'sim', 'data-i': i, 'data-j': j, title: `${i + 1} · ${j + 1}: ${v.toFixed(4)}` }, v.toFixed(2));
        td.style.backgroundColor = heatColor(v); // CSSOM: allowed by the CSP, unlike a style attribute
        return td;
      })));
    $('sim-matrix').replaceChildren(el('table', { class: 'heat' },
      el('caption', {}, 'Cosine similarity (1: same direction, 0: unrelated, −1: opposite)'),
      el('thead', {}, head), el('tbody', {}, ...rows)));
  }

  async function generate() {
    showError('');
    const num = id => $(id).value.trim() === '' ? undefined : Number($(id).value);
    const req = {
      model: $('text-endpoint').value, prompt: $('gen-prompt').value,
      max_tokens: num('gen-max'), temperature: num('gen-temp'), top_p: num('gen-topp'), seed: num('gen-seed'),
      stream: true, stream_options: { include_usage: true },
    };
    const stop = stopList($('gen-stop').value);
    if (stop.length) req.stop = stop;
    for (const k of ['max_tokens', 'temperature', 'top_p', 'seed']) if (req[k] === undefined) delete req[k];

    const out = $('gen-completion');
    out.replaceChildren();
    $('gen-prompt-echo').textContent = req.prompt;
    $('gen-output').dataset.state = 'running';
    const ctrl = new AbortController();
    running = ctrl;
    $('gen-run').disabled = true; $('gen-stop-btn').disabled = false;
    $('gen-stats').textContent = 'Generating…';
    const t0 = performance.now();
    let first = 0, pieces = 0, finish = '', usage = null, done = false, state = 'done';
    try {
      const res = await request('/openai/v1/completions', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req), signal: ctrl.signal,
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const sse = sseParser();
      const handle = data => {
        if (data === '[DONE]') { done = true; return; }
        const ev = JSON.parse(data);
        if (ev.error) throw new Error(errorMessage(ev));
        for (const ch of ev.choices || []) {
          if (ch.text) {
            if (!first) first = performance.now();
            out.append(ch.text);
            pieces++;
          }
          if (ch.finish_reason) finish = ch.finish_reason;
        }
        if (ev.usage) usage = ev.usage;
      };
      for (;;) {
        const { value, done: eof } = await reader.read();
        if (eof) break;
        sse.push(value).forEach(handle);
      }
      sse.end().forEach(handle);
      if (!done) throw new Error('The stream ended before [DONE]: the server stopped generating (its log says why).');
    } catch (e) {
      if (e.name === 'AbortError') state = 'stopped';
      else { state = 'error'; fail(e); }
    } finally {
      running = null;
      $('gen-run').disabled = false; $('gen-stop-btn').disabled = true;
    }
    const total = performance.now() - t0;
    const parts = [];
    if (state === 'stopped') parts.push(`stopped by you after ${pieces} piece${pieces === 1 ? '' : 's'} of text`);
    else if (finish) parts.push(`finish reason: ${finish}`);
    if (usage) {
      parts.push(`${usage.completion_tokens} tokens (prompt ${usage.prompt_tokens})`);
      parts.push(`${(usage.completion_tokens / (total / 1000)).toFixed(1)} tokens/s`);
    }
    if (first) parts.push(`first token after ${fmtMs(first - t0)}`);
    parts.push(`total ${fmtMs(total)}`);
    $('gen-stats').textContent = state === 'error' && !pieces ? '' : parts.join(' · ');
    if (state === 'error' && !pieces) $('gen-prompt-echo').textContent = '';
    $('gen-output').dataset.state = state;
  }

  $('text-endpoint').addEventListener('change', pick);
  $('text-mode').addEventListener('change', () => { setMode($('text-mode').value); showError(''); });
  $('sim-run').addEventListener('click', () => compare());
  $('gen-run').addEventListener('click', () => generate());
  $('gen-stop-btn').addEventListener('click', () => running?.abort());
  $('text-form').addEventListener('submit', e => e.preventDefault());
  setMode($('text-mode').value);
  return { setEndpoints, abort: () => running?.abort() };
}
