// Tiny canvas line chart: series = [{label, color, points:[y...]}].
export function lineChart(canvas, series, { yMin, yMax } = {}) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, pad = 30;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, H);
  const all = series.flatMap(s => s.points).filter(Number.isFinite);
  if (all.length === 0) return;
  const lo = yMin ?? Math.min(...all), hi = yMax ?? Math.max(...all);
  const span = hi - lo || 1;
  const n = Math.max(...series.map(s => s.points.length));
  const x = i => pad + (n <= 1 ? 0 : i * (W - 2 * pad) / (n - 1));
  const y = v => H - pad - (v - lo) / span * (H - 2 * pad);
  ctx.strokeStyle = '#999'; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(pad, pad); ctx.lineTo(pad, H - pad); ctx.lineTo(W - pad, H - pad); ctx.stroke();
  ctx.fillStyle = '#333'; ctx.font = '11px sans-serif';
  ctx.fillText(fmt(hi), 2, pad + 4); ctx.fillText(fmt(lo), 2, H - pad);
  let lx = pad + 4;
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = 2;
    ctx.beginPath();
    s.points.forEach((v, i) => { if (!Number.isFinite(v)) return; i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v)); });
    ctx.stroke();
    s.points.forEach((v, i) => { if (Number.isFinite(v)) { ctx.beginPath(); ctx.arc(x(i), y(v), 2.5, 0, 7); ctx.fill(); } });
    ctx.fillText(s.label, lx, 12); lx += ctx.measureText(s.label).width + 14;
  }
}

function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3); }

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
