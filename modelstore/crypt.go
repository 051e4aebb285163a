package modelstore

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Object encryption format (version 1), see docs/storage.md:
//
//	magic   4 bytes  "AMS1"
//	salt   32 bytes  random per object
//	segments          AES-256-GCM, each segSize plaintext bytes (the last
//	                  may be shorter, and is empty only for an empty object)
//	                  followed by its 16-byte tag
//
// The segment key is HKDF-SHA256(data key, salt, "aiaas/modelstore/v1 "+
// object key), so every object has its own key and nonces never repeat
// across objects. Segment i's nonce is the 11-byte big-endian i followed by
// 0x01 for the last segment and 0x00 otherwise: truncating or extending the
// stream fails authentication. The AAD is the object key, so an object
// copied to another key (another tenant, another version) does not decrypt.
const (
	magic      = "AMS1"
	saltSize   = 32
	headerSize = len(magic) + saltSize
	segSize    = 64 << 10
	tagSize    = 16
)

// sealedSize is the stored size of n plaintext bytes.
func sealedSize(n int64) int64 {
	segs := (n + segSize - 1) / segSize
	if segs == 0 {
		segs = 1
	}
	return int64(headerSize) + n + segs*tagSize
}

// openedSize is the plaintext size of a stored object of n bytes, or -1 if
// no plaintext size maps to n.
func openedSize(n int64) int64 {
	n -= int64(headerSize)
	if n < tagSize {
		return -1
	}
	full := n / (segSize + tagSize)
	rem := n % (segSize + tagSize)
	switch {
	case rem == 0 && full > 0:
		return full * segSize
	case rem > tagSize || (rem == tagSize && full == 0):
		return full*segSize + rem - tagSize
	}
	return -1
}

func objectAEAD(dataKey []byte, salt []byte, key string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, dataKey, salt, "aiaas/modelstore/v1 "+key, 32)
	if err != nil {
		return nil, err
	}
	blk, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

func segNonce(dst *[12]byte, i uint64, last bool) {
	*dst = [12]byte{}
	binary.BigEndian.PutUint64(dst[3:11], i)
	if last {
		dst[11] = 1
	}
}

// sealer encrypts a plaintext stream of a known size as it is read.
type sealer struct {
	src    io.Reader
	aead   cipher.AEAD
	aad    []byte
	left   int64 // plaintext bytes still to read
	seg    uint64
	done   bool
	buf    []byte // pending ciphertext
	out    []byte
	header []byte
}

func newSealer(dataKey []byte, key string, src io.Reader, size int64) (*sealer, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := objectAEAD(dataKey, salt, key)
	if err != nil {
		return nil, err
	}
	return &sealer{src: src, aead: aead, aad: []byte(key), left: size,
		header: append([]byte(magic), salt...), buf: make([]byte, 0, segSize+tagSize)}, nil
}

func (s *sealer) Read(p []byte) (int, error) {
	if len(s.header) > 0 {
		n := copy(p, s.header)
		s.header = s.header[n:]
		return n, nil
	}
	for len(s.out) == 0 {
		if s.done {
			return 0, io.EOF
		}
		n := int64(segSize)
		if s.left < n {
			n = s.left
		}
		plain := s.buf[:n]
		if _, err := io.ReadFull(s.src, plain); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("reading body: %w", err)
		}
		s.left -= n
		last := s.left == 0
		var nonce [12]byte
		segNonce(&nonce, s.seg, last)
		s.seg++
		s.out = s.aead.Seal(plain[:0], nonce[:], plain, s.aad)
		if last {
			s.done = true
			// A body longer than announced is an error, not silently cut.
			var one [1]byte
			if m, _ := s.src.Read(one[:]); m > 0 {
				return 0, fmt.Errorf("body longer than its declared size: %w", ErrTooLarge)
			}
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// errAuth reports ciphertext that does not authenticate.
var errAuth = errors.New("ciphertext does not authenticate")

// opener decrypts a stored stream, verifying each segment before releasing
// its bytes.
type opener struct {
	src  *bufio.Reader
	aead cipher.AEAD
	aad  []byte
	seg  uint64
	buf  []byte
	out  []byte
	done bool
	err  error
}

func newOpener(dataKey []byte, key string, src io.Reader) (*opener, error) {
	br := bufio.NewReaderSize(src, segSize+tagSize+1)
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(br, hdr); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("short header: %w", errAuth)
		}
		return nil, err
	}
	if string(hdr[:len(magic)]) != magic {
		return nil, fmt.Errorf("bad magic: %w", errAuth)
	}
	aead, err := objectAEAD(dataKey, hdr[len(magic):], key)
	if err != nil {
		return nil, err
	}
	return &opener{src: br, aead: aead, aad: []byte(key), buf: make([]byte, segSize+tagSize)}, nil
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.out) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(o.src, o.buf)
		switch {
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			o.done = true
		case err != nil:
			o.err = err
			return 0, err
		default:
			// A full segment is the last one only if nothing follows.
			if _, perr := o.src.Peek(1); perr == io.EOF {
				o.done = true
			} else if perr != nil {
				o.err = perr
				return 0, perr
			}
		}
		if n < tagSize || (n == tagSize && o.seg > 0) {
			o.err = fmt.Errorf("truncated segment %d: %w", o.seg, errAuth)
			return 0, o.err
		}
		var nonce [12]byte
		segNonce(&nonce, o.seg, o.done)
		o.seg++
		out, err := o.aead.Open(o.buf[:0], nonce[:], o.buf[:n], o.aad)
		if err != nil {
			o.err = fmt.Errorf("segment %d: %w", o.seg-1, errAuth)
			return 0, o.err
		}
		o.out = out
	}
	n := copy(p, o.out)
	o.out = o.out[n:]
	return n, nil
}

// seal encrypts a small plaintext in memory, in the stream format, each
// segment sealed straight into the result (no buffers: small objects —
// records, keys, audit segments — are sealed and opened on every request,
// and three 32–64 KiB buffers each made most of such a request's garbage).
func seal(dataKey []byte, key string, plain []byte) ([]byte, error) {
	out := make([]byte, headerSize, sealedSize(int64(len(plain))))
	copy(out, magic)
	salt := out[len(magic):headerSize]
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := objectAEAD(dataKey, salt, key)
	if err != nil {
		return nil, err
	}
	aad := []byte(key)
	for seg := uint64(0); ; seg++ {
		n := min(segSize, len(plain))
		last := n == len(plain)
		var nonce [12]byte
		segNonce(&nonce, seg, last)
		out = aead.Seal(out, nonce[:], plain[:n], aad)
		plain = plain[n:]
		if last {
			return out, nil
		}
	}
}

// open decrypts a small stored object in memory, as the opener would, in
// place: the plaintext it returns aliases sealed, which the caller gives
// up.
func open(dataKey []byte, key string, sealed []byte) ([]byte, error) {
	if len(sealed) < headerSize {
		return nil, fmt.Errorf("short header: %w", errAuth)
	}
	if string(sealed[:len(magic)]) != magic {
		return nil, fmt.Errorf("bad magic: %w", errAuth)
	}
	aead, err := objectAEAD(dataKey, sealed[len(magic):headerSize], key)
	if err != nil {
		return nil, err
	}
	n := openedSize(int64(len(sealed)))
	if n < 0 {
		return nil, fmt.Errorf("impossible size %d: %w", len(sealed), errAuth)
	}
	// Each segment is decrypted where it lies and moved down behind the
	// previous one (a plaintext always starts past the end of the ones
	// before it, so the move overwrites only ciphertext already read):
	// no second buffer the size of the object.
	out := sealed[:0]
	aad := []byte(key)
	body := sealed[headerSize:]
	for seg := uint64(0); ; seg++ {
		// openedSize admitted the length: every segment but the last is
		// full, and the last holds at least its tag.
		m := min(segSize+tagSize, len(body))
		last := m == len(body)
		var nonce [12]byte
		segNonce(&nonce, seg, last)
		pt, err := aead.Open(body[:0], nonce[:], body[:m], aad)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", seg, errAuth)
		}
		out = append(out, pt...)
		body = body[m:]
		if last {
			return out, nil
		}
	}
}

// Master key wrapping of data keys: AES-256-GCM with a random nonce; the
// AAD names the key's owner so a wrapped key cannot be moved between
// tenants.
func wrapKey(master []byte, owner string, dataKey []byte) ([]byte, error) {
	blk, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, dataKey, []byte("aiaas/modelstore/dek "+owner)), nil
}

func unwrapKey(master []byte, owner string, wrapped []byte) ([]byte, error) {
	blk, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < g.NonceSize()+tagSize {
		return nil, errAuth
	}
	dk, err := g.Open(nil, wrapped[:g.NonceSize()], wrapped[g.NonceSize():], []byte("aiaas/modelstore/dek "+owner))
	if err != nil || len(dk) != 32 {
		return nil, errAuth
	}
	return dk, nil
}

// keyID names a master key without revealing it.
func keyID(master []byte) string {
	h := sha256.Sum256(append([]byte("aiaas/modelstore/kid "), master...))
	return fmt.Sprintf("%x", h[:6])
}
