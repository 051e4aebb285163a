// Package testserver builds the real aiaas binary and the example plugins
// from source and runs `aiaas serve` as its own process, for the tests
// that must exercise the product as a user would (test/e2e, examples).
package testserver

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Keys every test server is started with.
const (
	AdminKey  = "e2e-admin-key-0123456789abcdef0123"
	MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Root is the repository's root folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build compiles bin/aiaas and the example plugins (png-to-tensor.wasm,
// top-k.wasm) once per test binary and returns the folder holding them.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "aiaas-testserver")
		if buildErr != nil {
			return
		}
		run := func(env []string, args ...string) {
			if buildErr != nil {
				return
			}
			cmd := exec.Command("go", args...)
			cmd.Dir = Root()
			cmd.Env = append(os.Environ(), env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go %v: %v\n%s", args, err, out)
			}
		}
		run(nil, "build", "-o", filepath.Join(binDir, "aiaas"), "./cmd/aiaas")
		for _, p := range []string{"png-to-tensor", "top-k"} {
			run([]string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-buildmode=c-shared", "-o", filepath.Join(binDir, p+".wasm"), "./examples/plugins/"+p)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// FreeAddr returns a free loopback address.
func FreeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Server is a running `aiaas serve`.
type Server struct {
	URL     string
	Cmd     *exec.Cmd
	Log     *bytes.Buffer
	Started time.Time
	Ready   time.Duration // process start → /v2/health/ready answered 200
}

// Stop interrupts the server and waits for it (kills it after 10 s).
func (s *Server) Stop() {
	if s.Cmd.ProcessState != nil {
		return
	}
	s.Cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.Cmd.Process.Kill()
		<-done
	}
}

// Start runs `aiaas serve` on store with the test keys, waits until it is
// ready, and stops it when the test ends (printing its log if it failed).
func Start(t testing.TB, store string, extraEnv ...string) *Server {
	t.Helper()
	dir := Build(t)
	addr := FreeAddr(t)
	s := &Server{URL: "http://" + addr, Log: &bytes.Buffer{}}
	s.Cmd = exec.Command(filepath.Join(dir, "aiaas"), "serve")
	s.Cmd.Env = append(os.Environ(),
		"AIAAS_ADDR="+addr, "AIAAS_STORE="+store, "AIAAS_ADMIN_KEY="+AdminKey, "AIAAS_MASTER_KEY="+MasterKey,
		"AIAAS_PLUGIN_CACHE_DIR="+filepath.Join(os.TempDir(), "aiaas-testserver-wazero"),
		"AIAAS_S3_ACCESS_KEY="+os.Getenv("AIAAS_TEST_S3_ACCESS_KEY"), "AIAAS_S3_SECRET_KEY="+os.Getenv("AIAAS_TEST_S3_SECRET_KEY"))
	s.Cmd.Env = append(s.Cmd.Env, extraEnv...)
	s.Cmd.Stdout, s.Cmd.Stderr = s.Log, s.Log
	s.Started = time.Now()
	if err := s.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.Log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get(s.URL + "/v2/health/ready"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				s.Ready = time.Since(s.Started)
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server not ready in 30 s:\n%s", s.Log.String())
	return nil
}

// Stores lists where end-to-end tests run: a folder, and MinIO when
// scripts/minio.sh started one (make test sets AIAAS_REQUIRE_S3=1, so a
// missing MinIO fails instead of skipping).
func Stores(t testing.TB) map[string]string {
	m := map[string]string{"file": "file://" + t.TempDir()}
	if ep := os.Getenv("AIAAS_TEST_S3_ENDPOINT"); ep != "" {
		m["s3"] = S3Store(ep)
	} else if os.Getenv("AIAAS_REQUIRE_S3") == "1" {
		t.Fatal("AIAAS_REQUIRE_S3=1 but AIAAS_TEST_S3_ENDPOINT is unset: eval \"$(scripts/minio.sh start)\"")
	}
	return m
}

// S3Store is a store URL for a fresh bucket on the S3 endpoint.
func S3Store(endpoint string) string {
	return fmt.Sprintf("s3://aiaas-t%d?endpoint=%s&secure=false&create=true", time.Now().UnixNano()%1e12, endpoint)
}
