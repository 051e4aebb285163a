// Package nn is the neural-network engine of aiaas: it builds, trains,
// runs, explains and serialises the dense networks the platform serves.
//
// # Overview
//
// A network is described by a Spec: one input signature [-1, D], one output
// signature [-1, K], and a list of layers — "dense" (with a relu, tanh,
// sigmoid, softmax or linear activation) and "dropout" (active only while
// training). New turns a Spec into a Model with Keras' default
// initialisation; ReadArtifact loads one from a safetensors file.
//
//	m, err := nn.New(nn.MLP("mnist", 784, []int{128, 128}, "relu", 10, "softmax"), 1)
//	h, err := nn.Train(ctx, m, x, y, nil, n, nn.TrainConfig{Epochs: 5})
//	out, err := m.Forward(dst, batch, rows)
//
// Every matrix product goes through gonum's blas32 (Gemm), in float32, so a
// faster blas.Float32 registered with blas32.Use speeds up serving and
// training without a change here. Float32 was chosen by measurement: gonum's
// SGEMM runs the MNIST model's first-layer product about 1.8× faster than
// its DGEMM (BenchmarkGemmPrecision), weights are stored as F32 anyway, and
// float32 is what Keras trains in. Losses, softmax normalisers and
// attribution sums are accumulated in float64.
//
// # Serving
//
// A Model's weights do not change after New or ReadArtifact, so Forward,
// Evaluate and Attribute are safe for concurrent use on one Model. Forward
// takes its scratch buffers from a per-model sync.Pool and works in chunks
// of at most 256 rows (fewer for wide layers), so its scratch is at most
// 2 MiB per concurrent call whatever the batch, and steady-state calls with
// a caller-supplied dst do not allocate.
//
// When nn/kernels is the registered BLAS (the default, see Kernel),
// Forward does not go through blas32: New, ReadArtifact, Clone and Train
// pack each dense layer's weights once into the micro-kernel's panel
// layout (kernels.Pack, about one more copy of the weights per model), and
// each layer is one kernels.Dense call with the bias and ReLU fused into
// the kernel's store; tanh, sigmoid and softmax follow on the output while
// it is in cache. Registering another BLAS restores the blas32 path.
//
// # Training
//
// Train is the Keras fit loop: mini-batches from a permutation drawn afresh
// every epoch from cfg.Seed, sparse categorical cross-entropy, categorical
// cross-entropy or mean squared error, SGD, momentum or Adam with Keras'
// constants, validation on the last fraction of the samples, early
// stopping and a throttled progress callback. Softmax followed by
// cross-entropy uses the fused gradient p − t. Training mutates the model
// and is single-owner: nothing else may use the model meanwhile. The same
// spec, seed, data and configuration give bit-identical weights and
// history on the same machine (and BLAS implementation).
//
// # Explaining
//
// Attribute returns per-feature attributions for one output of one sample:
// gradient × input, or integrated gradients from a zero baseline, whose sum
// approximates f(x) − f(0).
//
// # Artifacts
//
// A model artifact is a safetensors file: F32 tensors layers.{i}.weight of
// shape [in, out] (the Keras kernel layout, so the forward product is a
// plain x·W) and layers.{i}.bias of shape [out], where i is the layer's
// index in Spec.Layers (dropout layers have no tensors), and, in
// "__metadata__", "format_version" "1", the Spec as JSON in "aiaas.spec",
// optional "aiaas.metrics" and "aiaas.provenance" JSON objects, and an
// optional "aiaas.labels" JSON array: the class names of the output.
//
// # Untrusted input
//
// Specs, inputs, training data and artifacts come from tenants. Spec.Validate
// bounds every size before anything is allocated (MaxLayers, MaxUnits,
// MaxParams); Forward, Train and Attribute check sizes before touching
// gonum, which would panic; ReadArtifact rejects malformed or inconsistent
// files and NaN or infinite weights. Nothing reachable from a request
// panics. Errors wrap ErrShape, ErrSpec or ErrArtifact (all client errors),
// or a context error; only WriteArtifact also returns its writer's errors.
//
// This package must never read files, the network or the environment: data
// sets come in as slices (see package nn/dataset) and artifacts as bytes.
package nn
