//go:build !linux

package lowprio

import "errors"

// Elsewhere the niceness is per process (or absent): Do runs in place.
const supported = false

func setNice(int) error { return errors.ErrUnsupported }

func threadNice() (int, error) { return 0, errors.ErrUnsupported }
