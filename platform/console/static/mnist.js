// MNIST-style preprocessing of a drawing canvas (dark ink on white):
// invert, crop to the bounding box, scale the longer side to 20 px,
// centre in 28×28 by centre of mass. Returns 784 floats in 0..1, or null
// if nothing is drawn.
export function toMNIST(canvas) {
  const W = canvas.width, H = canvas.height;
  const src = canvas.getContext('2d').getImageData(0, 0, W, H).data;
  let x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    if (255 - src[(y * W + x) * 4] > 20) { if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y; }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1, s = 20 / Math.max(bw, bh);
  const tw = Math.max(1, Math.round(bw * s)), th = Math.max(1, Math.round(bh * s));
  // Draw the inverted crop at 20 px with the browser's smoothing.
  const tmp = document.createElement('canvas'); tmp.width = tw; tmp.height = th;
  const t = tmp.getContext('2d');
  t.imageSmoothingEnabled = true; t.imageSmoothingQuality = 'high';
  t.filter = 'invert(1)';
  t.drawImage(canvas, x0, y0, bw, bh, 0, 0, tw, th);
  const small = t.getImageData(0, 0, tw, th).data;
  let m = 0, cx = 0, cy = 0;
  const v = new Float32Array(tw * th);
  for (let i = 0; i < tw * th; i++) {
    // Fall back to inverting by hand if ctx.filter is unsupported.
    let g = small[i * 4] / 255;
    if (t.filter !== 'invert(1)') g = 1 - g;
    v[i] = g; m += g; cx += g * (i % tw); cy += g * Math.floor(i / tw);
  }
  const out = new Array(784).fill(0);
  const ox = m ? Math.round(14 - cx / m) : Math.round((28 - tw) / 2);
  const oy = m ? Math.round(14 - cy / m) : Math.round((28 - th) / 2);
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) {
    const X = x + ox, Y = y + oy;
    if (X >= 0 && X < 28 && Y >= 0 && Y < 28) out[Y * 28 + X] = Math.min(1, Math.max(0, v[y * tw + x]));
  }
  return out;
}

// Draws the 28×28 input in grey and the attributions over it: red for
// positive, blue for negative, alpha by magnitude.
export function drawHeat(canvas, input, attr) {
  const ctx = canvas.getContext('2d'), c = canvas.width / 28;
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  const max = Math.max(1e-12, ...attr.map(Math.abs));
  for (let i = 0; i < 784; i++) {
    const x = (i % 28) * c, y = Math.floor(i / 28) * c;
    const g = Math.round(255 * (1 - input[i]));
    ctx.fillStyle = `rgb(${g},${g},${g})`; ctx.fillRect(x, y, c, c);
    const a = attr[i] / max;
    if (Math.abs(a) > 0.02) {
      ctx.fillStyle = a > 0 ? `rgba(220,30,30,${Math.abs(a)})` : `rgba(30,80,220,${Math.abs(a)})`;
      ctx.fillRect(x, y, c, c);
    }
  }
}
