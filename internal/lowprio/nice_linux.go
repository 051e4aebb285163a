package lowprio

import "syscall"

const supported = true

// setNice sets the calling thread's niceness (Linux keeps one per thread).
func setNice(n int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), n)
}

// threadNice returns the calling thread's niceness.
func threadNice() (int, error) {
	// The system call answers 20 − nice, so that it is never negative.
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	return 20 - p, err
}
