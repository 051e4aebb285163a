//go:build !linux

package offheap

import "errors"

func mmap(n int) ([]byte, error) { return nil, errors.New("offheap: heap only") }

func munmap(b []byte) {}
