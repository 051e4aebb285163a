package plugins

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/aiaas/aiaas/internal/yield"
	"github.com/aiaas/aiaas/sdk/plugin"
	"github.com/aiaas/aiaas/sdk/plugin/tensorops"
)

// callState is what the host functions of one call write into. It
// travels in the call's context, so the host functions (shared by every
// instance of a tenant runtime) find the right one without a lookup.
type callState struct {
	maxOut, maxErr int
	out            []byte
	outSet         bool
	contentType    string
	errMsg         string
	limit          error       // set when the guest tried to exceed a cap
	yield          yield.Point // when the guest gives up its processor (interrupt.go)
}

type stateKey struct{}

func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(stateKey{}).(*callState)
	return st
}

const (
	maxContentType = 256
	maxErrorBytes  = 4 << 10
)

var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

const (
	i32 = api.ValueTypeI32
	f32 = api.ValueTypeF32
)

// hostFunc is one function of the aiaas_v1 module.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      api.GoModuleFunc
}

// hostFuncs is the aiaas_v1 module: the ABI's output functions and the
// intrinsics. They never trap on bad arguments (they return
// plugin.HostBadArg); a guest that ignores a HostLimit still fails its
// call, because the limit is recorded in the call state.
var hostFuncs = []hostFunc{
	{plugin.HostSetOutput, []api.ValueType{i32, i32}, []api.ValueType{i32}, setOutput},
	{plugin.HostSetContentType, []api.ValueType{i32, i32}, []api.ValueType{i32}, setContentType},
	{plugin.HostSetError, []api.ValueType{i32, i32}, []api.ValueType{i32}, setError},
	{plugin.HostU8ToF32, []api.ValueType{i32, i32, i32, f32, f32}, []api.ValueType{i32}, u8ToF32},
	{plugin.HostGrayFromRGBA, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, grayFromRGBA},
	{plugin.HostResizeF32, []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, resizeF32},
	{plugin.HostSoftmaxF32, []api.ValueType{i32, i32}, []api.ValueType{i32}, softmaxF32},
	{plugin.HostTopKF32, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, topKF32},
	{plugin.HostImageInfo, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, imageInfo},
	{plugin.HostDecodeGray, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}, decodeGray},
	{plugin.HostBBoxF32, []api.ValueType{i32, i32, i32, f32, i32}, []api.ValueType{i32}, bboxF32},
	{yieldImport, nil, []api.ValueType{i32}, hostYield}, // imported by instrument, not by plugins
}

func hostModule(rt wazero.Runtime) wazero.HostModuleBuilder {
	b := rt.NewHostModuleBuilder(plugin.HostModule)
	for _, f := range hostFuncs {
		b = b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.results).Export(f.name)
	}
	return b
}

func ret(stack []uint64, code int32) { stack[0] = api.EncodeI32(code) }

func setOutput(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if st == nil {
		ret(stack, plugin.HostBadArg)
		return
	}
	if int64(n) > int64(st.maxOut) {
		st.limit = fmt.Errorf("%w: output is %d bytes, the cap is %d", ErrLimit, n, st.maxOut)
		ret(stack, plugin.HostLimit)
		return
	}
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		ret(stack, plugin.HostBadArg)
		return
	}
	st.out = append(make([]byte, 0, len(b)), b...)
	st.outSet = true
	ret(stack, plugin.HostOK)
}

func setContentType(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if st == nil {
		ret(stack, plugin.HostBadArg)
		return
	}
	if n > maxContentType {
		st.limit = fmt.Errorf("%w: content type is %d bytes, the cap is %d", ErrLimit, n, maxContentType)
		ret(stack, plugin.HostLimit)
		return
	}
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		ret(stack, plugin.HostBadArg)
		return
	}
	st.contentType = string(b)
	ret(stack, plugin.HostOK)
}

func setError(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if st == nil {
		ret(stack, plugin.HostBadArg)
		return
	}
	// Long messages are truncated rather than refused: the error is the
	// useful part of a failing call.
	b, ok := m.Memory().Read(ptr, min(n, maxErrorBytes))
	if !ok {
		ret(stack, plugin.HostBadArg)
		return
	}
	st.errMsg = string(b)
	ret(stack, plugin.HostOK)
}

// bytesView returns n bytes of guest memory at ptr.
func bytesView(m api.Module, ptr, n uint32) ([]byte, bool) {
	return m.Memory().Read(ptr, n)
}

// f32View returns n float32s of guest memory at ptr (4-byte aligned).
func f32View(m api.Module, ptr, n uint32) ([]float32, bool) {
	if !littleEndian || ptr%4 != 0 || uint64(n)*4 > math.MaxUint32 {
		return nil, false
	}
	b, ok := m.Memory().Read(ptr, n*4)
	if !ok {
		return nil, false
	}
	if n == 0 {
		return []float32{}, true
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), true
}

func i32View(m api.Module, ptr, n uint32) ([]int32, bool) {
	if !littleEndian || ptr%4 != 0 || uint64(n)*4 > math.MaxUint32 {
		return nil, false
	}
	b, ok := m.Memory().Read(ptr, n*4)
	if !ok {
		return nil, false
	}
	if n == 0 {
		return []int32{}, true
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), n), true
}

func okCode(ok bool) int32 {
	if ok {
		return plugin.HostOK
	}
	return plugin.HostBadArg
}

func u8ToF32(_ context.Context, m api.Module, stack []uint64) {
	n := api.DecodeU32(stack[2])
	dst, ok1 := f32View(m, api.DecodeU32(stack[0]), n)
	src, ok2 := bytesView(m, api.DecodeU32(stack[1]), n)
	ret(stack, okCode(ok1 && ok2 && tensorops.U8ToF32(dst, src, api.DecodeF32(stack[3]), api.DecodeF32(stack[4]))))
}

func grayFromRGBA(_ context.Context, m api.Module, stack []uint64) {
	n := api.DecodeU32(stack[2])
	if uint64(n)*4 > math.MaxUint32 {
		ret(stack, plugin.HostBadArg)
		return
	}
	dst, ok1 := bytesView(m, api.DecodeU32(stack[0]), n)
	src, ok2 := bytesView(m, api.DecodeU32(stack[1]), 4*n)
	ret(stack, okCode(ok1 && ok2 && tensorops.GrayFromRGBA(dst, src)))
}

func resizeF32(_ context.Context, m api.Module, stack []uint64) {
	dw, dh := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	sw, sh := api.DecodeU32(stack[4]), api.DecodeU32(stack[5])
	const lim = tensorops.MaxResizeSide
	if dw == 0 || dh == 0 || sw == 0 || sh == 0 || dw > lim || dh > lim || sw > lim || sh > lim {
		ret(stack, plugin.HostBadArg)
		return
	}
	dst, ok1 := f32View(m, api.DecodeU32(stack[0]), dw*dh)
	src, ok2 := f32View(m, api.DecodeU32(stack[3]), sw*sh)
	ret(stack, okCode(ok1 && ok2 && tensorops.Resize(dst, int(dw), int(dh), src, int(sw), int(sh))))
}

func softmaxF32(_ context.Context, m api.Module, stack []uint64) {
	x, ok := f32View(m, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if ok {
		tensorops.Softmax(x)
	}
	ret(stack, okCode(ok))
}

func topKF32(_ context.Context, m api.Module, stack []uint64) {
	n, k := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	k = min(k, n)
	dst, ok1 := i32View(m, api.DecodeU32(stack[0]), k)
	x, ok2 := f32View(m, api.DecodeU32(stack[1]), n)
	if !ok1 || !ok2 {
		ret(stack, plugin.HostBadArg)
		return
	}
	ret(stack, int32(len(tensorops.TopK(dst, x, int(k)))))
}

// maxImageBytes bounds the encoded image the decoding intrinsics read.
const maxImageBytes = 32 << 20

func imageInfo(_ context.Context, m api.Module, stack []uint64) {
	n := api.DecodeU32(stack[1])
	src, ok1 := bytesView(m, api.DecodeU32(stack[0]), n)
	out, ok2 := i32View(m, api.DecodeU32(stack[2]), 2)
	if !ok1 || !ok2 || n > maxImageBytes {
		ret(stack, plugin.HostBadArg)
		return
	}
	format, w, h, ok := tensorops.ImageInfo(src)
	if !ok {
		ret(stack, plugin.HostBadArg)
		return
	}
	out[0], out[1] = int32(w), int32(h)
	ret(stack, int32(format))
}

func decodeGray(_ context.Context, m api.Module, stack []uint64) {
	n, w, h := api.DecodeU32(stack[2]), api.DecodeU32(stack[3]), api.DecodeU32(stack[4])
	if n > maxImageBytes || w == 0 || h == 0 || uint64(w)*uint64(h) > tensorops.MaxDecodePixels {
		ret(stack, plugin.HostBadArg)
		return
	}
	dst, ok1 := bytesView(m, api.DecodeU32(stack[0]), w*h)
	src, ok2 := bytesView(m, api.DecodeU32(stack[1]), n)
	// dst and src may overlap in guest memory: decode from a copy so that
	// writing pixels cannot change the decoder's input under it.
	ret(stack, okCode(ok1 && ok2 && tensorops.DecodeGray(dst, bytes.Clone(src), int(w), int(h))))
}

func bboxF32(_ context.Context, m api.Module, stack []uint64) {
	w, h := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	if w == 0 || h == 0 || uint64(w)*uint64(h) > math.MaxUint32/4 {
		ret(stack, plugin.HostBadArg)
		return
	}
	src, ok1 := f32View(m, api.DecodeU32(stack[0]), w*h)
	out, ok2 := i32View(m, api.DecodeU32(stack[4]), 4)
	if !ok1 || !ok2 {
		ret(stack, plugin.HostBadArg)
		return
	}
	x0, y0, x1, y1, found := tensorops.BBox(src, int(w), int(h), api.DecodeF32(stack[3]))
	if !found {
		ret(stack, 0)
		return
	}
	out[0], out[1], out[2], out[3] = int32(x0), int32(y0), int32(x1), int32(y1)
	ret(stack, 1)
}
