// Package apigw adapts AWS Lambda HTTP events to a standard [http.Handler].
//
// # Overview
//
// The platform is one [http.Handler]; on AWS Lambda it sits behind API
// Gateway or a Lambda function URL, which deliver each HTTP request as a JSON
// event and expect a JSON response object back. An [Adapter] turns one event
// into an [*http.Request], runs the handler into a bounded in-memory
// response, and encodes the result in the shape the caller expects.
//
// Three event shapes are recognised from the event itself, no configuration:
//
//   - API Gateway HTTP API, payload format 2.0 ("version": "2.0", a
//     requestContext.http object): rawPath, rawQueryString, a cookies array,
//     comma-joined header values.
//   - API Gateway REST API and HTTP API payload format 1.0 ("httpMethod"):
//     path, multiValueHeaders and multiValueQueryStringParameters.
//   - Lambda function URLs: the 2.0 shape, with a requestContext.domainName
//     under lambda-url.
//
// Responses mirror the request's shape: multiValueHeaders for 1.0, a headers
// map plus a cookies array (from Set-Cookie) for 2.0 and function URLs. A
// body whose Content-Type is not text (text/*, JSON, XML, JavaScript, form
// data) or is not valid UTF-8 is base64-encoded, so binary tensors and images
// survive the JSON envelope byte for byte.
//
// # Failure model
//
// An Adapter never returns an error to the Lambda runtime and never lets a
// panic reach it: a panic in the runtime's handler kills the process and the
// API caller would see a bare 502. Instead every failure becomes an HTTP
// response with a JSON body {"error": "..."}:
//
//   - an event that is not one of the shapes above, is malformed or too large: 400 / 413;
//   - a handler panic: 500 (the panic and its stack are logged);
//   - the handler still running when the invocation deadline (less a margin)
//     passes: 504;
//   - a response larger than Lambda's 6 MB payload limit: 502.
//
// The adapter is stateless per invocation; see [Adapter] for concurrency.
package apigw
