package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/internal/records"
)

// memStore is an in-memory records.Store that counts reads and can fail.
type memStore struct {
	mu     sync.Mutex
	m      map[string][]byte
	gets   atomic.Int64
	outage error
}

func newMem() *memStore { return &memStore{m: map[string][]byte{}} }

func k(tenant, kind, name string) string { return tenant + "/" + kind + "/" + name }

func (s *memStore) Get(ctx context.Context, tenant, kind, name string) ([]byte, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage != nil {
		return nil, s.outage
	}
	b, ok := s.m[k(tenant, kind, name)]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, modelstore.ErrNotFound)
	}
	return slices.Clone(b), nil
}

func (s *memStore) Put(ctx context.Context, tenant, kind, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k(tenant, kind, name)] = slices.Clone(data)
	return nil
}

func (s *memStore) Delete(ctx context.Context, tenant, kind, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k(tenant, kind, name)]; !ok {
		return modelstore.ErrNotFound
	}
	delete(s.m, k(tenant, kind, name))
	return nil
}

func (s *memStore) List(ctx context.Context, tenant, kind, prefix, after string, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for key := range s.m {
		if n, ok := strings.CutPrefix(key, tenant+"/"+kind+"/"); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	r := records.New(st, nil)
	for i, c := range []struct {
		get  func() error
		want string
	}{
		{func() error { _, err := r.Endpoint(ctx, "t1", "e"); return err }, `endpoint "e" not found`},
		{func() error { _, err := r.Plugin(ctx, "t1", "p"); return err }, `plugin "p" not found`},
		{func() error { return r.DeleteEndpoint(ctx, "t1", "e") }, `endpoint "e" not found`},
	} {
		err := c.get()
		if !errors.Is(err, modelstore.ErrNotFound) || err.Error() != c.want {
			t.Errorf("%d: %v, want %q wrapping ErrNotFound", i, err, c.want)
		}
	}
	// Absence is cached: asking again reads nothing.
	n := st.gets.Load()
	if _, err := r.Endpoint(ctx, "t1", "e"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Fatal(err)
	}
	if st.gets.Load() != n {
		t.Errorf("a cached absence read the store again")
	}
}

func TestOutageNotCached(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	r := records.New(st, nil)
	st.outage = modelstore.ErrUnavailable
	if _, err := r.Endpoint(ctx, "t1", "e"); !errors.Is(err, modelstore.ErrUnavailable) || errors.Is(err, modelstore.ErrNotFound) {
		t.Fatalf("outage: %v", err)
	}
	st.mu.Lock()
	st.outage = nil
	st.mu.Unlock()
	if _, _, err := r.PutEndpoint(ctx, "t1", records.Endpoint{Name: "e", Model: "m"}); err != nil {
		t.Fatal(err)
	}
	if ep, err := r.Endpoint(ctx, "t1", "e"); err != nil || ep.Model != "m" {
		t.Fatalf("after the outage: %+v %v", ep, err)
	}
}

func TestEndpointLife(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	r := records.New(st, nil)
	ep, created, err := r.PutEndpoint(ctx, "t1", records.Endpoint{Name: "e", Model: "m", Version: "prod"})
	if err != nil || !created || ep.Created.IsZero() || !ep.Created.Equal(ep.Updated) {
		t.Fatalf("first put: %+v %v %v", ep, created, err)
	}
	// Read it into the cache, then replace it: the write is seen at once
	// and the creation time kept.
	if _, err := r.Endpoint(ctx, "t1", "e"); err != nil {
		t.Fatal(err)
	}
	ep2, created, err := r.PutEndpoint(ctx, "t1", records.Endpoint{Name: "e", Model: "m2"})
	if err != nil || created || !ep2.Created.Equal(ep.Created) {
		t.Fatalf("second put: %+v %v %v", ep2, created, err)
	}
	if got, err := r.Endpoint(ctx, "t1", "e"); err != nil || got.Model != "m2" {
		t.Fatalf("read after put: %+v %v", got, err)
	}
	// Another tenant's endpoint of the same name is not this one.
	if _, err := r.Endpoint(ctx, "t2", "e"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("another tenant: %v", err)
	}
	if _, _, err := r.PutEndpoint(ctx, "t1", records.Endpoint{Name: "f", Model: "m"}); err != nil {
		t.Fatal(err)
	}
	// A damaged record fails its read and is left out of the listing.
	st.Put(ctx, "t1", "endpoints", "bad", []byte("{"))
	if _, err := r.Endpoint(ctx, "t1", "bad"); err == nil || errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("damaged record: %v", err)
	}
	eps, err := r.Endpoints(ctx, "t1")
	if err != nil || len(eps) != 2 || eps[0].Name != "e" || eps[1].Name != "f" {
		t.Fatalf("list: %+v %v", eps, err)
	}
	if err := r.DeleteEndpoint(ctx, "t1", "e"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Endpoint(ctx, "t1", "e"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if eps, err := r.Endpoints(ctx, "t2"); err != nil || eps == nil || len(eps) != 0 {
		t.Errorf("empty list: %#v %v (want a non-nil empty slice: it is JSON [])", eps, err)
	}
}

func TestPlugins(t *testing.T) {
	ctx := context.Background()
	r := records.New(newMem(), nil)
	if _, err := r.Plugin(ctx, "t1", "p"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Fatal(err)
	}
	rec, err := r.PutPlugin(ctx, "t1", records.Plugin{Name: "p", SHA256: "ab", Size: 3, Exports: []string{"preprocess"}, ABIVersion: 1})
	if err != nil || rec.Created.IsZero() {
		t.Fatalf("put: %+v %v", rec, err)
	}
	got, err := r.Plugin(ctx, "t1", "p")
	if err != nil || got.SHA256 != "ab" || !got.Created.Equal(rec.Created) {
		t.Fatalf("read after put (the cached absence must be forgotten): %+v %v", got, err)
	}
	if ps, err := r.Plugins(ctx, "t1"); err != nil || len(ps) != 1 || ps[0].Name != "p" {
		t.Fatalf("list: %+v %v", ps, err)
	}
}

// TestJSON pins the records' field names: stored records and API answers
// are read by other processes and clients.
func TestJSON(t *testing.T) {
	ep := records.Endpoint{Name: "e", Model: "m", Version: "1", Preprocess: "a", Postprocess: "b",
		ForwardInputs: []string{"mask"}, Generation: &records.GenerationConfig{EOS: []int64{1}, MaxTokens: 2, MaxContext: 3}}
	b, _ := json.Marshal(ep)
	want := `{"name":"e","model":"m","version":"1","preprocess":"a","postprocess":"b","forward_inputs":["mask"],` +
		`"generation":{"eos_token_ids":[1],"max_tokens":2,"max_context":3},"created":"0001-01-01T00:00:00Z","updated":"0001-01-01T00:00:00Z"}`
	if string(b) != want {
		t.Errorf("endpoint JSON:\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(records.Plugin{Name: "p", SHA256: "ab", Size: 1, Exports: []string{"x"}, ABIVersion: 1})
	want = `{"name":"p","sha256":"ab","size":1,"exports":["x"],"abi_version":1,"created":"0001-01-01T00:00:00Z"}`
	if string(b) != want {
		t.Errorf("plugin JSON:\n got %s\nwant %s", b, want)
	}
}

func TestCheckEndpoint(t *testing.T) {
	many := make([]string, records.MaxForwardInputs+1)
	for i := range many {
		many[i] = "x"
	}
	for i, c := range []struct {
		ep   records.Endpoint
		want string // "" for valid
	}{
		{records.Endpoint{}, ""},
		{records.Endpoint{ForwardInputs: many[:records.MaxForwardInputs], Generation: &records.GenerationConfig{EOS: make([]int64, records.MaxEOSIDs)}}, ""},
		{records.Endpoint{ForwardInputs: many}, "forward_inputs: 17 names, limit 16"},
		{records.Endpoint{ForwardInputs: []string{""}}, "forward_inputs: names must have 1 to 128 bytes"},
		{records.Endpoint{ForwardInputs: []string{strings.Repeat("a", 129)}}, "forward_inputs: names must have 1 to 128 bytes"},
		{records.Endpoint{Generation: &records.GenerationConfig{EOS: make([]int64, 17)}}, "generation.eos_token_ids: 17 ids, limit 16"},
		{records.Endpoint{Generation: &records.GenerationConfig{MaxTokens: -1}}, "generation: max_tokens and max_context must not be negative"},
		{records.Endpoint{Generation: &records.GenerationConfig{MaxContext: -1}}, "generation: max_tokens and max_context must not be negative"},
	} {
		err := records.CheckEndpoint(&c.ep)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%d: %v, want valid", i, err)
		case c.want != "" && (!errors.Is(err, records.ErrInvalid) || err.Error() != c.want):
			t.Errorf("%d: %v, want %q wrapping ErrInvalid", i, err, c.want)
		}
	}
}

// TestHammer reads, writes and deletes the same records from many
// goroutines (run it with -race); at the end each record read is the one
// last written, since a write forgets what reads in flight would cache.
func TestHammer(t *testing.T) {
	ctx := context.Background()
	r := records.New(newMem(), nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				name := fmt.Sprintf("e%d", i%4)
				switch (g + i) % 4 {
				case 0:
					r.PutEndpoint(ctx, "t1", records.Endpoint{Name: name, Model: fmt.Sprint(g)})
				case 1:
					r.DeleteEndpoint(ctx, "t1", name)
				case 2:
					r.Endpoints(ctx, "t1")
				default:
					r.Endpoint(ctx, "t1", name)
				}
			}
		}()
	}
	wg.Wait()
	for i := range 4 {
		name := fmt.Sprintf("e%d", i)
		if _, _, err := r.PutEndpoint(ctx, "t1", records.Endpoint{Name: name, Model: "last"}); err != nil {
			t.Fatal(err)
		}
		if ep, err := r.Endpoint(ctx, "t1", name); err != nil || ep.Model != "last" {
			t.Errorf("%s: %+v %v, want the last write", name, ep, err)
		}
	}
}

// A cached record is decoded once: reading it again costs a copy, not a
// JSON decode, and each reader gets its own copy of the fields.
func TestCachedRecordDecodedOnce(t *testing.T) {
	ctx := context.Background()
	r := records.New(newMem(), nil)
	if _, _, err := r.PutEndpoint(ctx, "acme", records.Endpoint{Name: "e", Model: "m", Preprocess: "p", ForwardInputs: []string{"attention_mask"}}); err != nil {
		t.Fatal(err)
	}
	first, err := r.Endpoint(ctx, "acme", "e")
	if err != nil {
		t.Fatal(err)
	}
	first.Model = "changed by a caller"
	again, err := r.Endpoint(ctx, "acme", "e")
	if err != nil || again.Model != "m" || again.Preprocess != "p" || !slices.Equal(again.ForwardInputs, []string{"attention_mask"}) {
		t.Fatalf("second read = %+v, %v", again, err)
	}
	// A JSON decode of this record allocates a dozen times; the copy once.
	if allocs := testing.AllocsPerRun(100, func() { r.Endpoint(ctx, "acme", "e") }); allocs > 2 {
		t.Errorf("a cached read allocates %v times, want at most 2 (decoded again?)", allocs)
	}
}
