//go:build purego || !(amd64 || arm64)

package kernels

// available lists the kernels this build can run, best first.
func available() []*kernel {
	genericKernel.blk = newBlocking(genericKernel.mr, genericKernel.nr, 0, 0)
	return []*kernel{genericKernel}
}
