package kernels

import "unsafe"

// addFloat returns p+i elements; the caller guarantees it stays inside the
// slice p points into.
func addFloat(p *float32, i int) *float32 {
	return (*float32)(unsafe.Add(unsafe.Pointer(p), uintptr(i)*4))
}
