package plugins

import (
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noPopulate is set once the kernel has refused MADV_POPULATE_WRITE
// (before Linux 5.14); backPages then only touches each page.
var noPopulate atomic.Bool

// backPages backs b's pages with memory: first in one system call, which
// takes the faults in the kernel without a trip back to user space for
// each, then by touching each page. On a microVM the first write to each
// page still costs the hypervisor's own fault after the kernel's (a
// 60 MiB clear took 84–94 ms after MADV_POPULATE_WRITE against 3 ms after
// a touch of every page, and 175 ms with neither: BENCHMARKS.md, "Fresh
// memories"), so the touch is what leaves the guest only cheap writes.
func backPages(b []byte) error {
	if !noPopulate.Load() {
		err := unix.Madvise(b, unix.MADV_POPULATE_WRITE)
		for errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			err = unix.Madvise(b, unix.MADV_POPULATE_WRITE)
		}
		switch {
		case errors.Is(err, unix.EINVAL):
			noPopulate.Store(true)
		case err != nil:
			return err
		}
	}
	touchPages(b)
	return nil
}
