// The metrics section's arithmetic, kept free of the DOM for the unit
// tests: GET /v1/metrics returns the tenant's cumulative counters and
// latency histograms; the page samples them every few seconds and charts
// the differences between samples.
import { quantile, bucketDelta } from './chart.js?v=dev';

// Inference actions: what a tenant's users call. Everything else is the
// control plane — including this console's own polling, which would
// otherwise make an idle tenant look busy.
const INFERENCE = new Set(['infer', 'generate', 'endpoint.invoke', 'openai.embeddings', 'openai.completions', 'model.explain']);
export const isInference = action => INFERENCE.has(action);

// sample reduces one GET /v1/metrics answer taken at time t (seconds).
export function sample(m, t) {
  const s = { t, inference: 0, other: 0, errors: 0, buckets: null, latencyCount: 0 };
  for (const r of m.requests || []) {
    if (isInference(r.action)) s.inference += r.count; else s.other += r.count;
    if (Number(r.status) >= 400) s.errors += r.count;
  }
  // One histogram of every inference request: the series share their
  // bucket bounds, so they add up bucket by bucket.
  for (const l of m.latency || []) {
    if (!isInference(l.action) || !l.buckets?.length) continue;
    if (!s.buckets) s.buckets = l.buckets.map(b => ({ le: b.le, count: 0 }));
    if (s.buckets.length !== l.buckets.length) continue;
    l.buckets.forEach((b, i) => { s.buckets[i].count += b.count; });
    s.latencyCount += l.count;
  }
  return s;
}

// series turns consecutive samples into per-interval points, each at the
// end of its interval: requests per second (inference, other, errors) and
// the inference latency p50/p95 in milliseconds of the requests in that
// interval (null when there were none: a gap, not a zero).
export function series(samples) {
  const out = { t: [], inference: [], other: [], errors: [], p50: [], p95: [] };
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const dt = b.t - a.t;
    if (!(dt > 0)) continue;
    // A restarted server starts its counters again: skip that interval.
    if (b.inference < a.inference || b.other < a.other || b.errors < a.errors) continue;
    out.t.push(b.t);
    out.inference.push((b.inference - a.inference) / dt);
    out.other.push((b.other - a.other) / dt);
    out.errors.push((b.errors - a.errors) / dt);
    const d = b.buckets ? bucketDelta(b.buckets, a.buckets) : null;
    const n = d?.length ? d[d.length - 1].count : 0;
    out.p50.push(n ? 1000 * quantile(d, 0.5) : null);
    out.p95.push(n ? 1000 * quantile(d, 0.95) : null);
  }
  return out;
}
