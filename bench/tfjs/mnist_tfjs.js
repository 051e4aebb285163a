// Side-by-side reference: the seed's Keras MNIST recipe in TensorFlow.js
// with the WebAssembly backend (784 → 128 relu → 128 relu → 10 softmax,
// Adam 0.001/0.9/0.999/1e-7, Glorot-uniform kernels and zero biases (the
// tf.layers.dense defaults, as in Keras), batch 32, shuffle each epoch).
// Prints one JSON object on stdout, progress on stderr.
//
//   node mnist_tfjs.js MNIST_DIR EPOCHS
//
// tf.js has no global seed, so runs differ slightly from one another.
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');

function idx(file) {
  const b = zlib.gunzipSync(fs.readFileSync(file));
  const magic = b.readUInt32BE(0);
  const n = b.readUInt32BE(4);
  if (magic === 0x803) return { n, data: b.subarray(16) };
  if (magic === 0x801) return { n, data: b.subarray(8) };
  throw new Error(file + ': not IDX');
}

function load(dir, prefix) {
  const im = idx(path.join(dir, prefix + '-images-idx3-ubyte.gz'));
  const lb = idx(path.join(dir, prefix + '-labels-idx1-ubyte.gz'));
  const x = new Float32Array(im.n * 784);
  for (let i = 0; i < x.length; i++) x[i] = im.data[i] / 255;
  return { x: tf.tensor2d(x, [im.n, 784]), y: tf.tensor1d(Int32Array.from(lb.data), 'int32'), n: im.n };
}

(async () => {
  const dir = process.argv[2];
  const epochs = +(process.argv[3] || 5);
  await tf.setBackend(process.env.TFJS_BACKEND || 'wasm');
  await tf.ready();
  const train = load(dir, 'train');
  const test = load(dir, 't10k');
  const ytrain = tf.oneHot(train.y, 10).toFloat();
  const ytest = tf.oneHot(test.y, 10).toFloat();
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [784], units: 128, activation: 'relu' }));
  model.add(tf.layers.dense({ units: 128, activation: 'relu' }));
  model.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  model.compile({ optimizer: tf.train.adam(0.001, 0.9, 0.999, 1e-7), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const perEpoch = [];
  let t0 = Date.now();
  const start = Date.now();
  await model.fit(train.x, ytrain, {
    batchSize: 32, epochs, shuffle: true, verbose: 0,
    callbacks: { onEpochEnd: async (e, logs) => {
      const now = Date.now();
      perEpoch.push({ epoch: e + 1, loss: logs.loss, accuracy: logs.acc, seconds: (now - t0) / 1000 });
      t0 = now;
      console.error(`epoch ${e + 1}: loss ${logs.loss.toFixed(4)} acc ${logs.acc.toFixed(4)} ${perEpoch[e].seconds}s`);
    } },
  });
  const wall = (Date.now() - start) / 1000;
  const [, acc] = model.evaluate(test.x, ytest, { batchSize: 1000 });
  console.log(JSON.stringify({
    backend: tf.getBackend(), tfjs: tf.version.tfjs,
    wasm_simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    wasm_threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
    test_accuracy: (await acc.data())[0], wall_seconds: wall, epochs: perEpoch,
  }));
})();
