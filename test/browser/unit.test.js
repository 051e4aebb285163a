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
