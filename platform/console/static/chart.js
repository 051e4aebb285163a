// Charts for the console, drawn by uPlot (vendor/uPlot.iife.min.js, loaded
// by index.html as a classic script before the modules, so it is the
// global `uPlot`). This module only turns the console's data into uPlot
// options; the pure helpers are exported for the unit tests under node,
// where no uPlot and no DOM exist.
//
// Every chart lives in a "chart box" (a figure): the uPlot canvas with its
// axes, the axis labels with units, and a legend that shows the values
// under the cursor. The box carries data-points (the number of finite
// data points drawn) and data-state ("drawn" or "empty"), so tests and
// assistive tech can tell a drawn chart from an empty one.

const charts = new WeakMap(); // box → uPlot
const sizes = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(entries => {
  for (const e of entries) {
    const u = charts.get(e.target), w = Math.floor(e.contentRect.width);
    // A box in a hidden section measures 0: keep the size it had.
    if (u && w > 0 && Math.abs(w - u.width) > 1) u.setSize({ width: w, height: u.height });
  }
});

// chartBox makes the container a chart is drawn into: a figure with a
// caption naming the chart (read by screen readers with the legend).
export function chartBox(name, caption, cls = '') {
  const box = document.createElement('figure');
  box.className = ('chart-box ' + cls).trim();
  box.dataset.chart = name;
  box.dataset.state = 'empty';
  box.dataset.points = '0';
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  const plot = document.createElement('div');
  plot.className = 'chart-plot';
  const empty = document.createElement('p');
  empty.className = 'chart-empty muted';
  empty.hidden = true;
  box.append(cap, plot, empty);
  return box;
}

// destroyCharts frees the charts inside root before it is replaced.
export function destroyCharts(root) {
  for (const box of root.querySelectorAll('.chart-box')) {
    const u = charts.get(box);
    if (u) { sizes?.unobserve(box); u.destroy(); charts.delete(box); }
  }
}

// showEmpty replaces the chart in box by a plain message (its state
// becomes "empty"), e.g. "No requests yet".
export function showEmpty(box, message) {
  const u = charts.get(box);
  if (u) { sizes?.unobserve(box); u.destroy(); charts.delete(box); }
  box.querySelector('.chart-plot').replaceChildren();
  const p = box.querySelector('.chart-empty');
  p.textContent = message;
  p.hidden = false;
  box.dataset.state = 'empty';
  box.dataset.points = '0';
}

// plot draws (or redraws) a line chart into box.
//
//   x:      {label, unit, values, time, num}
//           time: values are Unix seconds; num: any numbers (otherwise
//           epochs: whole numbers, one tick each)
//   y:      {label, unit, min, max, zero, digits}
//   series: [{label, color, values, dash, line}]   line: false draws
//           the points alone (a scatter plot over a shared, sorted x)
//
// A chart whose series have no finite value shows `empty` instead.
export function plot(box, { x, y, series, height = 220, empty = 'No data yet.' }) {
  const n = countPoints(series);
  if (n === 0) { showEmpty(box, empty); return null; }
  box.querySelector('.chart-empty').hidden = true;
  const data = [x.values, ...series.map(s => s.values.map(v => (Number.isFinite(v) ? v : null)))];
  const old = charts.get(box);
  const sameShape = old && old.series.length === series.length + 1 && old.__key === key(x, y, series);
  if (sameShape) {
    old.setData(data);
    // Off the chart the legend shows the latest values: refresh it.
    if (old.cursor.idx == null) old.setLegend({ idx: null });
  } else {
    if (old) { sizes?.unobserve(box); old.destroy(); }
    const target = box.querySelector('.chart-plot');
    target.replaceChildren();
    const width = Math.max(240, Math.floor(box.clientWidth || target.clientWidth || 480));
    // eslint-disable-next-line no-undef
    const u = new uPlot(options(x, y, series, width, height), data, target);
    u.__key = key(x, y, series);
    charts.set(box, u);
    sizes?.observe(box);
  }
  box.dataset.state = 'drawn';
  box.dataset.points = String(n);
  // The axis titles are pixels too: say them in the page as well, and
  // give the canvas a text alternative for screen readers.
  box.dataset.xLabel = xTitle(x);
  box.dataset.yLabel = yTitle(y);
  const canvas = box.querySelector('canvas');
  canvas?.setAttribute('role', 'img');
  canvas?.setAttribute('aria-label', describe(x, y, series));
  return charts.get(box);
}

const key = (x, y, series) => JSON.stringify([x.label, x.unit, x.time, x.num, y.label, y.unit, y.min, y.max, y.zero, series.map(s => [s.label, s.color, s.line])]);

// describe summarises a chart in words: its axes and, per series, how
// many points and its first and last values.
export function describe(x, y, series) {
  const unit = y.unit ? ' ' + y.unit : '';
  const parts = series.map(s => {
    const vs = s.values.filter(Number.isFinite);
    if (!vs.length) return `${s.label}: no data`;
    const f = v => fmtNum(v, y.digits) + unit;
    return vs.length === 1 ? `${s.label}: ${f(vs[0])}` : `${s.label}: ${vs.length} points, from ${f(vs[0])} to ${f(vs.at(-1))}`;
  });
  return `${yTitle(y)} against ${xTitle(x)}. ${parts.join('; ')}.`;
}

const xTitle = x => (x.unit ? `${x.label} (${x.unit})` : x.label);
const yTitle = y => (y.unit ? `${y.label} (${y.unit})` : y.label);

export function countPoints(series) {
  let n = 0;
  for (const s of series) for (const v of s.values) if (Number.isFinite(v)) n++;
  return n;
}

function options(x, y, series, width, height) {
  const font = '12px system-ui, sans-serif', labelFont = '600 12px system-ui, sans-serif';
  const axisColor = '#333', grid = { stroke: '#e5e7eb', width: 1 }, ticks = { stroke: '#9ca3af', width: 1, size: 5 };
  return {
    width, height,
    // The legend under the chart shows each series' value at the cursor
    // (with its unit): uPlot's own tooltip, readable and keyboard-free.
    legend: { live: true },
    cursor: { points: { size: 8 }, drag: { x: false, y: false } },
    scales: {
      // From the data, not from uPlot's lo and hi: for a single x value
      // uPlot widens those first (a whole day on a time scale).
      x: x.time ? { time: true, range: u => timeRange(...extent(u.data[0])) }
        : x.num ? { time: false, range: u => yRange(...extent(u.data[0]), x.min, x.max, x.zero) }
          : { time: false, range: u => epochRange(...extent(u.data[0])) },
      y: { range: (u, lo, hi) => yRange(lo, hi, y.min, y.max, y.zero) },
    },
    axes: [
      {
        label: xTitle(x), labelFont: labelFont, labelSize: 18, labelGap: 0, size: 28, font, stroke: axisColor, grid, ticks,
        ...(x.time ? { space: 80, incrs: TIME_INCRS, values: (u, splits) => ticked(u, 'xTicks', splits.map(clock)) }
          : x.num ? { space: 60, values: (u, splits, i, space, incr) => ticked(u, 'xTicks', splits.map(v => tickLabel(v, incr))) }
            : { incrs: INT_INCRS, values: (u, splits) => ticked(u, 'xTicks', splits.map(v => (Number.isInteger(v) ? String(v) : ''))) }),
      },
      {
        label: yTitle(y), labelFont, labelSize: 22, font, stroke: axisColor, grid, ticks,
        values: (u, splits, i, space, incr) => ticked(u, 'yTicks', splits.map(v => tickLabel(v, incr))),
        // Wide enough for the longest tick value, so values never run
        // into the axis label.
        size: (u, values) => axisSize(values, font),
      },
    ],
    series: [
      x.time ? { label: 'time', value: (u, v, si, i) => legendValue(u, v, si, i, clock) }
        : x.num ? { label: xTitle(x), value: (u, v, si, i) => legendValue(u, v, si, i, w => fmtNum(w) + (x.unit ? ' ' + x.unit : '')) }
          : { label: x.label, value: (u, v, si, i) => legendValue(u, v, si, i, e => fmtNum(e, Number.isInteger(e) ? 0 : 2)) },
      ...series.map(s => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        dash: s.dash,
        spanGaps: false,
        ...(s.line === false ? { paths: () => null, points: { show: true, size: 11, fill: s.color, stroke: s.color } }
          : { points: { show: true, size: 6, fill: s.color } }),
        value: (u, v, si, i) => legendValue(u, v, si, i, w => fmtNum(w, y.digits) + (y.unit ? ' ' + y.unit : '')),
      })),
    ],
  };
}

// legendValue prints a series' value at the cursor, and when the cursor
// is off the chart its latest value (for x, the last x with any value),
// so the legend is never a row of dashes.
function legendValue(u, v, si, i, fmt) {
  if (i == null) {
    const d = u.data[si];
    v = null;
    for (let j = d.length - 1; j >= 0 && v == null; j--) {
      if (si > 0) v = d[j];
      else if (u.data.some((s, k) => k > 0 && s[j] != null)) v = d[j];
    }
  }
  return v == null ? '–' : fmt(v);
}

// ticked records an axis' printed tick labels on the chart box
// (data-x-ticks, data-y-ticks: "|"-separated), for the browser tests:
// the labels are pixels on the canvas, not text in the page.
function ticked(u, attr, labels) {
  const box = u.root.closest('.chart-box');
  if (box) box.dataset[attr] = labels.filter(Boolean).join('|');
  return labels;
}

// Whole seconds and minutes: the samples are seconds apart.
const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];
const clock = t => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

const INT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

// epochRange puts half an epoch either side, so one epoch is one point in
// the middle with one tick, and the first and last points sit off the axes.
export function epochRange(lo, hi) {
  if (lo == null || hi == null) return [0, 1];
  return [lo - 0.5, hi + 0.5];
}

// timeRange: a single sample gets a minute around it.
export function timeRange(lo, hi) {
  if (lo == null || hi == null) { const now = Date.now() / 1000; return [now - 60, now]; }
  return lo === hi ? [lo - 30, hi + 30] : [lo, hi];
}

function extent(xs) {
  let lo = null, hi = null;
  for (const v of xs) if (Number.isFinite(v)) { if (lo === null || v < lo) lo = v; if (hi === null || v > hi) hi = v; }
  return [lo, hi];
}

// yRange pads the data's range by 10 % (a flat series by 10 % of its
// value, or 1), clamped to the hard limits; the ticks are then distinct
// even for a single point. zero: the range includes 0 (rates, latencies).
export function yRange(lo, hi, min, max, zero = false) {
  if (lo == null || hi == null) { lo = min ?? 0; hi = max ?? 1; }
  if (zero) { lo = Math.min(0, lo); hi = Math.max(0, hi); }
  let span = hi - lo;
  if (span === 0) span = Math.abs(hi) || 1;
  let a = lo - span * 0.1, b = hi + span * 0.1;
  if (zero && hi === 0) b = 1; // nothing at all: 0 to 1 request/s, not 0 to 0.1
  // From zero: a sliver below it, so a line at 0 is not hidden by the axis.
  if (zero && lo === 0) a = -0.03 * b;
  if (min != null) a = Math.max(min, a);
  if (max != null) b = Math.min(max, b);
  if (b <= a) b = a + 1;
  return [a, b];
}

function axisSize(values, font) {
  if (!values || !values.length) return 40;
  const ctx = axisSize.ctx || (axisSize.ctx = document.createElement('canvas').getContext('2d'));
  ctx.font = font;
  const w = Math.max(...values.map(v => ctx.measureText(String(v ?? '')).width));
  return Math.ceil(w) + 14; // tick length + gap
}

// tickLabel prints a tick value with as many decimals as the tick step
// needs, so two ticks never print the same label.
export function tickLabel(v, incr) {
  if (v == null || !Number.isFinite(v)) return '';
  let d = 0;
  while (d < 8 && incr > 0 && Math.abs(Math.round(incr * 10 ** d) - incr * 10 ** d) > 1e-6 * incr * 10 ** d) d++;
  if (Math.abs(v) >= 1e6) return v.toExponential(1);
  return v.toFixed(Math.min(d, 8));
}

// fmtNum prints a tick or legend value: digits decimals when given,
// otherwise 3 significant digits (no exponent for ordinary values).
export function fmtNum(v, digits) {
  if (v == null || !Number.isFinite(v)) return '–';
  if (digits != null) return v.toFixed(digits);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1e-3) return String(Number(v.toPrecision(3)));
  return v.toExponential(1);
}

// Quantile estimate from cumulative Prometheus-style buckets [{le, count}].
export function quantile(buckets, q) {
  if (!buckets || buckets.length === 0) return NaN;
  const total = buckets[buckets.length - 1].count;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const b of buckets) {
    const le = Number(b.le);
    if (b.count >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      const inB = b.count - prevCount;
      return inB ? prevLe + (le - prevLe) * (rank - prevCount) / inB : le;
    }
    prevLe = Number.isFinite(le) ? le : prevLe; prevCount = b.count;
  }
  return prevLe;
}

// bucketDelta is the histogram of the requests between two samples of the
// same cumulative buckets (an older sample missing means all of now).
export function bucketDelta(now, before) {
  if (!before || before.length !== now.length) return now.map(b => ({ le: b.le, count: b.count }));
  return now.map((b, i) => ({ le: b.le, count: Math.max(0, b.count - before[i].count) }));
}
