// Package graph is aiaas' runtime for imported models: ONNX graphs of the
// operators it implements (see Operators), run on nn/kernels.
//
// # Overview
//
// A Graph is what an artifact stores: nodes in topological order with
// their attributes, the graph's inputs and outputs with element types and
// shapes (-1 for a dynamic dimension), and the ai.onnx opset; tensors
// (initializers and tensor attributes) are kept beside it by name.
//
//	m, meta, err := graph.ReadArtifact(b, nil)     // or graph.Load(g, tensors, nil)
//	out, err := m.Run(ctx, []*graph.Tensor{x}, nil) // any shape the graph accepts
//
// The runtime works in stages, as ONNX Runtime does:
//
//  1. Load validates the graph, evaluates once every node whose inputs are
//     all constants, fuses (fuse.go: BatchNormalization into Conv; a
//     residual Add and an activation into the convolution's epilogue, the
//     internal operator aiaas.Conv; and, in transformers,
//     fuse_transformer.go: LayerNorm, GELU, Dense and attention), drops
//     what no output needs, packs convolution weights for the GEMM
//     micro-kernel, and plans the graph for its declared input shapes so
//     that a graph that cannot run is refused at load.
//  2. A plan is built the first time Run sees a set of input shapes:
//     every operator's builder checks its inputs and attributes and infers
//     its output shapes; nodes whose inputs are known (Shape of a known
//     shape, and the Gather/Concat/Unsqueeze arithmetic exporters hang on
//     it) are folded to constants; views (Reshape, Flatten, Squeeze,
//     Unsqueeze, Identity) share their input's bytes; and a memory planner
//     places every other value in one arena, greedy by size, reusing the
//     space of values that are dead. A graph input whose value decides
//     shapes (a Reshape's shape fed as an input) makes the plan keyed on
//     that value too. Plans are cached per model (Options.MaxPlans).
//  3. Run takes an arena from the model's pool of idle arenas (the smallest
//     that fits, whichever plan used it last) and calls each step's
//     kernel; after the first run of a shape it allocates nothing, and a
//     new shape reuses memory already mapped (a decoder's plan per cache
//     length, a CNN's per image size).
//
// Operators are registered per (type, first opset version) in registry.go,
// so an opset variant is one registration. Kernels get their shapes at
// plan time and never allocate or panic at run time.
//
// # Concurrency
//
// A Model is immutable after Load; Run, Cost, Inputs and Outputs are safe
// for concurrent use. Plans are shared, arenas are not.
//
// # Untrusted input
//
// Graphs, tensors and request inputs come from tenants. Validate bounds
// every count and name; planning checks every shape before a kernel runs
// and bounds each run's activations (Options.MaxArenaBytes); data that
// indexes (Gather's indices) is checked by the kernel. Errors wrap
// nn.ErrArtifact (a malformed graph), ErrUnsupported (an operator, type or
// attribute value not implemented) or nn.ErrShape (inputs that do not fit);
// a panic in a kernel — a bug — is caught and returned as ErrInternal.
//
// This package never reads files or the network.
package graph
