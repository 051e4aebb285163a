// Unit tests for the console's pure functions (no browser needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantile, tickLabel, yRange, epochRange, fmtNum, countPoints, bucketDelta } from '../../platform/console/static/chart.js';
import { sample, series } from '../../platform/console/static/metrics.js';

test('quantile from cumulative buckets', () => {
  const b = [{ le: 0.01, count: 50 }, { le: 0.1, count: 90 }, { le: 1, count: 100 }, { le: '+Inf', count: 100 }];
  const cases = [[0.5, 0.01], [0.25, 0.005], [0.7, 0.055], [0.95, 0.55], [1, 1]];
  cases.forEach(([q, want], i) => assert.ok(Math.abs(quantile(b, q) - want) < 1e-9, `${i}: q=${q} got ${quantile(b, q)} want ${want}`));
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.ok(Number.isNaN(quantile([{ le: 1, count: 0 }], 0.5)));
  // Everything in +Inf: the last finite bound is the best estimate.
  assert.equal(quantile([{ le: 1, count: 0 }, { le: '+Inf', count: 5 }], 0.5), 1);
});

test('tick labels never repeat: as many decimals as the step needs', () => {
  const cases = [
    [[0.25, 0.5, 0.75], 0.25, ['0.25', '0.50', '0.75']],
    [[0.2345, 0.235, 0.2355], 0.0005, ['0.2345', '0.2350', '0.2355']],
    [[90, 95, 100], 5, ['90', '95', '100']],
    [[0, 0.2, 0.4], 0.2, ['0.0', '0.2', '0.4']],
    [[0.1 + 0.2], 0.1, ['0.3']],
  ];
  cases.forEach(([vs, incr, want], i) => assert.deepEqual(vs.map(v => tickLabel(v, incr)), want, `${i}`));
});

test('one point still gets a range with distinct ends (the one-epoch curve)', () => {
  const cases = [
    [[0.5, 0.5], [0.45, 0.55]],
    [[0, 0], [-0.1, 0.1]],
    [[97, 97, 0, 100], [87.3, 100]],
    [[2, 4, 0], [1.8, 4.2]],
    [[0, 0, undefined, undefined, true], [-0.03, 1]],
    [[3, 5, undefined, undefined, true], [-0.165, 5.5]],
    [[null, null, 0, 100], [0, 100]],
  ];
  cases.forEach(([args, want], i) => {
    const [a, b] = yRange(...args);
    assert.ok(b > a, `${i}: empty range`);
    assert.ok(Math.abs(a - want[0]) < 1e-9 && Math.abs(b - want[1]) < 1e-9, `${i}: got [${a}, ${b}] want ${want}`);
  });
  assert.deepEqual(epochRange(1, 1), [0.5, 1.5]);
  assert.deepEqual(epochRange(1, 5), [0.5, 5.5]);
});

test('fmtNum and countPoints', () => {
  const cases = [[0.23473, undefined, '0.235'], [12345.6, undefined, '12346'], [0.0001234, undefined, '1.2e-4'], [0, undefined, '0'], [97.456, 2, '97.46'], [NaN, undefined, '–'], [null, undefined, '–']];
  cases.forEach(([v, d, want], i) => assert.equal(fmtNum(v, d), want, `${i}`));
  assert.equal(countPoints([{ values: [1, null, NaN, 2] }, { values: [undefined, 3] }]), 3);
  assert.equal(countPoints([{ values: [] }]), 0);
});

test('metrics: rates and interval latency from cumulative samples', () => {
  const b = (c1, c2, c3) => [{ le: 0.01, count: c1 }, { le: 0.1, count: c2 }, { le: 1, count: c3 }];
  const m0 = { requests: [{ action: 'metrics.tenant', status: '200', count: 4 }], latency: [] };
  const m1 = {
    requests: [{ action: 'metrics.tenant', status: '200', count: 7 }, { action: 'endpoint.invoke', model: 'mnist', status: '200', count: 10 },
      { action: 'infer', model: 'mnist', status: '400', count: 2 }],
    latency: [{ action: 'endpoint.invoke', count: 10, buckets: b(5, 10, 10) }, { action: 'infer', count: 2, buckets: b(2, 2, 2) },
      { action: 'metrics.tenant', count: 7, buckets: b(0, 0, 7) }],
  };
  const m2 = { ...m1, requests: m1.requests.map(r => ({ ...r, count: r.action === 'metrics.tenant' ? 10 : r.count })) };
  const s0 = sample(m0, 100), s1 = sample(m1, 103), s2 = sample(m2, 106);
  assert.deepEqual([s1.inference, s1.other, s1.errors, s1.latencyCount], [12, 7, 2, 12]);
  assert.deepEqual(s1.buckets.map(x => x.count), [7, 12, 12], 'control-plane latency left out');
  const s = series([s0, s1, s2]);
  assert.deepEqual(s.t, [103, 106]);
  assert.deepEqual(s.inference, [4, 0]);
  assert.deepEqual(s.other, [1, 1]);
  assert.ok(Math.abs(s.errors[0] - 2 / 3) < 1e-12 && s.errors[1] === 0);
  assert.ok(s.p50[0] > 0 && s.p50[0] <= 10 && s.p95[0] > s.p50[0], `p50 ${s.p50[0]} p95 ${s.p95[0]} ms`);
  assert.deepEqual([s.p50[1], s.p95[1]], [null, null], 'an interval without requests is a gap, not 0 ms');
  // A restarted server (counters back to 0): that interval is skipped.
  assert.deepEqual(series([s2, sample(m0, 109)]).t, []);
  // No inference at all, ever: nothing to sample latency from.
  const idle = series([sample({ requests: [], latency: [] }, 0), sample({ requests: [], latency: [] }, 1)]);
  assert.deepEqual([idle.inference, idle.p50], [[0], [null]]);
  assert.deepEqual(bucketDelta(b(1, 2, 3), undefined).map(x => x.count), [1, 2, 3]);
});

import { endpointMode, cosineMatrix, heatColor, errorMessage, sseParser, stopList, sentences } from '../../platform/console/static/text.js';

test('endpointMode tells embedding from generation endpoints', () => {
  assert.equal(endpointMode({ preprocess: 'bpe', postprocess: 'bpe', generation: { max_context: 1024 } }), 'generate');
  assert.equal(endpointMode({ postprocess: 'bpe' }), 'generate');
  assert.equal(endpointMode({ model: 'gpt2', generation: {} }), 'generate');
  assert.equal(endpointMode({ preprocess: 'wordpiece', postprocess: 'pool', forward_inputs: ['attention_mask'] }), 'embed');
  assert.equal(endpointMode({ postprocess: 'my-pool', forward_inputs: ['attention_mask'] }), 'embed');
  assert.equal(endpointMode({ postprocess: 'pool' }), 'embed');
  assert.equal(endpointMode({ preprocess: 'png-to-tensor', postprocess: 'top-k' }), '');
  assert.equal(endpointMode(undefined), '');
});

test('cosineMatrix', () => {
  const m = cosineMatrix([[1, 0], [2, 0], [0, 3], [-1, 0], [0, 0]]);
  const want = [[1, 1, 0, -1, 0], [1, 1, 0, -1, 0], [0, 0, 1, 0, 0], [-1, -1, 0, 1, 0], [0, 0, 0, 0, 0]];
  m.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - want[i][j]) < 1e-12, `${i},${j}: ${v}`)));
  const r = cosineMatrix([[3, 4], [4, 3]]);
  assert.ok(Math.abs(r[0][1] - 24 / 25) < 1e-12 && r[0][1] === r[1][0]);
});

// WCAG contrast of the dark cell text (#111) on every heat colour.
test('heatColor keeps dark text readable', () => {
  const lum = rgb => {
    const [r, g, b] = rgb.match(/\d+/g).map(Number).map(c => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const dark = lum('rgb(17, 17, 17)');
  for (let v = -1; v <= 1.0001; v += 0.05) {
    const c = heatColor(v);
    assert.ok((lum(c) + 0.05) / (dark + 0.05) >= 4.5, `${v}: ${c}`);
  }
  assert.equal(heatColor(0), 'rgb(255, 255, 255)');
  assert.equal(heatColor(NaN), 'rgb(255, 255, 255)');
  const [r1, , b1] = heatColor(1).match(/\d+/g).map(Number), [r2, , b2] = heatColor(-1).match(/\d+/g).map(Number);
  assert.ok(r1 > b1 && b2 > r2, 'red for 1, blue for -1');
});

test('errorMessage reads both error shapes', () => {
  assert.equal(errorMessage({ error: { message: 'max_tokens must be between 1 and 512', type: 'invalid_request_error' } }, 400), 'max_tokens must be between 1 and 512');
  assert.equal(errorMessage({ error: 'endpoint "x" not found' }, 404), 'endpoint "x" not found');
  assert.equal(errorMessage({}, 502, 'Bad Gateway'), '502 Bad Gateway');
  assert.equal(errorMessage(null), 'request failed');
});

test('sseParser splits events however the stream is cut', () => {
  const stream = 'data: {"a":1}\n\n: a comment\n\ndata: {"b":\ndata: 2}\r\n\r\nevent: x\ndata:[DONE]\n\n';
  const want = ['{"a":1}', '{"b":\n2}', '[DONE]'];
  for (let size = 1; size <= stream.length; size++) {
    const p = sseParser();
    const got = [];
    for (let i = 0; i < stream.length; i += size) got.push(...p.push(stream.slice(i, i + size)));
    got.push(...p.end());
    assert.deepEqual(got, want, `pieces of ${size}`);
  }
  const p = sseParser();
  assert.deepEqual(p.push('data: last'), []);
  assert.deepEqual(p.end(), ['last']);
});

test('stopList and sentences', () => {
  assert.deepEqual(stopList('\\n\n  \nEND\n\\tx\\\\n'), ['\n', 'END', '\tx\\n']);
  assert.deepEqual(stopList(''), []);
  assert.deepEqual(sentences(' a \n\n b\n'), ['a', 'b']);
});

import { best, candidateName, scatterData, COLUMNS } from '../../platform/console/static/evaluations.js';

test('evaluations: best per column, ties marked, unfit candidates left out', () => {
  const ok = (model, acc, p50, bytes) => ({ model, status: 'ok', resolved_version: 1, classification: { accuracy: acc, top_k: 5, top_k_accuracy: 1, macro_f1: acc }, latency: { p50_ms: p50 }, artifact_bytes: bytes });
  const rs = [ok('a', 0.97, 0.5, 100), ok('b', 0.99, 2, 100), { model: 'c', status: 'incompatible', artifact_bytes: 1 }];
  const b = best(rs), col = name => b[COLUMNS.findIndex(c => c[0] === name)];
  assert.equal(col('accuracy'), 0.99, 'higher is better');
  assert.equal(col('p50, batch 1'), 0.5, 'lower is better');
  assert.equal(col('top-k accuracy'), undefined, 'all equal: nothing to mark');
  assert.equal(col('artifact'), undefined, 'the incompatible one does not count');
  assert.equal(col('MSE'), undefined, 'no values');
  assert.equal(best([ok('a', 0.9, 1, 1)]).filter(v => v !== undefined).length, 0, 'one candidate: nothing to compare');
  assert.equal(candidateName({ model: 'mnist', version: 'prod', resolved_version: 3 }), 'mnist v3 (prod)');
  assert.equal(candidateName({ model: 'mnist', version: '3', resolved_version: 3 }), 'mnist v3');
  assert.equal(candidateName({ model: 'mnist', version: '', resolved_version: 2 }), 'mnist v2');
});

test('evaluations: scatter data aligned on a sorted, shared x', () => {
  const r = (x, acc, status = 'ok') => ({ status, latency: { p50_ms: x }, classification: { accuracy: acc } });
  const { xs, series } = scatterData([r(2, 0.9), r(0.5, 0.8), r(1, 0.7, 'incompatible'), r(2, 0.95)]);
  assert.deepEqual(xs, [0.5, 2]);
  assert.deepEqual(series.map(s => s.i), [0, 1, 3]);
  assert.deepEqual(series[0].values, [null, 90]);
  assert.deepEqual(series[1].values, [80, null]);
  assert.deepEqual(series[2].values, [null, 95]);
});

import { describe as describeChart } from '../../platform/console/static/chart.js';

test('a chart is described in words for screen readers', () => {
  assert.equal(describeChart({ label: 'epoch' }, { label: 'accuracy', unit: '%', digits: 2 },
    [{ label: 'train accuracy', values: [93.05, 98.7] }, { label: 'validation accuracy', values: [null, undefined] }]),
  'accuracy (%) against epoch. train accuracy: 2 points, from 93.05 % to 98.70 %; validation accuracy: no data.');
  assert.equal(describeChart({ label: 'epoch' }, { label: 'loss' }, [{ label: 'train loss', values: [1.5392] }]),
    'loss against epoch. train loss: 1.54.');
});
