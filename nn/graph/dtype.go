package graph

import (
	"fmt"

	"github.com/aiaas/aiaas/internal/safetensors"
)

// DType is the element type of a tensor. The zero value is Undefined.
type DType uint8

// The element types the runtime stores. Every operator says which of them
// it accepts; the importer refuses a graph whose operator is not
// registered for the types it is given.
const (
	Undefined DType = iota
	Float32
	Float64
	Float16 // storage and Cast only
	BFloat16
	Int8
	Int16
	Int32
	Int64
	Uint8
	Uint16
	Uint32
	Uint64
	Bool
	numDTypes
)

var dtypeInfo = [numDTypes]struct {
	name string // Open Inference Protocol spelling
	size int
	st   safetensors.DType
}{
	Undefined: {"UNDEFINED", 0, ""},
	Float32:   {"FP32", 4, safetensors.DTypeF32},
	Float64:   {"FP64", 8, safetensors.DTypeF64},
	Float16:   {"FP16", 2, safetensors.DTypeF16},
	BFloat16:  {"BF16", 2, safetensors.DTypeBF16},
	Int8:      {"INT8", 1, safetensors.DTypeI8},
	Int16:     {"INT16", 2, safetensors.DTypeI16},
	Int32:     {"INT32", 4, safetensors.DTypeI32},
	Int64:     {"INT64", 8, safetensors.DTypeI64},
	Uint8:     {"UINT8", 1, safetensors.DTypeU8},
	Uint16:    {"UINT16", 2, safetensors.DTypeU16},
	Uint32:    {"UINT32", 4, safetensors.DTypeU32},
	Uint64:    {"UINT64", 8, safetensors.DTypeU64},
	Bool:      {"BOOL", 1, safetensors.DTypeBool},
}

// String returns the Open Inference Protocol name of d ("FP32", "INT64",
// "BOOL" …).
func (d DType) String() string {
	if d < numDTypes {
		return dtypeInfo[d].name
	}
	return fmt.Sprintf("DType(%d)", d)
}

// Size returns the bytes of one element, 0 for Undefined or an unknown d.
func (d DType) Size() int {
	if d < numDTypes {
		return dtypeInfo[d].size
	}
	return 0
}

// ParseDType returns the DType of an Open Inference Protocol datatype name.
func ParseDType(s string) (DType, bool) {
	for d := Float32; d < numDTypes; d++ {
		if dtypeInfo[d].name == s {
			return d, true
		}
	}
	return Undefined, false
}

func (d DType) safetensors() safetensors.DType {
	if d < numDTypes {
		return dtypeInfo[d].st
	}
	return ""
}

func fromSafetensors(s safetensors.DType) (DType, bool) {
	for d := Float32; d < numDTypes; d++ {
		if dtypeInfo[d].st == s {
			return d, true
		}
	}
	return Undefined, false
}

// MarshalText writes the OIP name, so graphs in artifacts are readable.
func (d DType) MarshalText() ([]byte, error) {
	if d == Undefined || d >= numDTypes {
		return nil, fmt.Errorf("graph: cannot encode dtype %d", d)
	}
	return []byte(dtypeInfo[d].name), nil
}

// UnmarshalText reads an OIP name.
func (d *DType) UnmarshalText(b []byte) error {
	v, ok := ParseDType(string(b))
	if !ok {
		return fmt.Errorf("unknown dtype %q", printable(string(b)))
	}
	*d = v
	return nil
}

func (d DType) isFloat() bool { return d == Float32 || d == Float64 }

func (d DType) isInt() bool {
	switch d {
	case Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64:
		return true
	}
	return false
}

func (d DType) isSigned() bool {
	switch d {
	case Int8, Int16, Int32, Int64, Float32, Float64, Float16, BFloat16:
		return true
	}
	return false
}

// numeric is what the generic kernels compute on.
type numeric interface {
	~float32 | ~float64 | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}
