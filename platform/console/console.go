// Package console serves the aiaas web console: a few static files
// (HTML, CSS, ES modules) embedded in the binary, so `aiaas serve` needs
// no second server and no build step.
//
// The charts are drawn by uPlot, vendored unchanged under static/vendor/
// (version, origin and checksums in static/vendor/README.md, which a test
// checks): served from here like the rest, never from a CDN.
//
// # Overview
//
// [Handler] answers GET and HEAD under /console/. The page talks to the
// JSON API (/v1, /v2) of the same origin with the tenant's key, which the
// browser keeps in sessionStorage and sends as `Authorization: Bearer`.
//
// # Caching
//
// index.html is served with `Cache-Control: no-cache` and refers to the
// other assets by a query string carrying a short content hash computed
// at start-up (?v=…), so those can be cached for a year as immutable: a
// new binary changes the hash and therefore the URL.
//
// # Security headers
//
// Every response carries a strict Content-Security-Policy (no inline
// script or style, same-origin connections only, no framing),
// X-Content-Type-Options: nosniff, X-Frame-Options: DENY and
// Referrer-Policy: no-referrer.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path under which [Handler] expects to be mounted.
const Prefix = "/console/"

// CSP is the Content-Security-Policy sent with every response.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// contentTypes is fixed rather than read from the system's mime tables,
// so a host without /etc/mime.types cannot serve JS as text/plain.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8", // the vendored licence
	".md":   "text/plain; charset=utf-8", // the vendored files' provenance
}

type handler struct {
	assets map[string]asset // keyed by name relative to static/
}

// Handler returns the console's http.Handler, to be mounted at [Prefix]
// (it strips the prefix itself). Requests for "/console" or "/" are
// redirected to "/console/". The handler is goroutine-safe: it only reads
// immutable data built once.
func Handler() http.Handler {
	h, err := newHandler(static)
	if err != nil {
		// The embedded files are part of the binary; failing here is a
		// build defect, caught by the package tests, never a request.
		panic("console: " + err.Error())
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	h := &handler{assets: map[string]asset{}}
	// One version for the whole set: a per-file hash would leave a cached
	// app.js importing a stale chart.js URL when only chart.js changed.
	all := sha256.New()
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		all.Write([]byte(p))
		all.Write(b)
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		h.assets[p] = asset{body: b, ctype: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Version the references in the HTML and JS ("app.js?v=dev") so any
	// changed file gives every asset a new URL.
	version := []byte("?v=" + hex.EncodeToString(all.Sum(nil)[:6]))
	for p, a := range h.assets {
		if path.Ext(p) == ".html" || path.Ext(p) == ".js" {
			a.body = bytes.ReplaceAll(a.body, []byte("?v=dev"), version)
		}
		sum := sha256.Sum256(a.body)
		a.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
		h.assets[p] = a
	}
	if _, ok := h.assets["index.html"]; !ok {
		return nil, fs.ErrNotExist
	}
	return h, nil
}

// modTime is zero so no Last-Modified is sent; the ETag does the work.
var modTime time.Time

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/" || p == "/console" {
		http.Redirect(w, r, Prefix, http.StatusFound)
		return
	}
	name, ok := strings.CutPrefix(p, Prefix)
	if !ok || len(name) > 200 {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	if name == "index.html" || r.URL.Query().Get("v") == "" {
		// Revalidate: the HTML names the current asset versions.
		hd.Set("Cache-Control", "no-cache")
	} else {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	http.ServeContent(w, r, "", modTime, bytes.NewReader(a.body))
}
