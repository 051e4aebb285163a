// gen.js writes ONNX models the way PyTorch (torch.onnx.export of
// nn.Linear: Gemm with transB=1) and tf2onnx (Keras Dense: MatMul + Add)
// lay them out, encoded by onnx-proto (protobufjs code generated from the
// official onnx.proto, independent of our hand-written encoder), runs them
// with ONNX Runtime (onnxruntime-node) and stores the inputs and ORT's
// outputs next to them. nn/onnx's tests import the files and must
// reproduce ORT's outputs.
//
//   node bench/onnxgen/gen.js nn/onnx/testdata
'use strict';
const fs = require('fs');
const path = require('path');
const { onnx } = require('onnx-proto');
const ort = require('onnxruntime-node');

let seed = 12345;
function rnd() { // deterministic LCG in [-1, 1)
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 1073741824 - 1;
}
function randArr(n, scale) { return Array.from({ length: n }, () => rnd() * scale); }

function tensor(name, dims, vals, raw) {
  const t = { name, dims, dataType: onnx.TensorProto.DataType.FLOAT };
  if (raw) t.rawData = Buffer.from(new Float32Array(vals).buffer);
  else t.floatData = vals;
  return onnx.TensorProto.create(t);
}
function vi(name, batchParam, width) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: batchParam }, { dimValue: width }] } } },
  });
}
function node(op, inputs, outputs, attrs) {
  return onnx.NodeProto.create({ opType: op, input: inputs, output: outputs, name: op + '_' + outputs[0], attribute: attrs || [] });
}
const intAttr = (name, i) => onnx.AttributeProto.create({ name, i, type: onnx.AttributeProto.AttributeType.INT });
const floatAttr = (name, f) => onnx.AttributeProto.create({ name, f, type: onnx.AttributeProto.AttributeType.FLOAT });

// PyTorch style: Linear(6,8) ReLU Linear(8,5) Tanh Linear(5,4) Softmax(dim=1).
function torchModel() {
  const sizes = [6, 8, 5, 4];
  const init = [], nodes = [];
  let cur = 'input.1';
  const acts = ['Relu', 'Tanh', 'Softmax'];
  for (let i = 0; i < 3; i++) {
    const [inn, out] = [sizes[i], sizes[i + 1]];
    // torch keeps Linear.weight as [out, in]; float_data on the first layer,
    // raw_data on the others, as both appear in the wild.
    init.push(tensor(`fc${i}.weight`, [out, inn], randArr(out * inn, 0.7), i > 0));
    init.push(tensor(`fc${i}.bias`, [out], randArr(out, 0.3), i > 0));
    const attrs = [floatAttr('alpha', 1), floatAttr('beta', 1), intAttr('transB', 1)];
    nodes.push(node('Gemm', [cur, `fc${i}.weight`, `fc${i}.bias`], [`/fc${i}/Gemm_output_0`], attrs));
    cur = `/fc${i}/Gemm_output_0`;
    const out_ = i === 2 ? 'output' : `/act${i}/output_0`;
    nodes.push(node(acts[i], [cur], [out_], acts[i] === 'Softmax' ? [intAttr('axis', 1)] : []));
    cur = out_;
  }
  return onnx.ModelProto.create({
    irVersion: 8, producerName: 'pytorch', producerVersion: '2.5.0',
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'main_graph', node: nodes, initializer: init, input: [vi('input.1', 'batch_size', 6)], output: [vi('output', 'batch_size', 4)] },
  });
}

// tf2onnx style: Dense(7, sigmoid) Dense(3, softmax) as MatMul + Add, bias
// as the first operand of the second Add, a trailing Identity, alpha-less.
function kerasModel() {
  const init = [
    tensor('sequential/dense/MatMul/ReadVariableOp:0', [5, 7], randArr(35, 0.8), true),
    tensor('sequential/dense/BiasAdd/ReadVariableOp:0', [7], randArr(7, 0.2), true),
    tensor('sequential/dense_1/MatMul/ReadVariableOp:0', [7, 3], randArr(21, 0.8), true),
    tensor('sequential/dense_1/BiasAdd/ReadVariableOp:0', [3], randArr(3, 0.2), false),
  ];
  const nodes = [
    node('MatMul', ['dense_input', 'sequential/dense/MatMul/ReadVariableOp:0'], ['mm0']),
    node('Add', ['mm0', 'sequential/dense/BiasAdd/ReadVariableOp:0'], ['add0']),
    node('Sigmoid', ['add0'], ['sig0']),
    node('MatMul', ['sig0', 'sequential/dense_1/MatMul/ReadVariableOp:0'], ['mm1']),
    node('Add', ['sequential/dense_1/BiasAdd/ReadVariableOp:0', 'mm1'], ['add1']),
    node('Softmax', ['add1'], ['sm1'], [intAttr('axis', -1)]),
    node('Identity', ['sm1'], ['dense_1']),
  ];
  return onnx.ModelProto.create({
    irVersion: 7, producerName: 'tf2onnx', producerVersion: '1.16.1',
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'tf2onnx', node: nodes, initializer: init, input: [vi('dense_input', 'unk__6', 5)], output: [vi('dense_1', 'unk__7', 3)] },
  });
}

async function main() {
  const dir = process.argv[2] || '.';
  for (const [name, model, width] of [['torch_mlp', torchModel(), 6], ['keras_mlp', kerasModel(), 5]]) {
    const bytes = onnx.ModelProto.encode(model).finish();
    const file = path.join(dir, name + '.onnx');
    fs.writeFileSync(file, bytes);
    const batch = 3;
    const x = randArr(batch * width, 2);
    const sess = await ort.InferenceSession.create(file);
    const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(x), [batch, width]) };
    const res = await sess.run(feeds);
    const y = res[sess.outputNames[0]];
    fs.writeFileSync(path.join(dir, name + '.json'), JSON.stringify({
      producer: 'onnx-proto ' + require('onnx-proto/package.json').version + ', outputs by onnxruntime-node ' + require('onnxruntime-node/package.json').version,
      batch, input: Array.from(Float32Array.from(x)), output: Array.from(y.data), output_dims: y.dims,
    }) + '\n');
    console.log(file, bytes.length, 'bytes; ORT output dims', y.dims);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
