package plugins

import (
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noPopulate is set once the kernel has refused MADV_POPULATE_WRITE for
// a reason other than memory (EINVAL before Linux 5.14; whatever a
// sandbox's kernel answers); backPages then only touches each page.
var noPopulate atomic.Bool

// madvisePopulate is the system call; tests replace it.
var madvisePopulate = func(b []byte) error { return unix.Madvise(b, unix.MADV_POPULATE_WRITE) }

// backPages backs b's pages with memory: first in one system call, which
// takes the faults in the kernel without a trip back to user space for
// each, then by touching each page. On a microVM the first write to each
// page still costs the hypervisor's own fault after the kernel's (a
// 60 MiB clear took 84–94 ms after MADV_POPULATE_WRITE against 3 ms after
// a touch of every page, and 175 ms with neither: BENCHMARKS.md, "Fresh
// memories"), so the touch is what leaves the guest only cheap writes.
// Only ENOMEM fails it: the kernel has no memory for the pages, which a
// touch would meet too, as a fault the OOM killer answers.
func backPages(b []byte) error {
	if !noPopulate.Load() {
		err := madvisePopulate(b)
		for errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			err = madvisePopulate(b)
		}
		switch {
		case errors.Is(err, unix.ENOMEM):
			return err
		case err != nil:
			noPopulate.Store(true)
		}
	}
	touchPages(b)
	return nil
}
