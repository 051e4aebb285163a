package hardening

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
)

// minio is a MinIO server process this test owns, so it can kill it.
type minio struct {
	bin, addr, dir, user, pass string
	cmd                        *exec.Cmd
	log                        bytes.Buffer
}

func minioBinary(t *testing.T) string {
	t.Helper()
	tools := os.Getenv("AIAAS_TOOLS")
	if tools == "" {
		home, _ := os.UserHomeDir()
		tools = filepath.Join(home, ".cache", "aiaas", "tools")
	}
	bin := filepath.Join(tools, "bin", "minio")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("AIAAS_REQUIRE_S3") == "1" {
			t.Fatalf("AIAAS_REQUIRE_S3=1 but no MinIO at %s (scripts/deps.sh installs it)", bin)
		}
		t.Skipf("no MinIO binary at %s", bin)
	}
	return bin
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// start runs MinIO and waits until /minio/health/live answers 200.
func (m *minio) start(t *testing.T) {
	t.Helper()
	m.log.Reset()
	m.cmd = exec.Command(m.bin, "server", "--quiet", "--address", m.addr, m.dir)
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.user, "MINIO_ROOT_PASSWORD="+m.pass, "MINIO_BROWSER=off")
	m.cmd.Stdout, m.cmd.Stderr = &m.log, &m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + m.addr + "/minio/health/live"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.kill()
	t.Fatalf("MinIO not live in 30 s:\n%s", m.log.String())
}

func (m *minio) kill() {
	if m.cmd != nil && m.cmd.ProcessState == nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	}
}

// TestStorageOutage: aiaas on MinIO; MinIO is SIGKILLed. A warm model
// keeps serving, a cold one and a publish answer 503 JSON with
// Retry-After within the request timeout, and once MinIO is back on the
// same port and folder everything works again without restarting aiaas.
func TestStorageOutage(t *testing.T) {
	m := &minio{bin: minioBinary(t), dir: t.TempDir(), user: "u" + randHex(8), pass: randHex(16)}
	m.addr = testserver.FreeAddr(t)
	m.start(t)
	t.Cleanup(m.kill)
	store := "s3://aiaas-outage?endpoint=" + m.addr + "&secure=false&create=true"
	s := testserver.Start(t, store, "AIAAS_S3_ACCESS_KEY="+m.user, "AIAAS_S3_SECRET_KEY="+m.pass, "AIAAS_REQUEST_TIMEOUT=5s")
	_, key := tenantClientKey(t, s, "outage")
	publish := func(name string, seed int64) (int, []byte, time.Duration) {
		t0 := time.Now()
		st, b := do(t, "POST", s.URL+"/v1/models/"+name+"/versions", key, "application/octet-stream", artifact(t, seed), nil)
		return st, b, time.Since(t0)
	}
	infer := func(name string) (int, []byte, http.Header, time.Duration) {
		t0 := time.Now()
		req, _ := http.NewRequest("POST", s.URL+"/v2/models/"+name+"/infer", bytes.NewReader(inferBody))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("infer %s: %v", name, err)
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		return res.StatusCode, buf.Bytes(), res.Header, time.Since(t0)
	}
	for i, name := range []string{"m1", "m2"} {
		if st, b, _ := publish(name, int64(i+1)); st != http.StatusCreated {
			t.Fatalf("publish %s: %d %.200s", name, st, b)
		}
	}
	for _, ref := range []string{"m1", "m1/versions/1"} {
		if st, b, _, _ := infer(ref); st != 200 {
			t.Fatalf("warm %s: %d %.200s", ref, st, b)
		}
	}

	m.kill()
	outage := time.Now()
	n := 8
	if soak() {
		n = 40
	}
	// The brief for the platform: a warm model keeps answering for the
	// whole outage. Measured: only while the 2 s ref cache lasts — every
	// infer, even one pinned to a version, lists the versions in the
	// store first. The first call (inside the cache) must succeed; later
	// failures are recorded and reported as a bug below.
	var warmFail []string
	for i := 0; i < n; i++ {
		for _, ref := range []string{"m1/versions/1", "m1"} {
			st, b, _, d := infer(ref)
			if st == 200 {
				continue
			}
			at := time.Since(outage)
			if i == 0 {
				t.Errorf("warm %s right after the kill (+%v, inside the ref cache): %d in %v: %.200s", ref, at, st, d, b)
			}
			warmFail = append(warmFail, fmt.Sprintf("%s +%v: %d in %v", ref, at.Round(time.Millisecond), st, d.Round(time.Millisecond)))
		}
		time.Sleep(500 * time.Millisecond)
	}
	var leak []string // 503 bodies naming the storage endpoint
	st, b, h, d := infer("m2")
	t.Logf("cold m2 during the outage: %d in %v, Retry-After %q: %.200s", st, d.Round(time.Millisecond), h.Get("Retry-After"), b)
	if bytes.Contains(b, []byte(m.addr)) {
		leak = append(leak, "cold infer")
	}
	if st != http.StatusServiceUnavailable || !isJSONError(b) || h.Get("Retry-After") == "" {
		t.Errorf("cold m2 during the outage: %d, Retry-After %q: %.200s; want 503 JSON with Retry-After", st, h.Get("Retry-After"), b)
	}
	if d > 6*time.Second {
		t.Errorf("cold m2 answered after %v, want ≤ 6 s", d)
	}
	st, b, d = publish("m1", 9)
	t.Logf("publish during the outage: %d in %v: %.200s", st, d.Round(time.Millisecond), b)
	if bytes.Contains(b, []byte(m.addr)) {
		leak = append(leak, "publish")
	}
	if st != http.StatusServiceUnavailable || !isJSONError(b) {
		t.Errorf("publish during the outage: %d: %.200s; want 503 JSON", st, b)
	}

	m.start(t)
	back := time.Now()
	var inferOK, pubOK time.Duration
	for time.Since(back) < 15*time.Second && (inferOK == 0 || pubOK == 0) {
		if inferOK == 0 {
			if st, _, _, _ := infer("m2"); st == 200 {
				inferOK = time.Since(back)
			}
		}
		if pubOK == 0 {
			if st, _, _ := publish("m1", 10); st == http.StatusCreated {
				pubOK = time.Since(back)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("after MinIO restart: cold infer OK after %v, publish OK after %v (0 = never in 15 s)", inferOK, pubOK)
	if inferOK == 0 || pubOK == 0 {
		t.Fatalf("not recovered within 15 s of MinIO coming back")
	}
	t.Run("warm-model-whole-outage", func(t *testing.T) {
		if len(warmFail) > 0 {
			t.Fatalf("a warm model failed during a store outage (%d of %d calls): %s",
				len(warmFail), 2*n, strings.Join(warmFail, "; "))
		}
	})
	t.Run("no-internals", func(t *testing.T) {
		if len(leak) > 0 {
			t.Fatalf("503 bodies name the internal storage endpoint %s (%v)", m.addr, leak)
		}
	})
}
