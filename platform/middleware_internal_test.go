package platform

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/audit"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/platform/internal/auth"
	"github.com/aiaas/aiaas/platform/internal/share"
)

const mwAdminKey = "aiaas_admin_0123456789abcdef0123456789abcdef"

// mwServer is a whole Server on the memory store, for the middleware's
// dependencies (log, metrics, audit, quota, auth).
func mwServer(t *testing.T, mutate func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.AdminKey = mwAdminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	if mutate != nil {
		mutate(&cfg)
	}
	key, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(context.Background(), "mem://", &modelstore.Options{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Config: cfg, Store: StoreFrom(ms)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// serve runs h for one request and returns the recorder.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("answer %d %q is not a JSON error", w.Code, w.Body)
	}
	return e.Error
}

// withInfo gives a request the reqInfo withRequestID would.
func withInfo(r *http.Request, info *reqInfo) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))
}

func TestWithRequestID(t *testing.T) {
	var seen string
	h := withRequestID("x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = requestID(r.Context()) }))
	for _, c := range []struct {
		sent string
		kept bool
	}{{"abc-123_X.y", true}, {"", false}, {"has space", false}, {strings.Repeat("a", 65), false}, {"new\nline", false}} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.sent != "" {
			r.Header["X-Request-Id"] = []string{c.sent}
		}
		w := serve(h, r)
		got := w.Header().Get("X-Request-Id")
		if got != seen || got == "" || (got == c.sent) != c.kept {
			t.Errorf("sent %q: echoed %q, handler saw %q, kept %v", c.sent, got, seen, c.kept)
		}
	}
}

func TestWithRecover(t *testing.T) {
	s := mwServer(t, nil)
	before := s.withObserve(public, s.withRecover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	r := withInfo(httptest.NewRequest("GET", "/", nil), &reqInfo{id: "rid1"})
	w := serve(before, r)
	if w.Code != 500 || !strings.Contains(errorOf(t, w), "rid1") || strings.Contains(w.Body.String(), "boom") {
		t.Fatalf("panic before answering: %d %s; want a 500 naming the request id, not the panic", w.Code, w.Body)
	}
	after := s.withObserve(public, s.withRecover(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("partial"))
		panic("late")
	})))
	w = serve(after, withInfo(httptest.NewRequest("GET", "/", nil), &reqInfo{id: "rid2"}))
	if w.Code != http.StatusAccepted || w.Body.String() != "partial" {
		t.Fatalf("panic after answering: %d %q; want the started answer untouched", w.Code, w.Body)
	}
}

func TestWithAuth(t *testing.T) {
	s := mwServer(t, nil)
	ctx := context.Background()
	tn, key, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	invokeKey, _, err := s.auth.CreateKey(ctx, tn.ID, "ci", apikey.ScopeInvoke)
	if err != nil {
		t.Fatal(err)
	}
	var got *auth.Principal
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = principalOf(r.Context()) })
	for _, c := range []struct {
		acc    access
		key    string
		status int // 0: passes
		msg    string
	}{
		{manage, "", 401, ""},
		{manage, "aiaas_nope", 401, ""},
		{manage, string(key), 0, ""},
		{invoke, string(invokeKey), 0, ""},
		{manage, string(invokeKey), 403, `scope "invoke"`},
		{admin, string(key), 403, "admin key"},
		{manage, mwAdminKey, 403, "manages tenants only"},
		{admin, mwAdminKey, 0, ""},
	} {
		got = nil
		r := httptest.NewRequest("GET", "/", nil)
		if c.key != "" {
			r.Header.Set("Authorization", "Bearer "+c.key)
		}
		w := serve(s.withAuth(c.acc, next), withInfo(r, &reqInfo{}))
		if c.status == 0 {
			if w.Code != 200 || got == nil || (c.key == mwAdminKey) != got.Admin || (!got.Admin && got.Tenant != tn.ID) {
				t.Errorf("access %v with %.12s…: %d %s, principal %+v", c.acc, c.key, w.Code, w.Body, got)
			}
			continue
		}
		if w.Code != c.status || got != nil || !strings.Contains(errorOf(t, w), c.msg) {
			t.Errorf("access %v with %.12s…: %d %s (handler ran: %v); want %d mentioning %q", c.acc, c.key, w.Code, w.Body, got != nil, c.status, c.msg)
		}
	}
}

func TestWithQuota(t *testing.T) {
	s := mwServer(t, func(c *config.Config) { c.TenantRPS, c.TenantBurst = 0.001, 1 })
	ran := 0
	h := s.withQuota(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran++ }))
	req := func(p *auth.Principal) *httptest.ResponseRecorder {
		return serve(h, withInfo(httptest.NewRequest("GET", "/", nil), &reqInfo{p: p}))
	}
	acme := &auth.Principal{Tenant: "tacme"}
	if w := req(acme); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") == "" {
		t.Fatalf("first request: %d, headers %v", w.Code, w.Header())
	}
	w := req(acme)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(errorOf(t, w), "quota") {
		t.Fatalf("second request over a burst of 1: %d %s %v", w.Code, w.Body, w.Header())
	}
	if w := req(&auth.Principal{Tenant: "tother"}); w.Code != 200 {
		t.Fatalf("another tenant: %d; one tenant's quota must not hold another", w.Code)
	}
	if w := req(&auth.Principal{Admin: true}); w.Code != 200 {
		t.Fatalf("the admin: %d; quotas are per tenant", w.Code)
	}
	if ran != 3 {
		t.Fatalf("the handler ran %d times, want 3", ran)
	}
}

func TestWithBody(t *testing.T) {
	s := mwServer(t, func(c *config.Config) { c.MaxBodyBytes = 1024 })
	h := s.withBody("infer", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		b, err := readAllLimited(r)
		if err != nil {
			return err
		}
		w.Write(b)
		return nil
	}))
	post := func(body []byte, enc string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		if enc != "" {
			r.Header.Set("Content-Encoding", enc)
		}
		return serve(h, withInfo(r, &reqInfo{}))
	}
	if w := post(make([]byte, 1024), ""); w.Code != 200 || w.Body.Len() != 1024 {
		t.Fatalf("a body at the limit: %d", w.Code)
	}
	if w := post(make([]byte, 1025), ""); w.Code != 413 {
		t.Fatalf("a body over the limit: %d %s", w.Code, w.Body)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(make([]byte, 100_000)) // 100 KB of zeros: ~100 bytes compressed
	zw.Close()
	if w := post(z.Bytes(), "gzip"); w.Code != 413 {
		t.Fatalf("a gzip body inflating past the limit: %d %s", w.Code, w.Body)
	}
	if w := post([]byte("x"), "br"); w.Code != 415 {
		t.Fatalf("an unknown Content-Encoding: %d %s", w.Code, w.Body)
	}
}

// readAllLimited reads a request body as handlers do.
func readAllLimited(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func TestHandle(t *testing.T) {
	s := mwServer(t, nil)
	run := func(h func(http.ResponseWriter, *http.Request) error) *httptest.ResponseRecorder {
		info := &reqInfo{id: "r"}
		obs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info.rec = &statusRecorder{ResponseWriter: w}
			s.handle(h).ServeHTTP(info.rec, r)
		})
		return serve(obs, withInfo(httptest.NewRequest("GET", "/", nil), info))
	}
	if w := run(func(http.ResponseWriter, *http.Request) error { return notFound("no %s", "x") }); w.Code != 404 || errorOf(t, w) != "no x" {
		t.Fatalf("an error: %d %s", w.Code, w.Body)
	}
	if w := run(func(http.ResponseWriter, *http.Request) error { return nil }); w.Code != 200 {
		t.Fatalf("no answer, no error: %d", w.Code)
	}
	w := run(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusCreated)
		return httpErr(http.StatusBadRequest, "too late")
	})
	if w.Code != http.StatusCreated || w.Body.Len() != 0 {
		t.Fatalf("an error after the answer started: %d %q; want the answer untouched", w.Code, w.Body)
	}
}

// TestWithObserveHoldsControlPlaneAnswers: a control-plane change reaches
// the client only once its audit record is in the store; a read is not
// held.
func TestWithObserveHoldsControlPlaneAnswers(t *testing.T) {
	s := mwServer(t, nil)
	ctx := context.Background()
	tn, _, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"PUT", "GET"} {
		t.Run(method, func(t *testing.T) {
			p := &auth.Principal{Tenant: tn.ID, KeyID: "k1", Scope: apikey.ScopeManage}
			h := s.withObserve(manage, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				infoOf(r.Context()).p = p
				setAuditObject(r, "models/m-"+method)
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte(`{}`))
			}))
			var recordedAtAnswer bool
			w := &hookRecorder{ResponseRecorder: httptest.NewRecorder(), onHeader: func() {
				recs, err := s.audit.Read(ctx, tn.ID, audit.Query{Limit: 1000})
				if err != nil {
					t.Error(err)
				}
				for _, rc := range recs {
					recordedAtAnswer = recordedAtAnswer || rc.Object == "models/m-"+method
				}
			}}
			h.ServeHTTP(w, withInfo(httptest.NewRequest(method, "/", nil), &reqInfo{id: "r-" + method, action: "model.alias"}))
			if w.Code != http.StatusCreated || w.Body.String() != "{}" {
				t.Fatalf("answer %d %q", w.Code, w.Body)
			}
			if recordedAtAnswer != (method == "PUT") {
				t.Fatalf("%s: audit record in the store when the answer started: %v", method, recordedAtAnswer)
			}
		})
	}
}

// hookRecorder calls onHeader when the answer's status is sent.
type hookRecorder struct {
	*httptest.ResponseRecorder
	onHeader func()
	sent     bool
}

func (h *hookRecorder) WriteHeader(code int) {
	if !h.sent {
		h.sent = true
		h.onHeader()
	}
	h.ResponseRecorder.WriteHeader(code)
}

func (h *hookRecorder) Write(b []byte) (int, error) {
	if !h.sent {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseRecorder.Write(b)
}

func TestWithShare(t *testing.T) {
	s := mwServer(t, nil)
	s.share = share.New(2, time.Minute) // two processors, whatever this machine has
	entered := make(chan string, 8)
	hold := map[string]chan struct{}{"a1": make(chan struct{})}
	h := s.withShare(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := r.Header.Get("X-Name")
		entered <- name
		if ch := hold[name]; ch != nil {
			<-ch
		}
		return nil
	}))
	req := func(ctx context.Context, tenant, name string) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		r.Header.Set("X-Name", name)
		return serve(h, withInfo(r, &reqInfo{p: &auth.Principal{Tenant: tenant}}))
	}
	ctx := context.Background()
	if w := req(ctx, "tb", "b1"); w.Code != 200 { // b is now active
		t.Fatalf("b1: %d %s", w.Code, w.Body)
	}
	<-entered
	a1 := make(chan int)
	go func() { a1 <- req(ctx, "ta", "a1").Code }()
	if got := <-entered; got != "a1" {
		t.Fatalf("entered %q, want a1", got)
	}
	time.Sleep(50 * time.Millisecond) // a has run more than b
	// a runs one request; its second waits for it, b's passes.
	a2 := make(chan int)
	go func() { a2 <- req(ctx, "ta", "a2").Code }()
	for deadline := time.Now().Add(time.Minute); s.share.Waiting() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a's second request never waited beside its first while b is active")
		}
	}
	if w := req(ctx, "tb", "b2"); w.Code != 200 {
		t.Fatalf("b2 beside a's waiting request: %d %s", w.Code, w.Body)
	}
	if got := <-entered; got != "b2" {
		t.Fatalf("entered %q while a1 runs and b is active, want b2", got)
	}
	// A request whose deadline passes while it waits answers 504.
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if w := req(dctx, "ta", "a3"); w.Code != http.StatusGatewayTimeout || !strings.Contains(errorOf(t, w), "share of the CPUs") {
		t.Fatalf("a3 past its deadline in the queue: %d %s", w.Code, w.Body)
	}
	close(hold["a1"])
	if code := <-a1; code != 200 {
		t.Fatalf("a1: %d", code)
	}
	if got := <-entered; got != "a2" {
		t.Fatalf("entered %q after a1 ended, want a2", got)
	}
	if code := <-a2; code != 200 {
		t.Fatalf("a2: %d", code)
	}
	if n := s.share.Running("ta"); n != 0 {
		t.Fatalf("a still runs %d", n)
	}
}

// A refusal over the rate quota waits for its retry (capped), on its own
// context, and only while a hold slot is free: with every slot taken it
// is answered at once, as before.
func TestHoldRefusal(t *testing.T) {
	s := mwServer(t, nil)
	start := time.Now()
	s.holdRefusal(context.Background(), 300*time.Millisecond)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("held %v, want the retry's 300ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.holdRefusal(ctx, time.Hour); close(done) }()
	cancel()
	<-done // a canceled request ends its hold (else: the test's timeout)

	for range cap(s.holds) {
		s.holds <- struct{}{}
	}
	start = time.Now()
	s.holdRefusal(context.Background(), time.Hour)
	if d := time.Since(start); d >= maxRefusalHold/2 {
		t.Fatalf("with every slot taken the refusal waited %v", d)
	}
}
