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
  // The model cards above the pad load one by one and push it down: draw
  // once they are all there.
  await p.locator('#model-list[aria-busy="false"]').waitFor({ timeout: 15000 });
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
  await p.locator('#model-list[aria-busy="false"]').waitFor({ timeout: 15000 });
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

// --- Text page (the demo's text-embed and text-gen endpoints: random
// weights, real tokenizers, real routes) ------------------------------------

async function textPage() {
  const p = await page();
  await signIn(p);
  await p.locator('#app').waitFor();
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
