package plugin

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/aiaas/aiaas/internal/safetensors"
)

// Element types, as spelled in safetensors headers (Tensor.DType). The
// host accepts every safetensors dtype in a preprocess output; what a
// model takes is in its signature.
const (
	DTypeF32 = safetensors.DTypeF32
	DTypeI64 = safetensors.DTypeI64
	DTypeI32 = safetensors.DTypeI32
)

// I64 returns an I64 tensor holding a copy of v: token ids, attention
// masks, type ids — what transformer models take.
func I64(name string, shape []int, v []int64) Tensor {
	data := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(x))
	}
	return Tensor{Name: name, DType: DTypeI64, Shape: append([]int(nil), shape...), Data: data}
}

// Int64s appends the values of an integer tensor (I64, I32, I16, I8, U8,
// U16, U32, BOOL) to dst, or of an F32 tensor whose values are all
// integers (as a model may return ids), and returns the extended slice.
func Int64s(t Tensor, dst []int64) ([]int64, error) {
	n := t.NumElements()
	size := t.DType.Size()
	if n < 0 || size == 0 || n*size != len(t.Data) {
		return dst, fmt.Errorf("plugin: tensor %q: dtype %q, shape %v and %d data bytes disagree", t.Name, t.DType, t.Shape, len(t.Data))
	}
	d := t.Data
	for i := range n {
		var x int64
		switch t.DType {
		case safetensors.DTypeI64:
			x = int64(binary.LittleEndian.Uint64(d[8*i:]))
		case safetensors.DTypeI32:
			x = int64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		case safetensors.DTypeU32:
			x = int64(binary.LittleEndian.Uint32(d[4*i:]))
		case safetensors.DTypeI16:
			x = int64(int16(binary.LittleEndian.Uint16(d[2*i:])))
		case safetensors.DTypeU16:
			x = int64(binary.LittleEndian.Uint16(d[2*i:]))
		case safetensors.DTypeI8:
			x = int64(int8(d[i]))
		case safetensors.DTypeU8, safetensors.DTypeBool:
			x = int64(d[i])
		case safetensors.DTypeF32:
			f := math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
			if f != float32(math.Trunc(float64(f))) || math.Abs(float64(f)) > 1<<53 {
				return dst, fmt.Errorf("plugin: tensor %q: element %d (%g) is not an integer", t.Name, i, f)
			}
			x = int64(f)
		default:
			return dst, fmt.Errorf("plugin: tensor %q: dtype %s is not an integer type", t.Name, t.DType)
		}
		dst = append(dst, x)
	}
	return dst, nil
}
