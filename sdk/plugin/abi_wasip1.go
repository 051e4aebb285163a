//go:build wasip1

package plugin

import (
	"runtime"
	"unsafe"
)

// input is the buffer handed out by aiaas_alloc; holding it here keeps it
// alive (and unmoved: Go's wasm GC does not move objects) until the call
// that consumes it returns. spare keeps a small buffer between calls so
// that the common small request does not allocate (and zero) a new one.
var input, spare []byte

// output keeps the encoded tensors of the last preprocess call (the host
// copies them in set_output), so that the next call encodes into the same
// bytes instead of allocating: less garbage is less of the guest's GC,
// which is most of a small plugin's time.
var output []byte

// maxSpare is the largest input buffer kept between calls; larger ones
// are left to the GC so that one big request does not pin its memory.
const maxSpare = 1 << 20

//go:wasmexport aiaas_abi_v1
func exportABI() int32 { return kinds() }

//go:wasmexport aiaas_alloc
func exportAlloc(size int32) uint32 {
	if size < 0 {
		return 0
	}
	// One spare byte so that a zero-length input still has an address.
	if int(size)+1 <= cap(spare) {
		input = spare[:size+1]
	} else {
		input = make([]byte, size+1)
	}
	return uint32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport aiaas_preprocess
func exportPreprocess(ptr uint32, ctLen, bodyLen int32) int32 {
	defer runtime.Gosched() // let the GC run: see the package doc
	in, ok := take(ptr, ctLen, bodyLen)
	if !ok {
		return fail("plugin: input buffer does not match aiaas_alloc")
	}
	out, err := runPreprocess(output[:0], string(in[:ctLen]), in[ctLen:])
	if err != nil {
		return fail(err.Error())
	}
	if cap(out) <= maxSpare {
		output = out
	}
	if hostSetOutput(bytesPtr(out), uint32(len(out))) != HostOK {
		return fail("plugin: output refused by host (too large?)")
	}
	return StatusOK
}

//go:wasmexport aiaas_postprocess
func exportPostprocess(ptr uint32, n int32) int32 {
	defer runtime.Gosched()
	in, ok := take(ptr, n, 0)
	if !ok {
		return fail("plugin: input buffer does not match aiaas_alloc")
	}
	resp, err := runPostprocess(in)
	if err != nil {
		return fail(err.Error())
	}
	// The host only reads the bytes: the string's own, uncopied.
	ct := resp.ContentType
	if hostSetContentType(unsafe.Pointer(unsafe.StringData(ct)), uint32(len(ct))) != HostOK {
		return fail("plugin: content type refused by host")
	}
	if hostSetOutput(bytesPtr(resp.Body), uint32(len(resp.Body))) != HostOK {
		return fail("plugin: output refused by host (too large?)")
	}
	return StatusOK
}

// take checks that the host passed back the buffer it was given and
// releases the SDK's hold on it.
func take(ptr uint32, a, b int32) ([]byte, bool) {
	in := input
	input = nil
	if cap(in) <= maxSpare {
		spare = in // handlers must not keep Body after returning
	}
	if len(in) == 0 || a < 0 || b < 0 || uint32(uintptr(unsafe.Pointer(&in[0]))) != ptr ||
		int64(a)+int64(b) > int64(len(in)-1) {
		return nil, false
	}
	return in[: a+b : a+b], true
}

func fail(msg string) int32 {
	b := []byte(msg)
	hostSetError(bytesPtr(b), uint32(len(b)))
	return StatusError
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func f32Ptr(v []float32) unsafe.Pointer {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Pointer(&v[0])
}

//go:wasmimport aiaas_v1 set_output
func hostSetOutput(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport aiaas_v1 set_content_type
func hostSetContentType(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport aiaas_v1 set_error
func hostSetError(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport aiaas_v1 u8_to_f32
func hostU8ToF32(dst, src unsafe.Pointer, n uint32, scale, bias float32) int32

//go:wasmimport aiaas_v1 gray_from_rgba
func hostGrayFromRGBA(dst, src unsafe.Pointer, npix uint32) int32

//go:wasmimport aiaas_v1 resize_f32
func hostResizeF32(dst unsafe.Pointer, dw, dh uint32, src unsafe.Pointer, sw, sh uint32) int32

//go:wasmimport aiaas_v1 softmax_f32
func hostSoftmaxF32(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport aiaas_v1 topk_f32
func hostTopKF32(dst, src unsafe.Pointer, n, k uint32) int32

func u8ToF32(dst []float32, src []byte, scale, bias float32) bool {
	return len(dst) == len(src) &&
		hostU8ToF32(f32Ptr(dst), bytesPtr(src), uint32(len(src)), scale, bias) == HostOK
}

func grayFromRGBA(dst, src []byte) bool {
	return len(src) == 4*len(dst) &&
		hostGrayFromRGBA(bytesPtr(dst), bytesPtr(src), uint32(len(dst))) == HostOK
}

func resizeF32(dst []float32, dw, dh int, src []float32, sw, sh int) bool {
	return dw > 0 && dh > 0 && sw > 0 && sh > 0 && len(dst) == dw*dh && len(src) == sw*sh &&
		hostResizeF32(f32Ptr(dst), uint32(dw), uint32(dh), f32Ptr(src), uint32(sw), uint32(sh)) == HostOK
}

func softmaxF32(x []float32) bool {
	return hostSoftmaxF32(f32Ptr(x), uint32(len(x))) == HostOK
}

func topKF32(dst []int32, x []float32, k int) int {
	if k < 0 {
		return -1
	}
	k = min(k, len(dst), len(x))
	if k == 0 {
		return 0
	}
	return int(hostTopKF32(unsafe.Pointer(&dst[0]), f32Ptr(x), uint32(len(x)), uint32(k)))
}

//go:wasmimport aiaas_v1 image_info
func hostImageInfo(src unsafe.Pointer, n uint32, out unsafe.Pointer) int32

//go:wasmimport aiaas_v1 decode_gray
func hostDecodeGray(dst, src unsafe.Pointer, n, w, h uint32) int32

//go:wasmimport aiaas_v1 bbox_f32
func hostBBoxF32(src unsafe.Pointer, w, h uint32, threshold float32, out unsafe.Pointer) int32

func imageInfo(img []byte) (int, int, int, bool) {
	var wh [2]int32
	f := hostImageInfo(bytesPtr(img), uint32(len(img)), unsafe.Pointer(&wh[0]))
	if f <= 0 {
		return 0, 0, 0, false
	}
	return int(f), int(wh[0]), int(wh[1]), true
}

func decodeGray(dst, img []byte, w, h int) bool {
	return w > 0 && h > 0 && len(dst) == w*h &&
		hostDecodeGray(bytesPtr(dst), bytesPtr(img), uint32(len(img)), uint32(w), uint32(h)) == HostOK
}

func bbox(src []float32, w, h int, thr float32) (int, int, int, int, bool) {
	if w <= 0 || h <= 0 || len(src) != w*h {
		return 0, 0, 0, 0, false
	}
	var box [4]int32
	if hostBBoxF32(f32Ptr(src), uint32(w), uint32(h), thr, unsafe.Pointer(&box[0])) != 1 {
		return 0, 0, 0, 0, false
	}
	return int(box[0]), int(box[1]), int(box[2]), int(box[3]), true
}
