// Command hostile is a test plugin whose preprocess misbehaves in the way
// its request content type names. The host tests build it from source.
package main

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/aiaas/aiaas/sdk/plugin"
)

func init() {
	plugin.HandlePreprocess(preprocess)
}

func main() {}

var (
	sink    [][]byte
	counter int
)

func preprocess(req plugin.Request) ([]plugin.Tensor, error) {
	mode, arg, _ := strings.Cut(req.ContentType, ";")
	n, _ := strconv.Atoi(arg)
	switch mode {
	case "loop": // never returns
		for {
		}
	case "bomb": // grows memory until the cap stops it
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "big": // an output of n MiB
		return []plugin.Tensor{{Name: "input", DType: "U8", Shape: []int{n << 20}, Data: make([]byte, n<<20)}}, nil
	case "panic":
		var m map[string]int
		m["x"] = 1
	case "recurse":
		return recurse(1), nil
	case "garbage": // n KiB of garbage per call, kept nowhere
		b := make([]byte, n<<10)
		b[len(b)-1] = 1
		return []plugin.Tensor{plugin.F32("input", []int{1}, []float32{float32(b[len(b)-1])})}, nil
	case "keep": // n KiB retained per call: the high-water mark must catch it
		sink = append(sink, make([]byte, n<<10))
	case "sum": // a guest loop over the body's f32 values, n times
		var s float32
		for r := 0; r < n; r++ {
			for i := 0; i+4 <= len(req.Body); i += 4 {
				s += math.Float32frombits(binary.LittleEndian.Uint32(req.Body[i:]))
			}
		}
		return []plugin.Tensor{plugin.F32("sum", []int{1}, []float32{s})}, nil
	case "count": // per-instance state: proves instances are not shared
		counter++
		return []plugin.Tensor{plugin.F32("count", []int{1}, []float32{float32(counter)})}, nil
	case "print":
		for i := 0; i < n; i++ {
			println("hostile: line", i)
		}
	case "error":
		return nil, &msgError{strings.Repeat("e", n)}
	case "badtensor":
		return []plugin.Tensor{{Name: "x", DType: "F32", Shape: []int{4}, Data: make([]byte, 3)}}, nil
	}
	return []plugin.Tensor{plugin.F32("input", []int{1}, []float32{1})}, nil
}

type msgError struct{ s string }

func (e *msgError) Error() string { return e.s }

func recurse(d int) []plugin.Tensor {
	var pad [64]byte
	pad[d%64] = byte(d)
	if d < 0 {
		return nil
	}
	r := recurse(d + 1)
	if pad[0] == 255 {
		return r
	}
	return r
}
