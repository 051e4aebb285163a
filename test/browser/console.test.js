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

// Number of non-white pixels on a canvas.
const inked = (p, sel) => p.$eval(sel, c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
  return n;
});

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
  const acc = await card.locator('.accuracy').textContent();
  const m = acc.match(/test accuracy ([\d.]+)%/);
  assert.ok(m, `accuracy shown: ${acc}`);
  assert.ok(Number(m[1]) > 80, `accuracy ${m[1]}% > 80%`);
  assert.ok(await inked(p, '.model[data-model="mnist"] .loss-chart') > 200, 'loss curve drawn');
  assert.ok(await inked(p, '.model[data-model="mnist"] .acc-chart') > 200, 'accuracy curve drawn');
  // Key only in sessionStorage; sign-out clears it.
  assert.equal(await p.evaluate(() => localStorage.length), 0);
  assert.equal(await p.evaluate(() => sessionStorage.getItem('aiaas.key')), KEY);
  await p.screenshot({ path: ART + 'models.png', fullPage: true });
  await p.getByRole('button', { name: 'Sign out' }).click();
  assert.equal(await p.evaluate(() => sessionStorage.getItem('aiaas.key')), null);
  assert.equal(await p.isVisible('#signin-form'), true);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('draw a 1, get the prediction and the heat map', async () => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
  const pad = p.locator('#pad');
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  const x = box.x + box.width / 2;
  await p.mouse.move(x, box.y + 50);
  await p.mouse.down();
  for (let y = 50; y <= 230; y += 10) await p.mouse.move(x, box.y + y);
  await p.mouse.up();
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

test('a training job started from the console shows live progress', async () => {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
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
  assert.ok(await inked(p, `.job[data-job="${await job.getAttribute('data-job')}"] canvas`) > 50, 'job loss curve drawn');
  assert.match(await st.textContent(), /test accuracy [\d.]+%/);
  assert.equal(await job.locator('progress').getAttribute('value'), '1');
  await p.screenshot({ path: ART + 'training-done.png', fullPage: true });
  assert.deepEqual(p.errors, []);
  await p.context().close();
});
