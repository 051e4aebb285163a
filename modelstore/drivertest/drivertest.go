// Package drivertest is the conformance suite every modelstore driver
// runs: the driver contract itself, then the portable Store over it
// (versions, conditional creates under contention, encryption at rest,
// corruption detection).
//
// # Overview
//
// A driver's test calls [Run] with a function that returns a fresh, empty
// bucket for each subtest. Everything here goes through the Bucket
// interface, including the tests that read or damage the raw bytes at rest,
// so the same checks hold for S3, a folder and memory.
package drivertest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/modelstore/driver"
)

// Options tune the suite for a driver.
type Options struct {
	// LargeSize is the size of the large-object test (above S3's part
	// size it exercises multipart); 0 means 1 MiB.
	LargeSize int64
}

// Run runs the whole suite. newBucket returns an empty bucket; the suite
// closes it.
func Run(t *testing.T, newBucket func(t *testing.T) driver.Bucket, opts *Options) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LargeSize == 0 {
		o.LargeSize = 1 << 20
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, b driver.Bucket)
	}{
		{"PutGetStat", testPutGetStat},
		{"NotFound", testNotFound},
		{"Overwrite", testOverwrite},
		{"WrongSize", testWrongSize},
		{"CreateExclusive", testCreateExclusive},
		{"CreateRace", testCreateRace},
		{"List", testList},
		{"Large", func(t *testing.T, b driver.Bucket) { testLarge(t, b, o.LargeSize) }},
		{"StorePublishRace", testStorePublishRace},
		{"StorePublishNext", testStorePublishNext},
		{"StoreEncryptedAtRest", testStoreEncryptedAtRest},
		{"StoreCorruption", testStoreCorruption},
		{"StoreSwap", testStoreSwap},
		{"StoreAppendRace", testStoreAppendRace},
		{"StoreAliasMove", testStoreAliasMove},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBucket(t)
			defer b.Close()
			tc.fn(t, b)
		})
	}
}

func put(t *testing.T, b driver.Bucket, key string, data []byte, create bool) error {
	t.Helper()
	return b.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), &driver.PutOptions{IfNotExists: create})
}

func get(t *testing.T, b driver.Bucket, key string) ([]byte, driver.Attrs) {
	t.Helper()
	r, a, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("Get(%q) read: %v", key, err)
	}
	return data, a
}

func testPutGetStat(t *testing.T, b driver.Bucket) {
	for i, data := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("abc"), 10000)} {
		key := fmt.Sprintf("a/b/obj%d", i)
		if err := put(t, b, key, data, false); err != nil {
			t.Fatalf("case %d: Put: %v", i, err)
		}
		got, a := get(t, b, key)
		if !bytes.Equal(got, data) || a.Size != int64(len(data)) {
			t.Errorf("case %d: got %d bytes (attrs size %d), want %d", i, len(got), a.Size, len(data))
		}
		st, err := b.Stat(context.Background(), key)
		if err != nil || st.Size != int64(len(data)) || st.ETag == "" || st.ETag != a.ETag {
			t.Errorf("case %d: Stat = %+v, %v; Get attrs %+v", i, st, err, a)
		}
	}
}

func testNotFound(t *testing.T, b driver.Bucket) {
	ctx := context.Background()
	if _, _, err := b.Get(ctx, "no/such"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Get missing: %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, "no/such"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Stat missing: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "no/such"); err != nil {
		t.Errorf("Delete missing: %v, want nil", err)
	}
	if err := put(t, b, "x/y", []byte("1"), false); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "x/y"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "x/y"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
}

func testOverwrite(t *testing.T, b driver.Bucket) {
	if err := put(t, b, "k", []byte("one"), false); err != nil {
		t.Fatal(err)
	}
	_, a1 := get(t, b, "k")
	if err := put(t, b, "k", []byte("second"), false); err != nil {
		t.Fatal(err)
	}
	got, a2 := get(t, b, "k")
	if string(got) != "second" {
		t.Errorf("after overwrite got %q", got)
	}
	if a1.ETag == a2.ETag {
		t.Errorf("ETag unchanged by overwrite: %q", a1.ETag)
	}
}

func testWrongSize(t *testing.T, b driver.Bucket) {
	ctx := context.Background()
	for i, tc := range []struct {
		data []byte
		size int64
	}{{[]byte("short"), 10}, {[]byte("longer than said"), 3}} {
		key := fmt.Sprintf("w/%d", i)
		err := b.Put(ctx, key, bytes.NewReader(tc.data), tc.size, nil)
		if err == nil {
			// Some servers cut the body at Content-Length; the object must
			// then hold exactly size bytes, never more than declared.
			if a, serr := b.Stat(ctx, key); serr == nil && a.Size != tc.size {
				t.Errorf("case %d: Put of %d bytes as %d stored %d", i, len(tc.data), tc.size, a.Size)
			}
			if tc.size > int64(len(tc.data)) {
				t.Errorf("case %d: short body accepted", i)
			}
			continue
		}
		if _, serr := b.Stat(ctx, key); !errors.Is(serr, driver.ErrNotFound) {
			t.Errorf("case %d: failed Put left an object (stat: %v)", i, serr)
		}
	}
}

func testCreateExclusive(t *testing.T, b driver.Bucket) {
	if err := put(t, b, "c/1", []byte("first"), true); err != nil {
		t.Fatalf("first create: %v", err)
	}
	if err := put(t, b, "c/1", []byte("second"), true); !errors.Is(err, driver.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if got, _ := get(t, b, "c/1"); string(got) != "first" {
		t.Errorf("conditional create overwrote: %q", got)
	}
}

func testCreateRace(t *testing.T, b driver.Bucket) {
	const n = 16
	for round := 0; round < 3; round++ {
		key := fmt.Sprintf("race/%d", round)
		var wins, exists atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				err := put(t, b, key, []byte(fmt.Sprintf("writer %02d", i)), true)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, driver.ErrExists):
					exists.Add(1)
				default:
					t.Errorf("round %d writer %d: %v", round, i, err)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || exists.Load() != n-1 {
			t.Errorf("round %d: %d winners, %d ErrExists; want 1 and %d", round, wins.Load(), exists.Load(), n-1)
		}
	}
}

func testList(t *testing.T, b driver.Bucket) {
	ctx := context.Background()
	keys := []string{"l/a", "l/b/1", "l/b/2", "l/c", "l/cc/x", "m/z"}
	for _, k := range keys {
		if err := put(t, b, k, []byte(k), false); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		prefix string
		o      driver.ListOptions
		want   string
	}{
		{"l/", driver.ListOptions{}, "l/a l/b/1 l/b/2 l/c l/cc/x"},
		{"l/", driver.ListOptions{Delimiter: "/"}, "l/a l/b/ l/c l/cc/"},
		{"l/c", driver.ListOptions{}, "l/c l/cc/x"},
		{"l/", driver.ListOptions{StartAfter: "l/b/1"}, "l/b/2 l/c l/cc/x"},
		{"l/", driver.ListOptions{Limit: 2}, "l/a l/b/1"},
		{"l/", driver.ListOptions{Delimiter: "/", Limit: 2}, "l/a l/b/"},
		{"l/", driver.ListOptions{Delimiter: "/", Limit: 3}, "l/a l/b/ l/c"},
		{"l/", driver.ListOptions{StartAfter: "l/a", Limit: 3}, "l/b/1 l/b/2 l/c"},
		{"l/", driver.ListOptions{Delimiter: "/", Limit: 3, KeysOnly: true}, "l/a l/b/ l/c"},
		{"l/b/", driver.ListOptions{Delimiter: "/"}, "l/b/1 l/b/2"},
		{"nothing/", driver.ListOptions{}, ""},
		{"", driver.ListOptions{Delimiter: "/"}, "l/ m/"},
		{"l/c", driver.ListOptions{Delimiter: "/"}, "l/c l/cc/"},
		{"l/", driver.ListOptions{Delimiter: "/", StartAfter: "l/a"}, "l/b/ l/c l/cc/"},
		{"l/", driver.ListOptions{Delimiter: "/", StartAfter: "l/c", KeysOnly: true}, "l/cc/"},
		{"nothing/", driver.ListOptions{Delimiter: "/"}, ""},
		{"l/a/", driver.ListOptions{Delimiter: "/"}, ""},
	} {
		o := tc.o
		list, err := b.List(ctx, tc.prefix, &o)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		var got []string
		for _, a := range list {
			got = append(got, a.Key)
			if !strings.HasSuffix(a.Key, "/") && !o.KeysOnly && a.Size != int64(len(a.Key)) {
				t.Errorf("case %d: %s listed with size %d, holds %d bytes", i, a.Key, a.Size, len(a.Key))
			}
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("case %d: List(%q, %+v) = %q, want %q", i, tc.prefix, tc.o, g, tc.want)
		}
	}
}

// pattern is a deterministic, incompressible-enough stream.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		x := uint64(p.off + int64(i))
		b[i] = byte(x*2654435761>>13) ^ byte(x>>16)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func testLarge(t *testing.T, b driver.Bucket, size int64) {
	ctx := context.Background()
	if err := b.Put(ctx, "big/1", &pattern{n: size}, size, nil); err != nil {
		t.Fatalf("Put %d bytes: %v", size, err)
	}
	r, a, err := b.Get(ctx, "big/1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if a.Size != size {
		t.Errorf("size %d, want %d", a.Size, size)
	}
	want, _ := io.ReadAll(&pattern{n: size})
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("content differs (err %v, %d bytes)", err, len(got))
	}
}

var masterKey = bytes.Repeat([]byte{7}, 32)

func newStore(t *testing.T, b driver.Bucket) *modelstore.Store {
	t.Helper()
	s, err := modelstore.New(b, &modelstore.Options{MasterKey: masterKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testStorePublishRace(t *testing.T, b driver.Bucket) {
	s := newStore(t, b)
	ctx := context.Background()
	const n = 16
	var wins, exists atomic.Int32
	var winner atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			data := []byte(fmt.Sprintf("artifact from publisher %02d", i))
			_, err := s.PublishVersion(ctx, "acme", "mnist", 1, bytes.NewReader(data), int64(len(data)), nil)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(int32(i))
			case errors.Is(err, modelstore.ErrExists):
				exists.Add(1)
			default:
				t.Errorf("publisher %d: %v", i, err)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || exists.Load() != n-1 {
		t.Fatalf("%d winners, %d ErrExists; want 1 and %d", wins.Load(), exists.Load(), n-1)
	}
	got, _, err := s.OpenModel(ctx, "acme", "mnist", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("artifact from publisher %02d", winner.Load()); string(got) != want {
		t.Errorf("version 1 holds %q, the winner wrote %q", got, want)
	}
}

func testStorePublishNext(t *testing.T, b driver.Bucket) {
	s := newStore(t, b)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]string{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			data := []byte(fmt.Sprintf("model %d", i))
			info, err := s.PublishModel(ctx, "acme", "m", bytes.NewReader(data), int64(len(data)), []byte(`{"i":1}`))
			if err != nil {
				t.Errorf("publisher %d: %v", i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, dup := seen[info.Version]; dup {
				t.Errorf("version %d given to %q and %q", info.Version, prev, data)
			}
			seen[info.Version] = string(data)
		}(i)
	}
	wg.Wait()
	vs, err := s.Versions(ctx, "acme", "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != n {
		t.Fatalf("%d versions, want %d", len(vs), n)
	}
	for i, v := range vs {
		if v.Version != i+1 {
			t.Errorf("versions[%d] = %d, want %d", i, v.Version, i+1)
		}
		got, _, err := s.OpenModel(ctx, "acme", "m", v.Version)
		if err != nil || string(got) != seen[v.Version] {
			t.Errorf("version %d: %q, %v; published %q", v.Version, got, err, seen[v.Version])
		}
	}
}

// floats is a recognizable float32 pattern, as in a weight matrix.
func floats(n int) []byte {
	b := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(0.125+float32(i%97)/1024))
	}
	return b
}

// rawAll returns every stored object's raw bytes.
func rawAll(t *testing.T, b driver.Bucket) map[string][]byte {
	t.Helper()
	list, err := b.List(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, a := range list {
		out[a.Key], _ = get(t, b, a.Key)
	}
	return out
}

func testStoreEncryptedAtRest(t *testing.T, b driver.Bucket) {
	s := newStore(t, b)
	ctx := context.Background()
	weights := floats(40000)
	if _, err := s.PublishModel(ctx, "acme", "mnist", bytes.NewReader(weights), int64(len(weights)), []byte(`{"secret_metric":0.987654}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "acme", "endpoints", "ep1", []byte(`{"token":"plaintext-marker-xyz"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SystemPut(ctx, "tenants", []byte(`{"system-marker-abc":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBlob(ctx, "acme", "datasets", "d1", bytes.NewReader(weights[:8192]), 8192); err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{weights[4000:4032], []byte("plaintext-marker-xyz"), []byte("system-marker-abc"), []byte("0.987654"), masterKey}
	objs := rawAll(t, b)
	if len(objs) < 6 {
		t.Fatalf("only %d objects stored", len(objs))
	}
	for key, raw := range objs {
		for i, nd := range needles {
			if bytes.Contains(raw, nd) {
				t.Errorf("object %s holds plaintext needle %d", key, i)
			}
		}
	}
	got, _, err := s.OpenModel(ctx, "acme", "mnist", 1)
	if err != nil || !bytes.Equal(got, weights) {
		t.Errorf("round trip failed: %v", err)
	}
}

func testStoreCorruption(t *testing.T, b driver.Bucket) {
	s := newStore(t, b)
	ctx := context.Background()
	good := floats(1000)
	if _, err := s.PublishModel(ctx, "acme", "m", bytes.NewReader(good), int64(len(good)), nil); err != nil {
		t.Fatal(err)
	}
	bad := floats(2000)
	info, err := s.PublishModel(ctx, "acme", "m", bytes.NewReader(bad), int64(len(bad)), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := get(t, b, info.Data)
	raw[len(raw)/2] ^= 0x40
	if err := put(t, b, info.Data, raw, false); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.OpenModel(ctx, "acme", "m", 2)
	if !errors.Is(err, modelstore.ErrCorrupt) || !strings.Contains(err.Error(), info.Data) {
		t.Errorf("corrupt version 2: %v; want ErrCorrupt naming %s", err, info.Data)
	}
	if got, _, err := s.OpenModel(ctx, "acme", "m", 1); err != nil || !bytes.Equal(got, good) {
		t.Errorf("version 1 no longer serves: %v", err)
	}
	// Truncation is corruption too.
	if err := put(t, b, info.Data, raw[:len(raw)-100], false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.OpenModel(ctx, "acme", "m", 2); !errors.Is(err, modelstore.ErrCorrupt) {
		t.Errorf("truncated version 2: %v; want ErrCorrupt", err)
	}
}

// testStoreSwap copies one tenant's object over another's: the key is in
// the AAD, so it must not decrypt as the victim's data.
func testStoreSwap(t *testing.T, b driver.Bucket) {
	s := newStore(t, b)
	ctx := context.Background()
	if err := s.Put(ctx, "alice", "endpoints", "e", []byte("alice's")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "alice", "endpoints", "f", []byte("other")); err != nil {
		t.Fatal(err)
	}
	raw, _ := get(t, b, "tenants/alice/records/endpoints/e")
	if err := put(t, b, "tenants/alice/records/endpoints/f", raw, false); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "alice", "endpoints", "f"); !errors.Is(err, modelstore.ErrCorrupt) {
		t.Errorf("swapped object read as %q, %v; want ErrCorrupt", got, err)
	}
}

func testStoreAppendRace(t *testing.T, b driver.Bucket) {
	s := newStore(t, b)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[int64]bool{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			seq, err := s.Append(ctx, "acme", "audit", []byte(fmt.Sprintf(`{"i":%d}`, i)))
			if err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seqs[seq] {
				t.Errorf("sequence %d taken twice", seq)
			}
			seqs[seq] = true
		}(i)
	}
	wg.Wait()
	names, err := s.List(ctx, "acme", "audit", "", "", 0)
	if err != nil || len(names) != n {
		t.Errorf("%d audit records (%v), want %d", len(names), err, n)
	}
}

// testStoreAliasMove: while one writer moves an alias back and forth,
// readers always see one of the two targets, never an error or a mix.
func testStoreAliasMove(t *testing.T, b driver.Bucket) {
	s := newStore(t, b)
	ctx := context.Background()
	for _, w := range []string{"v1", "v2"} {
		if _, err := s.PublishModel(ctx, "acme", "m", strings.NewReader(w), 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAlias(ctx, "acme", "m", "prod", modelstore.Alias{Version: 1}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int32
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, err := s.GetAlias(ctx, "acme", "m", "prod")
				if err != nil || (a.Version != 1 && a.Version != 2) || (a.Version == 2) != (a.CanaryWeight == 30) {
					t.Errorf("reader %d saw %+v, %v", r, a, err)
					return
				}
				reads.Add(1)
			}
		}(r)
	}
	// Each move waits for a read after the previous one, so that reads
	// overlap the moves even where a move is instantaneous (memblob) and
	// the readers were slow to be scheduled.
	readSince := func(n int32) {
		for deadline := time.Now().Add(10 * time.Second); reads.Load() == n; runtime.Gosched() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatal("no read in 10 s")
			}
		}
	}
	for i := 0; i < 30; i++ {
		readSince(reads.Load())
		a := modelstore.Alias{Version: 1}
		if i%2 == 0 {
			a = modelstore.Alias{Version: 2, CanaryVersion: 1, CanaryWeight: 30}
		}
		if err := s.SetAlias(ctx, "acme", "m", "prod", a); err != nil {
			t.Fatal(err)
		}
	}
	readSince(reads.Load())
	close(stop)
	wg.Wait()
}
