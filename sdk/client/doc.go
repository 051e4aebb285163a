// Package client is the Go client of the aiaas HTTP API: the Open Inference
// Protocol v2 data plane (health, metadata, inference in JSON and with the
// binary tensor extension), endpoints, and the control plane (tenants, keys,
// models, aliases, plugins, datasets, training jobs, audit log).
//
// It uses only the standard library, so tenants can import it without
// pulling the platform's dependencies.
//
// # Overview
//
// Create one [Client] per server and share it: every method is safe for
// concurrent use by multiple goroutines. Every call takes a
// [context.Context] first and returns typed structs whose JSON tags are the
// wire shapes of the API.
//
//	c, err := client.New("http://127.0.0.1:8080", &client.Options{APIKey: key})
//	resp, err := c.Infer(ctx, "mnist", "prod", &client.InferRequest{
//		Inputs: []client.InferInput{{Name: "input", Datatype: "FP32", Shape: []int64{1, 784}, Data: pixels}},
//	})
//
// # Errors
//
// A refusal by the server is an [*APIError] carrying the HTTP status, the
// server's message and its X-Request-Id; [IsNotFound], [IsUnauthorized] and
// friends classify it without a type assertion. Arguments the client can
// check itself (an empty model name, a tensor whose data does not match its
// shape) fail with [ErrInvalidArgument] before any request is sent, and a
// response the client cannot decode wraps [ErrInvalidResponse].
//
// # Retries
//
// Requests refused with 429 or 503, and requests that never reached the
// server (connection refused, DNS), are retried with jittered exponential
// backoff that honours Retry-After, up to [RetryPolicy].MaxAttempts. A
// request is retried only when repeating it cannot apply a change twice: GET,
// PUT and DELETE (idempotent by the API's design), the side-effect-free POSTs
// (infer, invoke, explain), or any request the server demonstrably did not
// process (a 429/503 refusal, or a dial error). Streamed uploads are retried
// only when their reader is an [io.Seeker] the client can rewind.
//
// # Large uploads
//
// One request carries at most about 6 MiB through API Gateway.
// [Client.UploadModel] and [Client.UploadDataset] send anything up to the
// server's limit as a staged upload: signed part URLs (S3 presigned URLs
// on Lambda), each part PUT straight to them and retried on its own, then
// a commit that the server makes idempotent, so it is retried too. Above
// [SingleRequestLimit] they are the only way; the CLI picks them by itself.
//
// # Limits
//
// The client never buffers an upload: PushModel, PushPlugin, PutDataset and
// Invoke stream the caller's reader with Content-Length set. Responses are
// read up to [Options].MaxResponseBytes (64 MiB by default) so that a
// misbehaving server cannot exhaust the caller's memory.
package client
