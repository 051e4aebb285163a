package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// InferInput is one input tensor. Data is the row-major tensor as a flat
// slice ([]float32, []float64, []int32, []int64, []uint8) or any value that
// encodes to the JSON the server expects.
type InferInput struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data,omitempty"`
}

// InferRequestedOutput names an output to return.
type InferRequestedOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// InferRequest is an Open Inference Protocol v2 inference request.
type InferRequest struct {
	ID         string                 `json:"id,omitempty"`
	Parameters map[string]any         `json:"parameters,omitempty"`
	Inputs     []InferInput           `json:"inputs"`
	Outputs    []InferRequestedOutput `json:"outputs,omitempty"`
}

// InferOutput is one output tensor. A JSON output keeps its data in Data
// as sent (flat or nested); a binary output's bytes are in Raw. Float32s
// reads either.
type InferOutput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Raw        []byte          `json:"-"`
}

// InferResponse is an Open Inference Protocol v2 inference response.
type InferResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version,omitempty"`
	ID           string         `json:"id,omitempty"`
	Parameters   map[string]any `json:"parameters,omitempty"`
	Outputs      []InferOutput  `json:"outputs"`
}

// Lineage returns the version and artifact sha256 that served the request
// (the response parameters model_version and model_sha256).
func (r *InferResponse) Lineage() (version, sha256 string) {
	if r == nil {
		return "", ""
	}
	version = paramString(r.Parameters["model_version"])
	if version == "" {
		version = r.ModelVersion
	}
	return version, paramString(r.Parameters["model_sha256"])
}

func paramString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	return ""
}

// Output returns the output called name, or nil.
func (r *InferResponse) Output(name string) *InferOutput {
	for i := range r.Outputs {
		if r.Outputs[i].Name == name {
			return &r.Outputs[i]
		}
	}
	return nil
}

// Float32s returns the output's elements as float32, from Raw (binary,
// FP32 little-endian) or from Data (a flat or nested JSON array of numbers).
func (o *InferOutput) Float32s() ([]float32, error) {
	if o.Raw != nil {
		if o.Datatype != "FP32" {
			return nil, fmt.Errorf("%w: output %q is %s, not FP32", ErrInvalidResponse, o.Name, o.Datatype)
		}
		if len(o.Raw)%4 != 0 {
			return nil, fmt.Errorf("%w: output %q has %d bytes, not a multiple of 4", ErrInvalidResponse, o.Name, len(o.Raw))
		}
		out := make([]float32, len(o.Raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(o.Raw[4*i:]))
		}
		return out, nil
	}
	// Fast path: a flat array, the common shape, decodes without an
	// allocation per element.
	var flat []float32
	if err := json.Unmarshal(o.Data, &flat); err == nil && flat != nil {
		return flat, nil
	}
	out, err := flattenNumbers(o.Data, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: output %q: %v", ErrInvalidResponse, o.Name, err)
	}
	return out, nil
}

// maxNesting bounds the depth of nested data arrays (tensors have few
// dimensions; a deep array is an attack on the stack).
const maxNesting = 32

// flattenNumbers appends the numbers of a flat or nested JSON array.
func flattenNumbers(raw json.RawMessage, dst []float32, depth int) ([]float32, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("data nested deeper than %d", maxNesting)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("data is not an array")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	for _, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '[' {
			var err error
			if dst, err = flattenNumbers(it, dst, depth+1); err != nil {
				return nil, err
			}
			continue
		}
		var f float64
		if err := json.Unmarshal(it, &f); err != nil {
			return nil, fmt.Errorf("data element %s is not a number", truncate(string(it), 20))
		}
		dst = append(dst, float32(f))
	}
	if dst == nil {
		dst = []float32{}
	}
	return dst, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// elements is the product of a shape, or -1 if a dimension is negative or
// the product overflows.
func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return -1
		}
		n *= d
	}
	return n
}

// sliceLen returns the length of the typed slices Infer understands, or -1.
func sliceLen(data any) int {
	switch d := data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []int32:
		return len(d)
	case []int64:
		return len(d)
	case []uint8:
		return len(d)
	}
	return -1
}

func checkInputs(req *InferRequest) error {
	if req == nil || len(req.Inputs) == 0 {
		return fmt.Errorf("%w: inference request has no inputs", ErrInvalidArgument)
	}
	for i, in := range req.Inputs {
		if in.Name == "" || in.Datatype == "" {
			return fmt.Errorf("%w: input %d needs a name and a datatype", ErrInvalidArgument, i)
		}
		n := elements(in.Shape)
		if n < 0 {
			return fmt.Errorf("%w: input %q: bad shape %v", ErrInvalidArgument, in.Name, in.Shape)
		}
		if l := sliceLen(in.Data); l >= 0 && int64(l) != n {
			return fmt.Errorf("%w: input %q: shape %v holds %d elements, data has %d", ErrInvalidArgument, in.Name, in.Shape, n, l)
		}
	}
	return nil
}

// Infer runs an inference in JSON. version "" means the latest; it may be
// a number or an alias ("prod"). A []uint8 input is sent as a JSON array of
// numbers. Goroutine-safe.
func (c *Client) Infer(ctx context.Context, model, version string, req *InferRequest) (*InferResponse, error) {
	p, err := modelPath(model, version)
	if err != nil {
		return nil, err
	}
	if err := checkInputs(req); err != nil {
		return nil, err
	}
	r := *req
	r.Inputs = append([]InferInput(nil), req.Inputs...)
	for i, in := range r.Inputs {
		if b, ok := in.Data.([]uint8); ok {
			// encoding/json would send []byte as base64.
			ints := make([]uint16, len(b))
			for j, v := range b {
				ints[j] = uint16(v)
			}
			r.Inputs[i].Data = ints
		}
	}
	b, err := jsonBody(&r)
	if err != nil {
		return nil, err
	}
	var v InferResponse
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: p + "/infer", body: b, safe: true}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// HeaderContentLength is the binary tensor extension's header: the size
// of the JSON part of a binary request or response.
const HeaderContentLength = "Inference-Header-Content-Length"

// InferBinary runs an inference with the binary tensor extension: every
// input's Data (a []float32, []float64, []int32, []int64 or []uint8 matching
// Datatype FP32, FP64, INT32, INT64 or UINT8) travels as raw little-endian
// bytes after the JSON header, and every output comes back as raw bytes in
// InferOutput.Raw. This avoids formatting and parsing floats as text.
// Goroutine-safe.
func (c *Client) InferBinary(ctx context.Context, model, version string, req *InferRequest) (*InferResponse, error) {
	p, err := modelPath(model, version)
	if err != nil {
		return nil, err
	}
	if err := checkInputs(req); err != nil {
		return nil, err
	}
	body, hlen, err := encodeBinaryRequest(req)
	if err != nil {
		return nil, err
	}
	k := &call{method: http.MethodPost, path: p + "/infer", safe: true,
		body:   bytesBody(body, "application/octet-stream"),
		header: http.Header{HeaderContentLength: {strconv.Itoa(hlen)}}}
	resp, err := c.do(ctx, k)
	if err != nil {
		return nil, err
	}
	hdr := resp.Header.Get(HeaderContentLength)
	raw, err := c.readAll(resp)
	if err != nil {
		return nil, fmt.Errorf("infer %s: %w", model, err)
	}
	hl := -1
	if hdr != "" {
		if hl, err = strconv.Atoi(hdr); err != nil || hl < 0 {
			return nil, fmt.Errorf("infer %s: %w: bad %s %q", model, ErrInvalidResponse, HeaderContentLength, hdr)
		}
	}
	out, err := DecodeInferResponse(raw, hl)
	if err != nil {
		return nil, fmt.Errorf("infer %s: %w", model, err)
	}
	return out, nil
}

// binarySize checks that an input's Go type matches its datatype (so a
// mistake is an error, not garbage) and returns its encoded size.
func binarySize(dt string, data any) (int, error) {
	switch d := data.(type) {
	case []float32:
		if dt == "FP32" {
			return 4 * len(d), nil
		}
	case []float64:
		if dt == "FP64" {
			return 8 * len(d), nil
		}
	case []int32:
		if dt == "INT32" {
			return 4 * len(d), nil
		}
	case []int64:
		if dt == "INT64" {
			return 8 * len(d), nil
		}
	case []uint8:
		if dt == "UINT8" {
			return len(d), nil
		}
	}
	return 0, fmt.Errorf("%w: binary input wants FP32 []float32, FP64 []float64, INT32 []int32, INT64 []int64 or UINT8 []uint8; got %s %T", ErrInvalidArgument, dt, data)
}

// appendBinary appends data (checked by binarySize) as little-endian bytes.
func appendBinary(dst []byte, data any) []byte {
	switch d := data.(type) {
	case []float32:
		for _, v := range d {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	case []float64:
		for _, v := range d {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
	case []int32:
		for _, v := range d {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
		}
	case []int64:
		for _, v := range d {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
		}
	case []uint8:
		dst = append(dst, d...)
	}
	return dst
}

// encodeBinaryRequest builds the JSON header (inputs with binary_data_size,
// outputs asked as binary) followed by the raw tensors in input order, in
// one allocation of the final size.
func encodeBinaryRequest(req *InferRequest) ([]byte, int, error) {
	r := InferRequest{ID: req.ID, Parameters: cloneParams(req.Parameters)}
	total := 0
	for _, in := range req.Inputs {
		n, err := binarySize(in.Datatype, in.Data)
		if err != nil {
			return nil, 0, fmt.Errorf("input %q: %w", in.Name, err)
		}
		total += n
		in.Parameters = cloneParams(in.Parameters)
		in.Parameters["binary_data_size"] = n
		in.Data = nil
		r.Inputs = append(r.Inputs, in)
	}
	if len(req.Outputs) == 0 {
		r.Parameters["binary_data_output"] = true
	}
	for _, o := range req.Outputs {
		o.Parameters = cloneParams(o.Parameters)
		o.Parameters["binary_data"] = true
		r.Outputs = append(r.Outputs, o)
	}
	hdr, err := json.Marshal(&r)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	body := make([]byte, 0, len(hdr)+total)
	body = append(body, hdr...)
	for _, in := range req.Inputs {
		body = appendBinary(body, in.Data)
	}
	return body, len(hdr), nil
}

func cloneParams(p map[string]any) map[string]any {
	out := make(map[string]any, len(p)+1)
	for k, v := range p {
		out[k] = v
	}
	return out
}

// DecodeInferResponse decodes an inference response body. headerLen is the
// Inference-Header-Content-Length (-1 when absent: the body is all JSON).
// Outputs whose parameters carry binary_data_size take their bytes, in
// order, from after the header; every byte must be accounted for. It never
// panics on hostile input. Goroutine-safe.
func DecodeInferResponse(body []byte, headerLen int) (*InferResponse, error) {
	if headerLen < 0 {
		headerLen = len(body)
	}
	if headerLen > len(body) {
		return nil, fmt.Errorf("%w: header length %d over body length %d", ErrInvalidResponse, headerLen, len(body))
	}
	var r InferResponse
	if err := json.Unmarshal(body[:headerLen], &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResponse, err)
	}
	rest := body[headerLen:]
	for i := range r.Outputs {
		o := &r.Outputs[i]
		v, ok := o.Parameters["binary_data_size"]
		if !ok {
			continue
		}
		f, ok := v.(float64)
		if !ok || f < 0 || f != math.Trunc(f) || f > float64(len(rest)) {
			return nil, fmt.Errorf("%w: output %q: binary_data_size %v does not fit the %d bytes left", ErrInvalidResponse, o.Name, v, len(rest))
		}
		n := int(f)
		o.Raw = rest[:n:n]
		rest = rest[n:]
		if len(o.Data) > 0 && string(o.Data) != "null" {
			return nil, fmt.Errorf("%w: output %q has both data and binary_data_size", ErrInvalidResponse, o.Name)
		}
		if sz := dtypeSize(o.Datatype); sz > 0 {
			if el := elements(o.Shape); el >= 0 && el <= math.MaxInt64/sz && el*sz != int64(n) {
				return nil, fmt.Errorf("%w: output %q: shape %v of %s needs %d bytes, got %d", ErrInvalidResponse, o.Name, o.Shape, o.Datatype, el*sz, n)
			}
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last binary output", ErrInvalidResponse, len(rest))
	}
	return &r, nil
}

func dtypeSize(dt string) int64 {
	switch dt {
	case "BOOL", "UINT8", "INT8":
		return 1
	case "UINT16", "INT16", "FP16":
		return 2
	case "UINT32", "INT32", "FP32":
		return 4
	case "UINT64", "INT64", "FP64":
		return 8
	}
	return 0
}
