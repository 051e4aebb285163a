package plugin

// The plugin ABI, version 1. These names and codes are the contract
// between guests and the host (package plugins imports them from here, so
// they are defined once). docs/plugins.md describes them byte by byte.
const (
	// ABIVersion is the version this SDK implements. A module declares it
	// by exporting the function named ExportABI; a later version exports
	// "aiaas_abi_v2" so that one host can serve both.
	ABIVersion = 1

	// ExportABI is "() -> i32": the kinds the module implements, a
	// bitmask of KindPreprocess and KindPostprocess.
	ExportABI = "aiaas_abi_v1"
	// ExportAlloc is "(size i32) -> i32": reserve size bytes in guest
	// memory for the next call's input and return their address (0 on
	// failure). The buffer stays valid until that call returns.
	ExportAlloc = "aiaas_alloc"
	// ExportPreprocess is "(ptr, ct_len, body_len i32) -> i32": the input
	// buffer holds the content type (ct_len bytes, UTF-8) followed by the
	// request body (body_len bytes). Returns StatusOK after set_output
	// with safetensors bytes, or StatusError after set_error.
	ExportPreprocess = "aiaas_preprocess"
	// ExportPostprocess is "(ptr, len i32) -> i32": the input buffer holds
	// the model outputs as safetensors bytes. Returns StatusOK after
	// set_output (the response body) and optionally set_content_type, or
	// StatusError after set_error.
	ExportPostprocess = "aiaas_postprocess"
	// ExportMemory is the linear memory the host reads and writes.
	ExportMemory = "memory"
	// ExportInitialize is the WASI reactor initializer the host runs once
	// per instance, if exported.
	ExportInitialize = "_initialize"

	// HostModule is the import module of the host functions below.
	HostModule = "aiaas_v1"
)

// Kinds, as returned by the ExportABI function.
const (
	KindPreprocess  = 1
	KindPostprocess = 2
)

// Guest export results.
const (
	StatusOK    = 0
	StatusError = 1
)

// Host function results: 0 or a count on success, negative on failure.
// Host functions never trap on bad arguments; a guest that ignores these
// codes still fails the call if it exceeded a limit.
const (
	HostOK     = 0
	HostBadArg = -1 // a pointer/length outside guest memory, misaligned, or sizes that disagree
	HostLimit  = -2 // the output, content type or error exceeds the host's cap
)

// Host functions in HostModule. All parameters are i32 unless noted;
// pointers are offsets into the guest's exported memory; f32 pointers
// must be 4-byte aligned and i32 pointers too.
const (
	// "(ptr, len) -> i32": the call's output bytes (copied by the host;
	// a later call replaces them).
	HostSetOutput = "set_output"
	// "(ptr, len) -> i32": postprocess only: the response content type.
	HostSetContentType = "set_content_type"
	// "(ptr, len) -> i32": the error message of a failing call.
	HostSetError = "set_error"
	// "(dst_f32, src_u8, n, scale f32, bias f32) -> i32":
	// dst[i] = src[i]*scale + bias.
	HostU8ToF32 = "u8_to_f32"
	// "(dst_u8, src_rgba, npix) -> i32": BT.601 luma of RGBA pixels.
	HostGrayFromRGBA = "gray_from_rgba"
	// "(dst_f32, dw, dh, src_f32, sw, sh) -> i32": area-average resize.
	HostResizeF32 = "resize_f32"
	// "(ptr_f32, n) -> i32": softmax in place.
	HostSoftmaxF32 = "softmax_f32"
	// "(dst_i32, src_f32, n, k) -> i32": indices of the k largest values,
	// largest first; returns how many were written.
	HostTopKF32 = "topk_f32"
	// "(src, n, out_i32x2) -> i32": sniff a PNG (returns 1) or JPEG
	// (returns 2) and write its width and height at out.
	HostImageInfo = "image_info"
	// "(dst_u8, src, n, w, h) -> i32": decode the PNG/JPEG src (w×h, at
	// most 4 megapixels) into w*h gray bytes.
	HostDecodeGray = "decode_gray"
	// "(src_f32, w, h, threshold f32, out_i32x4) -> i32": bounding box
	// x0, y0, x1, y1 (inclusive) of the values above threshold; returns 1
	// if found, 0 if none.
	HostBBoxF32 = "bbox_f32"
)
