package console

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t testing.TB, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://x"+target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	h := Handler()
	cases := []struct {
		method, path string
		status       int
		ctype, cache string
		location     string
	}{
		{"GET", "/", 302, "", "", "/console/"},
		{"GET", "/console", 302, "", "", "/console/"},
		{"GET", "/console/", 200, "text/html; charset=utf-8", "no-cache", ""},
		{"HEAD", "/console/", 200, "text/html; charset=utf-8", "no-cache", ""},
		{"GET", "/console/index.html", 200, "text/html; charset=utf-8", "no-cache", ""},
		{"GET", "/console/app.js?v=abc", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", ""},
		{"GET", "/console/chart.js", 200, "text/javascript; charset=utf-8", "no-cache", ""},
		{"GET", "/console/style.css?v=1", 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", ""},
		{"GET", "/console/metrics.js", 200, "text/javascript; charset=utf-8", "no-cache", ""},
		{"GET", "/console/vendor/uPlot.iife.min.js?v=1", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", ""},
		{"GET", "/console/vendor/uPlot.min.css?v=1", 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", ""},
		{"GET", "/console/vendor/uPlot.LICENSE.txt", 200, "text/plain; charset=utf-8", "no-cache", ""},
		{"GET", "/console/nope.js", 404, "", "", ""},
		{"GET", "/console/../console.go", 404, "", "", ""},
		{"GET", "/console/static/app.js", 404, "", "", ""},
		{"GET", "/elsewhere", 404, "", "", ""},
		{"POST", "/console/", 405, "", "", ""},
		{"DELETE", "/console/app.js", 405, "", "", ""},
	}
	for i, c := range cases {
		w := get(t, h, c.method, c.path, nil)
		if w.Code != c.status {
			t.Errorf("%d: %s %s: status %d, want %d", i, c.method, c.path, w.Code, c.status)
			continue
		}
		hd := w.Header()
		for k, want := range map[string]string{
			"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		} {
			if got := hd.Get(k); got != want {
				t.Errorf("%d: %s = %q, want %q", i, k, got, want)
			}
		}
		if c.ctype != "" && hd.Get("Content-Type") != c.ctype {
			t.Errorf("%d: Content-Type %q, want %q", i, hd.Get("Content-Type"), c.ctype)
		}
		if c.cache != "" && hd.Get("Cache-Control") != c.cache {
			t.Errorf("%d: Cache-Control %q, want %q", i, hd.Get("Cache-Control"), c.cache)
		}
		if c.location != "" && hd.Get("Location") != c.location {
			t.Errorf("%d: Location %q, want %q", i, hd.Get("Location"), c.location)
		}
		if c.status == 200 && c.method == "GET" && w.Body.Len() == 0 {
			t.Errorf("%d: empty body", i)
		}
	}
}

func TestETag(t *testing.T) {
	h := Handler()
	w := get(t, h, "GET", "/console/", nil)
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w2 := get(t, h, "GET", "/console/", map[string]string{"If-None-Match": etag}); w2.Code != http.StatusNotModified {
		t.Fatalf("revalidation: status %d, want 304", w2.Code)
	}
}

// The CSP forbids inline script and style; check the sources obey it, so
// the page does not silently break in the browser.
func TestNoInlineScriptOrStyle(t *testing.T) {
	h := Handler()
	html := get(t, h, "GET", "/console/", nil).Body.String()
	if m := regexp.MustCompile(`<script(?:\s[^>]*)?>`).FindAllString(html, -1); len(m) == 0 {
		t.Fatal("no script tag")
	} else {
		for i, tag := range m {
			if !strings.Contains(tag, "src=") {
				t.Errorf("%d: inline script %q", i, tag)
			}
		}
	}
	for i, bad := range []string{"<style", " style=", "onclick=", "onload=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("%d: index.html contains %q", i, bad)
		}
	}
}

// Every versioned reference is rewritten, and the versioned URLs resolve.
func TestVersionedAssets(t *testing.T) {
	h := Handler()
	for name, a := range h.(*handler).assets {
		if strings.Contains(string(a.body), "?v=dev") {
			t.Errorf("%s: unrewritten ?v=dev", name)
		}
	}
	html := get(t, h, "GET", "/console/", nil).Body.String()
	refs := regexp.MustCompile(`(?:src|href)="([a-zA-Z/.]+\.(?:js|css)\?v=[0-9a-f]{12})"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 4 {
		t.Fatalf("found %d versioned references, want ≥4 (app, style, uPlot's script and style)", len(refs))
	}
	for i, r := range refs {
		if w := get(t, h, "GET", "/console/"+r[1], nil); w.Code != 200 {
			t.Errorf("%d: %s: status %d", i, r[1], w.Code)
		}
	}
}

// The vendored charting library is what its README says it is (so an
// upgrade updates the provenance too), it is small, and the page loads
// it, as a classic script, before the modules that use it.
func TestVendoredUPlot(t *testing.T) {
	h := Handler().(*handler)
	readme := string(h.assets["vendor/README.md"].body)
	for i, name := range []string{"vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "vendor/uPlot.LICENSE.txt"} {
		raw, err := fs.ReadFile(static, "static/"+name)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if len(raw) > 256<<10 {
			t.Errorf("%d: %s is %d bytes; the console's assets stay small", i, name, len(raw))
		}
		sum := sha256.Sum256(raw)
		if !strings.Contains(readme, hex.EncodeToString(sum[:])) {
			t.Errorf("%d: %s: sha256 %x is not in vendor/README.md", i, name, sum)
		}
	}
	html := string(h.assets["index.html"].body)
	lib, app := strings.Index(html, `<script src="vendor/uPlot.iife.min.js`), strings.Index(html, `<script type="module" src="app.js`)
	if lib < 0 || app < 0 || lib > app {
		t.Errorf("index.html must load vendor/uPlot.iife.min.js (classic script) before app.js: at %d and %d", lib, app)
	}
}

// The key must stay in sessionStorage and never enter a URL.
func TestKeyHandling(t *testing.T) {
	js := string(Handler().(*handler).assets["app.js"].body)
	if strings.Contains(js, "localStorage") {
		t.Error("app.js uses localStorage")
	}
	if !strings.Contains(js, "sessionStorage") || !strings.Contains(js, "'Bearer '") {
		t.Error("app.js does not keep the key in sessionStorage / send it as Bearer")
	}
	if strings.Contains(js, "innerHTML") {
		t.Error("app.js uses innerHTML; build DOM nodes so API strings cannot inject markup")
	}
}

// FuzzHandler: no path or method makes the handler panic, and only
// embedded names are ever served.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{"/", "/console/", "/console/app.js?v=1", "/console/%2e%2e/x", "/console//app.js", "/console/\x00", "/console/" + strings.Repeat("a", 300)} {
		f.Add("GET", s)
	}
	f.Add("HEAD", "/console/style.css")
	h := Handler().(*handler)
	f.Fuzz(func(t *testing.T, method, target string) {
		r, err := http.NewRequest(method, "http://x/", nil)
		if err != nil {
			return
		}
		r.URL.Path, r.URL.RawQuery, _ = strings.Cut(target, "?")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == 200 {
			name := strings.TrimPrefix(r.URL.Path, Prefix)
			if name == "" {
				name = "index.html"
			}
			if _, ok := h.assets[name]; !ok {
				t.Fatalf("served %q which is not an asset", r.URL.Path)
			}
		}
		if w.Header().Get("Content-Security-Policy") != CSP {
			t.Fatal("missing CSP")
		}
	})
}

func BenchmarkIndex(b *testing.B) {
	h := Handler()
	r := httptest.NewRequest("GET", "/console/", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
}
