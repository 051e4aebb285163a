// Package apikey makes and checks the platform's API keys.
//
// # Overview
//
// A key is "aiaas_" followed by 32 base32 characters: 160 random bits from
// crypto/rand. The platform stores only its SHA-256 ([Hash]); a fast hash is
// right here because the key is random and long, so there is nothing for a
// slow password hash to protect against, and every request must check one.
// Stored and presented hashes are compared with crypto/subtle.
//
// [Key] never prints itself: fmt and slog show "aiaas_…[redacted]".
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
)

// Prefix starts every key, so secret scanners and people recognise one.
const Prefix = "aiaas_"

const randomBytes = 20 // 160 bits

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrMalformed means the presented string cannot be a key of ours.
var ErrMalformed = errors.New("apikey: malformed key")

// Key is a secret API key.
type Key string

// New returns a fresh random key.
func New() Key {
	b := make([]byte, randomBytes)
	if _, err := rand.Read(b); err != nil {
		panic("apikey: crypto/rand failed: " + err.Error()) // never on Linux
	}
	return Key(Prefix + strings.ToLower(enc.EncodeToString(b)))
}

// Parse checks the form of a presented key without touching any store.
func Parse(s string) (Key, error) {
	if len(s) != len(Prefix)+32 || !strings.HasPrefix(s, Prefix) {
		return "", ErrMalformed
	}
	// 32 base32 characters are exactly 160 bits: any of the alphabet's
	// characters, in either case, decodes; checked without allocating,
	// as every request parses one.
	for i := len(Prefix); i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return "", ErrMalformed
		}
	}
	return Key(s), nil
}

// Hash is the stored form of a key: hex SHA-256.
func (k Key) Hash() string {
	var b [2 * sha256.Size]byte
	return string(k.AppendHash(b[:0]))
}

// AppendHash appends Hash to dst: with a stack array as dst, a request
// checks its key without a heap allocation.
func (k Key) AppendHash(dst []byte) []byte {
	sum := sha256.Sum256([]byte(k))
	return hex.AppendEncode(dst, sum[:])
}

// ID is a short, public, non-secret identifier of the key (the first 12
// hex digits of its hash) for audit records and listings.
func (k Key) ID() string { return k.Hash()[:12] }

// Reveal returns the key itself, to show it once to its owner.
func (k Key) Reveal() string { return string(k) }

func (k Key) String() string {
	if k == "" {
		return ""
	}
	return Prefix + "…[redacted]"
}

// GoString keeps %#v from printing the key.
func (k Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText keeps encoders from printing the key.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Equal compares two hex hashes in constant time.
func Equal(hashA, hashB string) bool {
	return subtle.ConstantTimeCompare([]byte(hashA), []byte(hashB)) == 1
}

// Matches is Equal for a hash from AppendHash: constant time in the
// hashes' contents, without converting either.
func Matches(hash []byte, stored string) bool {
	if len(hash) != len(stored) {
		return false
	}
	var v byte
	for i := range hash {
		v |= hash[i] ^ stored[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// Scope is what a key may do.
type Scope string

const (
	// ScopeInvoke may call the data plane: infer, endpoint invoke, explain,
	// metadata.
	ScopeInvoke Scope = "invoke"
	// ScopeManage may also change the tenant's models, plugins, endpoints,
	// training jobs, keys, and read its audit log.
	ScopeManage Scope = "manage"
)

// Allows reports whether a key with scope s may act with scope need.
func (s Scope) Allows(need Scope) bool {
	return s == need || s == ScopeManage
}

// ParseScope validates a scope name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeInvoke, ScopeManage:
		return Scope(s), nil
	}
	return "", errors.New(`apikey: scope must be "invoke" or "manage"`)
}
