package oip

import (
	"encoding/json"
	"errors"
)

var (
	// ErrBadRequest is wrapped by every decoding error: the client sent
	// something this protocol or these limits do not allow (HTTP 400).
	ErrBadRequest = errors.New("oip: bad request")
	// ErrTooLarge is wrapped, in addition to ErrBadRequest, by errors about
	// a limit of Limits being exceeded (HTTP 413 if the caller cares).
	ErrTooLarge = errors.New("oip: request too large")
)

// The tensor datatypes of the protocol.
const (
	BOOL   = "BOOL"
	UINT8  = "UINT8"
	UINT16 = "UINT16"
	UINT32 = "UINT32"
	UINT64 = "UINT64"
	INT8   = "INT8"
	INT16  = "INT16"
	INT32  = "INT32"
	INT64  = "INT64"
	FP16   = "FP16"
	FP32   = "FP32"
	FP64   = "FP64"
	BYTES  = "BYTES"
)

// wideInt reports whether dt is an integer datatype whose values float32
// cannot all hold exactly.
func wideInt(dt string) bool {
	switch dt {
	case INT32, INT64, UINT32, UINT64:
		return true
	}
	return false
}

// ElementSize returns the size in bytes of one element of datatype in the
// binary representation, and whether the datatype exists. BYTES has size 0:
// its elements are length-prefixed. Safe for concurrent use.
func ElementSize(datatype string) (int, bool) {
	switch datatype {
	case BOOL, UINT8, INT8:
		return 1, true
	case UINT16, INT16, FP16:
		return 2, true
	case UINT32, INT32, FP32:
		return 4, true
	case UINT64, INT64, FP64:
		return 8, true
	case BYTES:
		return 0, true
	}
	return 0, false
}

// InferenceRequest is a decoded $inference_request.
type InferenceRequest struct {
	ID string
	// Parameters holds the request's parameters as given, binary_data_output
	// included. Values are string, bool or json.Number (exact, and
	// re-encodes unchanged).
	Parameters map[string]any
	Inputs     []RequestInput
	// Outputs are the requested outputs; empty means all of them, with
	// BinaryOutput deciding their encoding.
	Outputs []RequestOutput
	// BinaryOutput is the binary_data_output parameter: return outputs as
	// binary data unless a requested output says otherwise.
	BinaryOutput bool
}

// RequestInput is one decoded $request_input.
type RequestInput struct {
	Name     string
	Shape    []int64
	Datatype string
	// Parameters as given, binary_data_size included (see
	// InferenceRequest.Parameters for the value types).
	Parameters map[string]any
	// F32 holds the elements of a numeric or BOOL input, converted to
	// float32 after range checks, row-major, len == product(Shape). FP16
	// values given as JSON numbers are range-checked (|v| <= 65504) but not
	// rounded to half precision; binary FP16 is widened exactly.
	F32 []float32
	// I64 holds, for the 32- and 64-bit integer datatypes (INT32, INT64,
	// UINT32, UINT64), the elements exactly (F32 rounds past 2^24: token
	// ids and indices need them exact); nil for the others. UINT64 values
	// above the int64 range are refused.
	I64 []int64
	// Bytes holds the elements of a BYTES input; nil otherwise. For JSON
	// data they are the strings' UTF-8 bytes; for binary data they alias
	// the request body.
	Bytes [][]byte
	// Binary reports whether the data came through the binary extension.
	Binary bool
}

// RequestOutput is one $request_output.
type RequestOutput struct {
	Name       string
	Parameters map[string]any
	// Binary is the output's binary_data parameter, or the request's
	// binary_data_output when the output does not say.
	Binary bool
}

// InferenceResponse is an $inference_response for AppendResponse.
type InferenceResponse struct {
	ModelName    string
	ModelVersion string // omitted when empty, as the protocol asks of unversioned servers
	ID           string // omitted when empty
	Parameters   map[string]any
	Outputs      []ResponseOutput
}

// ResponseOutput is one $response_output.
type ResponseOutput struct {
	Name     string
	Shape    []int64
	Datatype string // FP32 if empty
	// F32 holds the values of a numeric or BOOL output; they are written
	// in the output's datatype (integers truncated toward zero, BOOL as
	// v != 0).
	F32 []float32
	// I64, when set (instead of F32), holds the values of an integer
	// output exactly.
	I64 []int64
	// Bytes holds the elements of a BYTES output.
	Bytes [][]byte
	// Binary sends the data through the binary extension instead of JSON.
	Binary     bool
	Parameters map[string]any
}

// ErrorResponse is the protocol's error object, {"error": "..."}.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ServerMetadata is the $metadata_server_response. Extensions lists the
// supported extensions ("binary_tensor_data" for ours); nil encodes as [].
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// MarshalJSON writes a nil Extensions as [], which the schema requires.
func (m ServerMetadata) MarshalJSON() ([]byte, error) {
	type plain ServerMetadata
	if m.Extensions == nil {
		m.Extensions = []string{}
	}
	return json.Marshal(plain(m))
}

// TensorMetadata is a $metadata_tensor; -1 in Shape is a variable dimension.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// MarshalJSON writes a nil Shape (a scalar) as [].
func (t TensorMetadata) MarshalJSON() ([]byte, error) {
	type plain TensorMetadata
	if t.Shape == nil {
		t.Shape = []int64{}
	}
	return json.Marshal(plain(t))
}

// ModelMetadata is the $metadata_model_response.
type ModelMetadata struct {
	Name       string            `json:"name"`
	Versions   []string          `json:"versions,omitempty"`
	Platform   string            `json:"platform"`
	Inputs     []TensorMetadata  `json:"inputs"`
	Outputs    []TensorMetadata  `json:"outputs"`
	Properties map[string]string `json:"properties,omitempty"`
}

// MarshalJSON writes nil Inputs and Outputs as [].
func (m ModelMetadata) MarshalJSON() ([]byte, error) {
	type plain ModelMetadata
	if m.Inputs == nil {
		m.Inputs = []TensorMetadata{}
	}
	if m.Outputs == nil {
		m.Outputs = []TensorMetadata{}
	}
	return json.Marshal(plain(m))
}

// ModelReady is the $ready_model_response.
type ModelReady struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
}

// ServerLive is the $live_server_response.
type ServerLive struct {
	Live bool `json:"live"`
}

// ServerReady is the $ready_server_response. The specification's schema
// names its field "live" (a slip copied from the live response) while
// KServe and Triton answer "ready"; set both to the readiness so that
// clients written against either read the right answer.
type ServerReady struct {
	Live  bool `json:"live"`
	Ready bool `json:"ready"`
}
