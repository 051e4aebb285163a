// Browser tests for the aiaas console: Debian's chromium driven by
// playwright-core. Needs AIAAS_URL (base URL of `aiaas serve`) and
// AIAAS_KEY (a tenant key, e.g. the demo key); scripts/browser-test.sh
// sets both. Screenshots go to artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = (process.env.AIAAS_URL || 'http://127.0.0.1:18181').replace(/\/$/, '');
const KEY = process.env.AIAAS_KEY;
const ART = new URL('./artifacts/', import.meta.url).pathname;
mkdirSync(ART, { recursive: true });

let browser;
before(async () => {
  assert.ok(KEY, 'AIAAS_KEY must be set');
  // playwright-core gives every launch a fresh temporary --user-data-dir
  // itself (and refuses one in args), so the profile is always clean.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); });

async function page() {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const p = await ctx.newPage();
  const errors = [];
  p.on('pageerror', e => errors.push(String(e)));
  p.on('console', m => { if (m.type() === 'error' && !/401/.test(m.text())) errors.push(m.text()); });
  p.errors = errors;
  return p;
}

async function signIn(p, key = KEY) {
  await p.goto(BASE + '/');
  assert.match(p.url(), /\/console\/$/, 'root redirects to the console');
  await p.getByLabel('API key').fill(key);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

// go opens a section from the navigation bar, as a user would, and waits
// until it is the one shown.
async function go(p, name, id) {
  await p.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true }).click();
  await p.locator(`section#${id}:not([hidden])`).waitFor({ timeout: 10000 });
}

// chartDrew waits until the chart box matching sel says it drew, then
// reads its uPlot canvas back: its size, the pixels that are not blank,
// and the pixels in each series' colour (the lines and points themselves,
// not only axes and grid). Returns {width, height, inked, colours: [...],
// points, xTicks, yTicks}.
async function chartDrew(p, sel, colours = []) {
  const box = p.locator(`${sel}[data-state="drawn"]`);
  await box.waitFor({ timeout: 20000 }).catch(async e => {
    await p.screenshot({ path: ART + 'chart-failed.png', fullPage: true });
    throw new Error(`${sel}: never drawn (state ${await p.locator(sel).first().getAttribute('data-state').catch(() => '?')}): ${e.message}`);
  });
  // uPlot draws on the next animation frame after setData.
  await p.waitForFunction(s => {
    const c = document.querySelector(s + ' canvas');
    return c && c.width > 0 && c.height > 0;
  }, sel, { timeout: 10000 });
  await p.evaluate(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))));
  return box.first().evaluate((b, colours) => {
    const c = b.querySelector('canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const rgb = colours.map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
    let inked = 0;
    const hits = rgb.map(() => 0);
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 128) continue;
      if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) inked++;
      rgb.forEach(([r, g, bl], k) => { if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - bl) < 60) hits[k]++; });
    }
    return { width: c.width, height: c.height, inked, colours: hits, points: Number(b.dataset.points), alt: c.getAttribute('role') === 'img' ? c.getAttribute('aria-label') : null, xLabel: b.dataset.xLabel, yLabel: b.dataset.yLabel,
      xTicks: (b.dataset.xTicks || '').split('|').filter(Boolean), yTicks: (b.dataset.yTicks || '').split('|').filter(Boolean) };
  }, colours);
}

// assertChart: a canvas of real size, ink on it, n data points, every
// given series colour present, at least one tick on each axis and no
// tick label printed twice on an axis.
function assertChart(what, c, { points, colours = [] } = {}) {
  assert.ok(c.width >= 200 && c.height >= 100, `${what}: canvas ${c.width}×${c.height}`);
  assert.ok(c.inked > 500, `${what}: ${c.inked} inked pixels`);
  if (points !== undefined) assert.equal(c.points, points, `${what}: data points`);
  else assert.ok(c.points > 0, `${what}: data points ${c.points}`);
  colours.forEach((col, i) => assert.ok(c.colours[i] > 15, `${what}: ${c.colours[i]} pixels of series colour ${col}`));
  assert.ok(c.xTicks.length >= 1 && c.yTicks.length >= 2, `${what}: ticks x ${c.xTicks} y ${c.yTicks}`);
  assert.equal(new Set(c.yTicks).size, c.yTicks.length, `${what}: y tick labels repeat: ${c.yTicks}`);
  assert.equal(new Set(c.xTicks).size, c.xTicks.length, `${what}: x tick labels repeat: ${c.xTicks}`);
}

const RED = '#b3261e', BROWN = '#92400e', BLUE = '#0b57d0', GREY = '#4b5563';

// Number of non-white pixels on a canvas.
const inked = (p, sel) => p.$eval(sel, c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
  return n;
});

// drawOne draws a vertical stroke, a "1", on the playground's pad.
async function drawOne(p) {
  const pad = p.locator('#pad');
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  const x = box.x + box.width / 2;
  await p.mouse.move(x, box.y + 50);
  await p.mouse.down();
  for (let y = 50; y <= 230; y += 10) await p.mouse.move(x, box.y + y);
  await p.mouse.up();
}

test('a bad key is refused with a visible message', async () => {
  const p = await page();
  await signIn(p, 'aiaas_not_a_real_key');
  await p.getByText('Key refused.').waitFor({ timeout: 10000 });
  assert.equal(await p.isVisible('#signin-form'), true);
  assert.equal(await p.isVisible('#app'), false);
  assert.equal(await p.evaluate(() => sessionStorage.getItem('aiaas.key')), null);
  await p.screenshot({ path: ART + 'bad-key.png', fullPage: true });
  await p.context().close();
});

test('sign in, see the mnist model with accuracy and drawn curves', async () => {
  const p = await page();
  await signIn(p);
  const card = p.locator('.model[data-model="mnist"]');
  await card.locator('.accuracy').waitFor({ timeout: 15000 });
  assert.equal(await p.isVisible('section#models'), true, 'models is the first section');
  const acc = await card.locator('.accuracy').textContent();
  const m = acc.match(/test accuracy ([\d.]+)%/);
  assert.ok(m, `accuracy shown: ${acc}`);
  assert.ok(Number(m[1]) > 80, `accuracy ${m[1]}% > 80%`);
  // The demo trains mnist for 5 epochs: five points per curve.
  const loss = await chartDrew(p, '.model[data-model="mnist"] .loss-chart', [RED]);
  assertChart('mnist loss', loss, { points: 5, colours: [RED] });
  assert.deepEqual(loss.xTicks, ['1', '2', '3', '4', '5'], 'one tick per epoch');
  const accc = await chartDrew(p, '.model[data-model="mnist"] .acc-chart', [BLUE]);
  assertChart('mnist accuracy', accc, { points: 5, colours: [BLUE] });
  assert.ok(accc.yTicks.every(t => Number(t) <= 100), `accuracy in percent: ${accc.yTicks}`);
  // Axis titles with units, and a legend naming the series.
  assert.deepEqual([accc.xLabel, accc.yLabel], ['epoch', 'accuracy (%)'], 'axis titles with units');
  assert.match(accc.alt, /^accuracy \(%\) against epoch\. train accuracy: 5 points, from [\d.]+ % to [\d.]+ %/, 'a text alternative');
  assert.match(await card.locator('.loss-chart .u-legend').textContent(), /train loss/);
  // The CNN too (fewer epochs).
  assertChart('mnist-cnn loss', await chartDrew(p, '.model[data-model="mnist-cnn"] .loss-chart', [RED]), { colours: [RED] });
  // Hovering shows the value under the cursor in the legend.
  const plot = card.locator('.acc-chart .u-over');
  await plot.scrollIntoViewIfNeeded();
  const box = await plot.boundingBox();
  await p.mouse.move(box.x + 2, box.y + box.height / 2);
  await p.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await p.waitForFunction(() => /epoch\s*:?\s*3(?!\d)/.test(document.querySelector('.model[data-model="mnist"] .acc-chart .u-legend').textContent), null, { timeout: 5000 });
  assert.match(await card.locator('.acc-chart .u-legend').textContent(), /train accuracy\s*:?\s*\d+\.\d\d %/);
  // The versions table lists v1 with its alias.
  await card.getByText('Versions (1)').click();
  assert.match(await card.locator('table.versions').textContent(), /v1\s*prod/);
  // Key only in sessionStorage; sign-out clears it.
  assert.equal(await p.evaluate(() => localStorage.length), 0);
  assert.equal(await p.evaluate(() => sessionStorage.getItem('aiaas.key')), KEY);
  await p.screenshot({ path: ART + 'models.png', fullPage: true });
  await p.getByRole('button', { name: 'Sign out' }).click();
  assert.equal(await p.evaluate(() => sessionStorage.getItem('aiaas.key')), null);
  assert.equal(await p.isVisible('#signin-form'), true);
  assert.equal(await p.isVisible('#nav'), false, 'no navigation when signed out');
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('the navigation bar shows one section at a time, by its URL', async () => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  const sections = [['Models', 'models'], ['Endpoints', 'endpoints'], ['Playground', 'playground'], ['Text', 'text'],
    ['Training', 'jobs'], ['Plugins', 'plugins'], ['Metrics', 'metrics'], ['Audit', 'audit']];
  // Evaluations, when the server has them (the section appears once known).
  const evals = await p.evaluate(async () => (await fetch('/v1/evaluations', { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('aiaas.key') } })).status);
  if (evals === 200) {
    await p.locator('#nav-evaluations:not([hidden])').waitFor({ timeout: 15000 });
    sections.splice(4, 0, ['Evaluations', 'evaluations']);
  }
  for (const [name, id] of sections) {
    await go(p, name, id);
    assert.equal(new URL(p.url()).hash, '#' + id);
    assert.equal(await p.locator('section.page:not([hidden])').count(), 1, `${name}: one section shown`);
    const link = p.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true });
    assert.equal(await link.getAttribute('aria-current'), 'page', `${name}: marked current`);
    assert.equal(await p.evaluate(() => document.activeElement?.tagName), 'H2', `${name}: focus on the heading`);
  }
  // Each section has its content.
  await go(p, 'Endpoints', 'endpoints');
  await p.locator('#endpoint-list td', { hasText: 'mnist-cnn' }).first().waitFor({ timeout: 10000 });
  await go(p, 'Plugins', 'plugins');
  await p.locator('#plugin-list td', { hasText: 'png-to-tensor' }).first().waitFor({ timeout: 10000 });
  await go(p, 'Audit', 'audit');
  await p.locator('#audit-list td', { hasText: 'model.list' }).first().waitFor({ timeout: 15000 });
  await p.screenshot({ path: ART + 'audit.png', fullPage: true });
  // Back goes to the previous section; a link to a section opens it.
  await p.goBack();
  await p.locator('section#plugins:not([hidden])').waitFor({ timeout: 5000 });
  await p.goto(BASE + '/console/#jobs');
  await p.locator('section#jobs:not([hidden])').waitFor({ timeout: 10000 });
  assert.equal(await p.isVisible('section#models'), false);
  // Keyboard: Tab reaches the navigation links, Enter follows one.
  await p.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Metrics', exact: true }).focus();
  await p.keyboard.press('Enter');
  await p.locator('section#metrics:not([hidden])').waitFor({ timeout: 5000 });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

// One MNIST input of zeros through the Open Inference Protocol, from the
// page, with the page's key.
async function inferFromPage(p, n) {
  return p.evaluate(async n => {
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }] });
    const codes = [];
    for (let i = 0; i < n; i++) {
      const r = await fetch('/v2/models/mnist/infer', { method: 'POST', body,
        headers: { Authorization: 'Bearer ' + sessionStorage.getItem('aiaas.key'), 'Content-Type': 'application/json' } });
      codes.push(r.status);
      await new Promise(res => setTimeout(res, 100));
    }
    return codes;
  }, n);
}

test('metrics: requests per second and latency are charted as requests arrive', async () => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  await go(p, 'Metrics', 'metrics');
  // Inference while the page samples: the next intervals have requests.
  const codes = await inferFromPage(p, 30);
  assert.ok(codes.every(c => c === 200), `infer answers ${codes}`);
  const rate = await chartDrew(p, '#metrics .rate-chart', [BLUE, GREY]);
  assertChart('requests per second', rate, { colours: [BLUE, GREY] });
  assert.deepEqual([rate.xLabel, rate.yLabel], ['time', 'rate (requests/s)'], 'axis titles with units');
  // Some interval saw inference: wait for a sample after the requests.
  await p.waitForFunction(() => /inference\s*:?\s*[1-9][\d.]* requests\/s|inference\s*:?\s*0\.\d*[1-9]/.test(
    document.querySelector('#metrics .rate-chart .u-legend').textContent) || Number(document.querySelector('#metrics .latency-chart')?.dataset.points) > 0,
  null, { timeout: 20000 });
  const lat = await chartDrew(p, '#metrics .latency-chart', [BLUE]);
  assertChart('inference latency', lat, { colours: [BLUE] });
  assert.match(await p.locator('#metrics .latency-chart .u-legend').textContent(), /p50\s*:?\s*[\d.]+ ms/);
  assert.equal(lat.yLabel, 'latency (ms)');
  assert.equal(await p.textContent('#metrics-note'), '', 'no "no requests" note once there are some');
  assert.match(await p.textContent('#latency-table'), /infer\s*mnist/);
  await p.screenshot({ path: ART + 'metrics.png', fullPage: true });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('metrics: a tenant without inference requests sees a plain "no requests yet"', async () => {
  const p = await page();
  // What GET /v1/metrics answers for a tenant nobody has called yet.
  await p.route('**/v1/metrics', r => r.fulfill({ status: 200, contentType: 'application/json', body: '{"requests":[],"latency":[]}' }));
  await signIn(p);
  await p.locator('#app').waitFor();
  await go(p, 'Metrics', 'metrics');
  await p.locator('#metrics .latency-chart[data-state="empty"] .chart-empty', { hasText: 'No inference requests yet.' }).waitFor({ timeout: 15000 });
  assert.match(await p.textContent('#metrics-note'), /^No inference requests yet: invoke an endpoint/);
  // The rate chart draws its zeros once it has two samples.
  const rate = await chartDrew(p, '#metrics .rate-chart', [BLUE]);
  assertChart('requests per second, idle', rate, { colours: [] });
  assert.equal(await p.locator('#metrics .latency-chart canvas').count(), 0, 'no empty axes pretending to be a chart');
  await p.screenshot({ path: ART + 'metrics-idle.png', fullPage: true });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('evaluations: candidates side by side, latency against accuracy, confusion matrices', async t => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  const code = await p.evaluate(async () => (await fetch('/v1/evaluations', { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('aiaas.key') } })).status);
  if (code === 404) {
    // A server without the API: no section, and no link to an empty one.
    await p.waitForTimeout(1000);
    assert.equal(await p.isVisible('#nav-evaluations'), false);
    t.skip('this server has no /v1/evaluations');
    await p.context().close();
    return;
  }
  await go(p, 'Evaluations', 'evaluations');
  await p.locator('#eval-c-mnist-cnn').waitFor({ timeout: 15000 });
  for (const c of await p.locator('#eval-candidates input').all()) await c.uncheck();
  for (const m of ['mnist', 'mnist-cnn', 'text-embed']) await p.locator('#eval-c-' + m).check();
  await p.getByLabel('Dataset', { exact: true }).selectOption('mnist');
  await p.getByLabel('Rows', { exact: true }).fill('500');
  const before = await p.locator('.eval').evaluateAll(es => es.map(e => e.dataset.eval));
  await p.getByRole('button', { name: 'Evaluate' }).click();
  await p.waitForFunction(b => [...document.querySelectorAll('.eval')].some(e => !b.includes(e.dataset.eval)), before, { timeout: 15000 });
  const id = await p.locator('.eval').evaluateAll((es, b) => es.find(e => !b.includes(e.dataset.eval)).dataset.eval, before);
  const card = p.locator(`.eval[data-eval="${id}"]`);
  await card.locator('.eval-status', { hasText: /^succeeded/ }).waitFor({ timeout: 180000 }).catch(async e => {
    await p.screenshot({ path: ART + 'evaluation-failed.png', fullPage: true });
    throw new Error(`evaluation ${id}: ${await card.locator('.eval-status').textContent().catch(() => '?')}; ${e.message}`);
  });
  // The comparison table: one row per candidate, the unfit one explained.
  const row = m => card.locator(`table.compare tr[data-model="${m}"]`);
  for (const m of ['mnist', 'mnist-cnn']) {
    assert.equal(await row(m).getAttribute('data-status'), 'ok', m);
    const acc = await row(m).locator('td[data-col="accuracy"]').textContent();
    assert.ok(Number(acc.match(/([\d.]+) %/)?.[1]) > 80, `${m} accuracy ${acc}`);
    assert.match(await row(m).locator('td[data-col="p50, batch 1"]').textContent(), /[\d.e-]+ ms/);
  }
  assert.equal(await row('text-embed').getAttribute('data-status'), 'incompatible');
  assert.match(await row('text-embed').textContent(), /incompatible: .+/);
  assert.ok(await card.locator('td.best').count() >= 1, 'the best values are marked');
  // The scatter plot drew a point per compatible candidate, each in its colour.
  const sc = await chartDrew(p, `.eval[data-eval="${id}"] .scatter-chart`, [BLUE, RED]);
  assertChart('latency against accuracy', sc, { points: 2, colours: [BLUE, RED] });
  assert.deepEqual([sc.xLabel, sc.yLabel], ['latency p50, batch 1 (ms)', 'accuracy (%)']);
  // A 10×10 confusion matrix per compatible candidate, the diagonal hot.
  for (const m of ['mnist', 'mnist-cnn']) {
    const cm = card.locator(`table.confusion[data-model="${m}"]`);
    assert.equal(await cm.locator('td.cm').count(), 100, `${m}: 10×10`);
    const bg = await cm.locator('td.cm[data-i="1"][data-j="1"]').evaluate(e => getComputedStyle(e).backgroundColor);
    const [r, g, b] = bg.match(/\d+/g).map(Number);
    assert.ok(r > g + 60 && r > b + 60, `${m}: diagonal colour ${bg}`);
  }
  assert.equal(await card.locator('table.confusion[data-model="text-embed"]').count(), 0);
  await card.screenshot({ path: ART + 'evaluation.png' });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('evaluations: a server without the API shows no section and no link to one', async () => {
  const p = await page();
  await p.route('**/v1/evaluations', r => r.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"not found"}' }));
  await p.goto(BASE + '/console/#evaluations');
  await p.getByLabel('API key').fill(KEY);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.locator('.model[data-model="mnist"] .accuracy').waitFor({ timeout: 15000 });
  assert.equal(await p.isVisible('section#models'), true, 'an unknown section falls back to models');
  assert.equal(await p.isVisible('section#evaluations'), false);
  assert.equal(await p.isVisible('#nav-evaluations'), false);
  assert.deepEqual(p.errors.filter(e => !/status of 404/.test(e)), []);
  await p.context().close();
});

test('draw a 1, get the prediction and the heat map', async () => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  await go(p, 'Playground', 'playground');
  await drawOne(p);
  await p.getByRole('button', { name: 'Predict' }).click();
  const first = p.locator('#prediction li').first();
  await first.waitFor({ timeout: 30000 }).catch(async e => {
    await p.screenshot({ path: ART + 'playground-failed.png', fullPage: true });
    throw new Error(`no prediction; status: ${await p.textContent('#status')}; ${e.message}`);
  });
  assert.equal(await p.locator('#prediction li').count(), 3, 'top-3 shown');
  assert.equal((await first.locator('.label').textContent()).trim(), '1');
  await p.waitForSelector('#heat[data-drawn="1"]', { timeout: 15000 });
  assert.ok(await inked(p, '#heat') > 100, 'heat map drawn');
  await p.screenshot({ path: ART + 'playground.png', fullPage: true });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('the playground picks the CNN endpoint: draw a 1, the CNN predicts it', async () => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  await go(p, 'Playground', 'playground');
  await p.locator('#play-endpoint option[value="mnist-cnn"]').waitFor({ state: 'attached', timeout: 15000 });
  await p.getByLabel('Digit endpoint').selectOption('mnist-cnn');
  assert.match(await p.textContent('#play-model'), /model mnist-cnn/);
  await drawOne(p);
  await p.getByRole('button', { name: 'Predict' }).click();
  const first = p.locator('#prediction li').first();
  await first.waitFor({ timeout: 30000 }).catch(async e => {
    await p.screenshot({ path: ART + 'playground-cnn-failed.png', fullPage: true });
    throw new Error(`no prediction; status: ${await p.textContent('#status')}; ${e.message}`);
  });
  assert.equal((await first.locator('.label').textContent()).trim(), '1');
  await p.waitForSelector('#heat[data-drawn="1"]', { timeout: 15000 });
  assert.ok(await inked(p, '#heat') > 100, 'heat map of the CNN drawn');
  await p.screenshot({ path: ART + 'playground-cnn.png', fullPage: true });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('a training job started from the console shows live progress', async () => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  await go(p, 'Training', 'jobs');
  const name = 'browser-' + Date.now().toString(36);
  await p.getByLabel('Model', { exact: true }).fill(name);
  await p.getByLabel('Layers').fill('32');
  await p.getByLabel('Epochs').fill('1');
  await p.getByLabel('Examples').fill('2000');
  await p.getByRole('button', { name: 'Start training' }).click();
  const job = p.locator('.job', { hasText: name }).first();
  await job.waitFor({ timeout: 10000 });
  // The card is re-rendered on every poll, so wait on locators (which
  // re-query) rather than element handles.
  const st = job.locator('.job-status');
  await job.locator('.job-status', { hasText: /^(queued|running|succeeded)/ }).waitFor({ timeout: 30000 });
  await p.screenshot({ path: ART + 'training-running.png', fullPage: true });
  await job.locator('.job-status', { hasText: /^succeeded/ }).waitFor({ timeout: 60000 });
  // One epoch: one point, one tick under it, no y label printed twice.
  const jc = await chartDrew(p, `.job[data-job="${await job.getAttribute('data-job')}"] .job-chart`, [RED]);
  assertChart('job loss', jc, { points: 1, colours: [RED] });
  assert.deepEqual(jc.xTicks, ['1']);
  assert.match(await st.textContent(), /test accuracy [\d.]+%/);
  assert.equal(await job.locator('progress').getAttribute('value'), '1');
  await p.screenshot({ path: ART + 'training-done.png', fullPage: true });
  // The new model, with its one-epoch curves, is in Models.
  await go(p, 'Models', 'models');
  const card = `.model[data-model="${name}"]`;
  for (const [sel, colour] of [['.loss-chart', RED], ['.acc-chart', BLUE]]) {
    const c = await chartDrew(p, card + ' ' + sel, [colour]);
    assertChart(name + sel, c, { points: 1, colours: [colour] });
    assert.deepEqual(c.xTicks, ['1'], `${sel}: one epoch, one tick`);
  }
  await p.locator(card).screenshot({ path: ART + 'model-one-epoch.png' });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

// --- Text page (the demo's text-embed and text-gen endpoints: random
// weights, real tokenizers, real routes) ------------------------------------

async function textPage() {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  await go(p, 'Text', 'text');
  // The endpoint list arrives after sign-in.
  await p.locator('#text-endpoint option[value="text-gen"]').waitFor({ state: 'attached', timeout: 15000 }).catch(e => {
    throw new Error(`no text-gen endpoint: start the demo with a --plugins-dir holding wordpiece, bpe and pool (make plugins); ${e.message}`);
  });
  await p.locator('#text').scrollIntoViewIfNeeded();
  return p;
}

test('text: similarity matrix of two identical sentences and a third', async () => {
  const p = await textPage();
  await p.getByLabel('Endpoint', { exact: true }).selectOption('text-embed');
  assert.equal(await p.getByLabel('Mode', { exact: true }).inputValue(), 'embed', 'mode detected from the endpoint');
  assert.match(await p.textContent('#text-detected'), /embedding endpoint/);
  await p.getByLabel('Sentences, one per line').fill('The cat sat on the mat.\nThe cat sat on the mat.\nStock markets fell sharply today.');
  await p.getByRole('button', { name: 'Compare' }).click();
  const cells = p.locator('#sim-matrix td.sim');
  await cells.nth(8).waitFor({ timeout: 15000 });
  assert.equal(await cells.count(), 9, '3×3 matrix');
  const val = (i, j) => p.locator(`#sim-matrix td.sim[data-i="${i}"][data-j="${j}"]`).textContent();
  for (let i = 0; i < 3; i++) assert.equal(await val(i, i), '1.00', `diagonal ${i}`);
  assert.equal(await val(0, 1), '1.00', 'identical sentences');
  assert.equal(await val(1, 0), '1.00');
  assert.ok(Number(await val(0, 2)) < 0.99, `different sentences: ${await val(0, 2)}`);
  assert.equal(await val(0, 2), await val(2, 0), 'symmetric');
  // Heat: the diagonal is coloured (red), not white.
  const bg = await p.locator('#sim-matrix td.sim[data-i="0"][data-j="0"]').evaluate(e => getComputedStyle(e).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  assert.ok(r > g + 60 && r > b + 60, `diagonal colour ${bg}`);
  assert.match(await p.textContent('#sim-stats'), /^3 sentences · \d+ tokens · 64 dimensions · \d+(\.\d+)? m?s$/);
  await p.locator('#text').screenshot({ path: ART + 'text-similarity.png' });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('text: generation streams a completion and ends with a finish reason', async () => {
  const p = await textPage();
  await p.getByLabel('Endpoint', { exact: true }).selectOption('text-gen');
  assert.equal(await p.getByLabel('Mode', { exact: true }).inputValue(), 'generate', 'mode detected from the endpoint');
  assert.equal(await p.isVisible('#sim'), false);
  await p.getByLabel('Prompt', { exact: true }).fill('Once upon a time');
  await p.getByLabel('Max tokens').fill('160');
  await p.getByLabel('Temperature').fill('0.8');
  await p.getByLabel('Top-p').fill('0.95');
  await p.getByLabel('Seed', { exact: true }).fill('7');
  const run = async () => {
    // Record when the completion grows: streamed text grows in steps.
    await p.evaluate(() => {
      window.__growth = [];
      new MutationObserver(() => window.__growth.push(performance.now()))
        .observe(document.getElementById('gen-completion'), { childList: true, characterData: true, subtree: true });
    });
    await p.getByRole('button', { name: 'Generate' }).click();
    await p.locator('#gen-output[data-state="done"]').waitFor({ timeout: 30000 }).catch(async e => {
      await p.screenshot({ path: ART + 'text-generation-failed.png', fullPage: true });
      throw new Error(`generation did not finish: ${await p.textContent('#text-error')} ${e.message}`);
    });
    return p.textContent('#gen-completion');
  };
  const text = await run();
  assert.ok(text.length > 10, `completion: ${JSON.stringify(text)}`);
  const growth = await p.evaluate(() => window.__growth);
  // A stream of 160 tokens lasts a good half second: even a browser that
  // was busy for part of it sees the text arrive in several reads.
  assert.ok(new Set(growth.map(t => Math.round(t))).size >= 3, `appended as it arrived (${growth.length} appends)`);
  const stats = await p.textContent('#gen-stats');
  assert.match(stats, /^finish reason: length · 160 tokens \(prompt 4\) · [\d.]+ tokens\/s · first token after \d+(\.\d+)? m?s · total /);
  assert.equal(await p.textContent('#gen-prompt-echo'), 'Once upon a time');
  await p.locator('#text').screenshot({ path: ART + 'text-generation.png' });
  // The same seed gives the same text: the settings reach the server.
  assert.equal(await run(), text, 'same seed, same completion');
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('text: the stop button aborts a generation', async () => {
  const p = await textPage();
  await p.getByLabel('Endpoint', { exact: true }).selectOption('text-gen');
  await p.getByLabel('Max tokens').fill('512');
  await p.getByLabel('Seed', { exact: true }).fill('');
  const stop = p.getByRole('button', { name: 'Stop' });
  assert.equal(await stop.isDisabled(), true, 'nothing to stop yet');
  await p.getByRole('button', { name: 'Generate' }).click();
  await p.waitForFunction(() => document.getElementById('gen-completion').textContent.length > 0, null, { timeout: 15000 });
  await stop.click();
  await p.locator('#gen-output[data-state="stopped"]').waitFor({ timeout: 5000 });
  const stats = await p.textContent('#gen-stats');
  assert.match(stats, /^stopped by you after \d+ pieces? of text/);
  assert.doesNotMatch(stats, /finish reason/);
  const len = (await p.textContent('#gen-completion')).length;
  await p.waitForTimeout(500);
  assert.equal((await p.textContent('#gen-completion')).length, len, 'nothing appended after stopping');
  assert.equal(await stop.isDisabled(), true);
  assert.equal(await p.getByRole('button', { name: 'Generate' }).isDisabled(), false);
  await p.locator('#text').screenshot({ path: ART + 'text-stopped.png' });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('text: an error from the server is shown plainly (mode overridden)', async () => {
  const p = await textPage();
  await p.getByLabel('Endpoint', { exact: true }).selectOption('text-embed');
  await p.getByLabel('Mode', { exact: true }).selectOption('generate');
  assert.equal(await p.isVisible('#gen'), true, 'the override shows the generation form');
  await p.getByRole('button', { name: 'Generate' }).click();
  const alert = p.getByRole('alert');
  await alert.filter({ hasText: /not a decoder/ }).waitFor({ timeout: 15000 });
  assert.doesNotMatch(await alert.textContent(), /\{|object Object/, 'the message, not the JSON');
  assert.equal(await p.locator('#gen-output').getAttribute('data-state'), 'error');
  await p.locator('#text').screenshot({ path: ART + 'text-error.png' });
  // The browser logs the 400 itself; nothing else may fail.
  assert.deepEqual(p.errors.filter(e => !/status of 400/.test(e)), []);
  await p.context().close();
});
