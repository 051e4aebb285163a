package rietest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aiaas/aiaas/infra/cfn"
)

// MinIO is the S3 server scripts/minio.sh started, administered with its
// root user through mc (the MinIO client scripts/minio.sh installs), so
// tests can give each function the rights of its IAM role instead of the
// root user's.
type MinIO struct {
	Endpoint string // host:port
	mc       string
	host     string // MC_HOST_aiaas value: http://root:secret@host:port
}

// RequireMinIO returns the MinIO of AIAAS_TEST_S3_ENDPOINT, or skips the test
// without one (fails it when AIAAS_REQUIRE_S3=1, as make test sets).
func RequireMinIO(t testing.TB) *MinIO {
	t.Helper()
	ep := os.Getenv("AIAAS_TEST_S3_ENDPOINT")
	if ep == "" {
		if os.Getenv("AIAAS_REQUIRE_S3") == "1" {
			t.Fatal("AIAAS_REQUIRE_S3=1 but AIAAS_TEST_S3_ENDPOINT is unset: eval \"$(scripts/minio.sh start)\"")
		}
		t.Skip("no S3 server: eval \"$(scripts/minio.sh start)\"")
	}
	mc := os.Getenv("AIAAS_TEST_MC")
	if mc == "" {
		tools := os.Getenv("AIAAS_TOOLS")
		if tools == "" {
			home, _ := os.UserHomeDir()
			tools = filepath.Join(home, ".cache", "aiaas", "tools")
		}
		mc = filepath.Join(tools, "bin", "mc")
	}
	if _, err := os.Stat(mc); err != nil {
		if os.Getenv("AIAAS_REQUIRE_S3") == "1" {
			t.Fatalf("the MinIO client is missing (%v): scripts/minio.sh install", err)
		}
		t.Skipf("the MinIO client is missing (%v): scripts/minio.sh install", err)
	}
	return &MinIO{Endpoint: ep, mc: mc,
		host: "http://" + os.Getenv("AIAAS_TEST_S3_ACCESS_KEY") + ":" + os.Getenv("AIAAS_TEST_S3_SECRET_KEY") + "@" + ep}
}

func (m *MinIO) run(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command(m.mc, append([]string{"--no-color", "--quiet", "--config-dir", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), "MC_HOST_aiaas="+m.host)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mc %v: %v\n%s", args, err, out)
	}
}

// Bucket creates a bucket with a random name, as CloudFormation would
// (no function role may create one).
func (m *MinIO) Bucket(t testing.TB) string {
	t.Helper()
	name := "aiaas-e2e-" + randHex(6)
	m.run(t, "mb", "aiaas/"+name)
	return name
}

// RoleUser creates a MinIO user whose policy is the S3 part of the role of
// function id in the SAM template at templatePath (its ModelBucket resources
// resolved to bucket), and returns its access and secret keys. MinIO
// enforces AWS IAM policy JSON, so the function gets exactly what its role
// grants on AWS.
func (m *MinIO) RoleUser(t testing.TB, templatePath, id, bucket string) (accessKey, secretKey string) {
	t.Helper()
	tp, err := cfn.Load(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := tp.S3Policy(id, "ModelBucket", bucket)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), id+".json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	policy := id + "-" + randHex(4)
	accessKey, secretKey = "fn"+randHex(6), randHex(20)
	m.run(t, "admin", "policy", "create", "aiaas", policy, file)
	m.run(t, "admin", "user", "add", "aiaas", accessKey, secretKey)
	m.run(t, "admin", "policy", "attach", "aiaas", policy, "--user", accessKey)
	return accessKey, secretKey
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
