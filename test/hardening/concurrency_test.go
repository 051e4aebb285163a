package hardening

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/sdk/client"
)

func tenantClient(t *testing.T, s *testserver.Server, name string) *client.Client {
	t.Helper()
	c, _ := tenantClientKey(t, s, name)
	return c
}

func tenantClientKey(t *testing.T, s *testserver.Server, name string) (*client.Client, string) {
	t.Helper()
	admin, err := client.New(s.URL, &client.Options{APIKey: testserver.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := admin.CreateTenant(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.URL, &client.Options{APIKey: tn.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	return c, tn.APIKey
}

// TestConcurrentPublishers: 20 publishers of one model at once get
// versions 1..20, each exactly once, and each version serves the bytes its
// publisher sent.
func TestConcurrentPublishers(t *testing.T) {
	const n = 20
	s := testserver.Start(t, "file://"+t.TempDir())
	c := tenantClient(t, s, "pub")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	arts := make([][]byte, n)
	for i := range arts {
		arts[i] = artifact(t, int64(100+i))
	}
	got := make([]*client.PushedModel, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = c.PushModel(ctx, "m", bytes.NewReader(arts[i]), int64(len(arts[i])), nil)
		}(i)
	}
	wg.Wait()
	seen := map[int]int{}
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("publisher %d: %v", i, errs[i])
		}
		if prev, dup := seen[got[i].Version]; dup {
			t.Fatalf("publishers %d and %d both got version %d", prev, i, got[i].Version)
		}
		seen[got[i].Version] = i
	}
	for v := 1; v <= n; v++ {
		i, ok := seen[v]
		if !ok {
			t.Fatalf("no publisher got version %d: %v", v, seen)
		}
		req := &client.InferRequest{Inputs: []client.InferInput{{Name: "input", Shape: []int64{1, 784}, Datatype: "FP32", Data: make([]float32, 784)}}}
		res, err := c.Infer(ctx, "m", fmt.Sprint(v), req)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if gv, sum := res.Lineage(); gv != fmt.Sprint(v) || sum != got[i].SHA256 {
			t.Fatalf("version %d answered as %s/%s, publisher %d got sha %s", v, gv, sum, i, got[i].SHA256)
		}
	}
}

// TestAliasFlipUnderLoad: while prod flips between v1 and v2 every 50 ms,
// every answer through prod carries exactly v1's or v2's lineage.
func TestAliasFlipUnderLoad(t *testing.T) {
	s := testserver.Start(t, "file://"+t.TempDir())
	c := tenantClient(t, s, "flip")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := map[string]string{}
	for i := 1; i <= 2; i++ {
		a := artifact(t, int64(i))
		pm, err := c.PushModel(ctx, "m", bytes.NewReader(a), int64(len(a)), nil)
		if err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprint(pm.Version)] = pm.SHA256
	}
	if _, err := c.SetAlias(ctx, "m", "prod", client.Alias{Version: 1}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var answers, bad atomic.Int64
	var seenV [3]atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &client.InferRequest{Inputs: []client.InferInput{{Name: "input", Shape: []int64{1, 784}, Datatype: "FP32", Data: make([]float32, 784)}}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.Infer(ctx, "m", "prod", req)
				if err != nil {
					t.Errorf("infer through prod: %v", err)
					bad.Add(1)
					return
				}
				v, sum := res.Lineage()
				if want[v] == "" || want[v] != sum {
					t.Errorf("mixed lineage: version %q sha %q", v, sum)
					bad.Add(1)
					return
				}
				if v == "1" {
					seenV[1].Add(1)
				} else {
					seenV[2].Add(1)
				}
				answers.Add(1)
			}
		}()
	}
	for i := 0; i < 30; i++ {
		time.Sleep(50 * time.Millisecond)
		if _, err := c.SetAlias(ctx, "m", "prod", client.Alias{Version: 2 - i%2}); err != nil {
			t.Errorf("flip %d: %v", i, err)
			break
		}
	}
	close(stop)
	wg.Wait()
	if seenV[1].Load() == 0 || seenV[2].Load() == 0 {
		t.Errorf("the flips were not observed: v1 %d answers, v2 %d", seenV[1].Load(), seenV[2].Load())
	}
	t.Logf("%d answers through a flipping alias (v1 %d, v2 %d), %d bad", answers.Load(), seenV[1].Load(), seenV[2].Load(), bad.Load())
}
