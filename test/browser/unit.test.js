// Unit tests for the console's pure functions (no browser needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantile } from '../../platform/console/static/chart.js';

test('quantile from cumulative buckets', () => {
  const b = [{ le: 0.01, count: 50 }, { le: 0.1, count: 90 }, { le: 1, count: 100 }, { le: '+Inf', count: 100 }];
  const cases = [[0.5, 0.01], [0.25, 0.005], [0.7, 0.055], [0.95, 0.55], [1, 1]];
  cases.forEach(([q, want], i) => assert.ok(Math.abs(quantile(b, q) - want) < 1e-9, `${i}: q=${q} got ${quantile(b, q)} want ${want}`));
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.ok(Number.isNaN(quantile([{ le: 1, count: 0 }], 0.5)));
  // Everything in +Inf: the last finite bound is the best estimate.
  assert.equal(quantile([{ le: 1, count: 0 }, { le: '+Inf', count: 5 }], 0.5), 1);
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
