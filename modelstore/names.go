package modelstore

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// MaxNameLen is the longest name accepted for a tenant, model, alias, kind
// or record.
const MaxNameLen = 128

// ValidName reports whether name may be used as a tenant, model, alias,
// kind or record name: 1 to 128 characters from [A-Za-z0-9._-], starting
// with a letter or digit. This keeps every name a single path segment on
// every driver (no '/', no "..", no control characters, no leading '.'
// that would hide a file) and case-stable in URLs.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkNames validates names, naming the first bad one.
func checkNames(what []string, names ...string) error {
	for i, n := range names {
		if !ValidName(n) {
			return fmt.Errorf("modelstore: %s %q: %w (1-%d characters of [A-Za-z0-9._-], starting with a letter or digit)",
				what[i], n, ErrInvalidName, MaxNameLen)
		}
	}
	return nil
}

// validPrefix accepts "" or a prefix of some valid name.
func validPrefix(p string) bool {
	if p == "" {
		return true
	}
	return ValidName(p)
}

// trimDir returns the last segment of a listed common prefix "dir/NAME/".
func trimDir(key, dir string) string {
	if !strings.HasPrefix(key, dir) || !strings.HasSuffix(key, "/") {
		return ""
	}
	name := strings.TrimSuffix(key[len(dir):], "/")
	if !ValidName(name) {
		return ""
	}
	return name
}

func randRead(b []byte) (int, error) { return rand.Read(b) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
