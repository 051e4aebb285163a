package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/functions/internal/rietest"
)

// Four infer execution environments (four bootstraps under the emulator,
// each with the infer role's credentials on MinIO) serve one tenant at
// once, each writing its own audit chain after its responses. Afterwards
// the log verifies, every environment's chain is there, and it holds
// exactly one record per request: none lost, none duplicated.
func TestAuditChainsAcrossEnvironmentsUnderRIE(t *testing.T) {
	rietest.Require(t)
	adminEnv, inferEnv, _ := s3Env(t)
	// A short promise lease: an environment that stopped without closing
	// its audit log shows in verify by the time it runs (a second after
	// the last request, or more). Each closes it on SIGTERM, as Lambda
	// sends before it retires an environment with an extension.
	adminEnv = append(adminEnv, "AIAAS_AUDIT_PROMISE_LEASE=1s")
	inferEnv = append(inferEnv, "AIAAS_AUDIT_PROMISE_LEASE=1s")
	adminBootstrap := rietest.Build(t, "../admin")
	bootstrap := rietest.Build(t, ".")

	admin := rietest.Start(t, adminBootstrap, &rietest.Options{Env: adminEnv})
	body, _ := json.Marshal(map[string]string{"name": "acme"})
	r, _ := call(t, admin, v2Event("POST", "/v1/tenants", e2eAdminKey, body, "application/json"))
	var tenant struct {
		APIKey string `json:"api_key"`
	}
	if r.StatusCode != 201 || json.Unmarshal(r.bytes(), &tenant) != nil {
		t.Fatalf("create tenant: %d %s", r.StatusCode, r.bytes())
	}
	key := tenant.APIKey
	if r, _ := call(t, admin, v2Event("POST", "/v1/models/clf/versions", key, artifact(t), "application/octet-stream")); r.StatusCode != 201 {
		t.Fatalf("publish: %d %s", r.StatusCode, r.bytes())
	}
	admin.Stop()

	const envs, perEnv = 4, 12
	fns := make([]*rietest.Function, envs)
	for i := range fns {
		fns[i] = rietest.Start(t, bootstrap, &rietest.Options{Env: inferEnv})
	}
	inferReq, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{
		"name": "input", "shape": []int{1, 4}, "datatype": "FP32", "data": []float32{0.1, 0.2, 0.3, 0.4}}}})
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	var wg sync.WaitGroup
	for e, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perEnv {
				ev := v2Event("POST", "/v2/models/clf/infer", key, inferReq, "application/json")
				ev.Headers["x-request-id"] = fmt.Sprintf("chains-%s-%d-%d", run, e, i)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				raw, _, err := fn.Invoke(ctx, ev)
				cancel()
				var resp httpResp
				if err != nil || json.Unmarshal(raw, &resp) != nil || resp.StatusCode != 200 {
					t.Errorf("environment %d, request %d: %v %s\n%s", e, i, err, raw, fn.Logs())
					return
				}
			}
		}()
	}
	wg.Wait()
	// Reading the log writes to it (audit.read records): the read below
	// stops at a time after the requests and before the reads.
	end := time.Now().Truncate(time.Second).Add(2 * time.Second)
	chains := map[string]bool{}
	unclosed := 0
	for e, fn := range fns {
		fn.Stop()
		logs := fn.Logs()
		if !strings.Contains(logs, `"audit_after_response":true`) {
			t.Errorf("environment %d: the after-response extension did not register:\n%s", e, logs)
		}
		if !strings.Contains(logs, "shutdown: audit log closed") {
			unclosed++
		}
		if strings.Contains(logs, "audit flush failed") {
			t.Errorf("environment %d: an audit flush failed:\n%s", e, logs)
		}
		if i := strings.Index(logs, `"audit_chain":"`); i >= 0 {
			id, _, _ := strings.Cut(logs[i+len(`"audit_chain":"`):], `"`)
			chains[id] = true
		}
	}
	if t.Failed() {
		return
	}
	if len(chains) != envs {
		t.Fatalf("%d distinct audit chains in the environments' logs, want %d: %v", len(chains), envs, chains)
	}

	// Read it back through the admin function, as `aiaas audit verify`
	// and `aiaas audit list --all` do.
	time.Sleep(time.Until(end))
	admin = rietest.Start(t, adminBootstrap, &rietest.Options{Env: adminEnv})
	r, _ = call(t, admin, v2Event("GET", "/v1/audit/verify", key, nil, ""))
	var v struct {
		OK       bool     `json:"ok"`
		Records  int      `json:"records"`
		Problems []string `json:"problems"`
		Chains   []struct {
			ID      string `json:"id"`
			Records int    `json:"records"`
			OK      bool   `json:"ok"`
		} `json:"chains"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.bytes(), &v) != nil {
		t.Fatalf("verify: %d %s", r.StatusCode, r.bytes())
	}
	if !v.OK {
		t.Errorf("verify: not ok: %q", v.Problems)
	}
	if unclosed > 0 {
		t.Errorf("%d environments did not close their audit log on SIGTERM", unclosed)
	}
	for id := range chains {
		found := false
		for _, c := range v.Chains {
			if c.ID == id {
				found = true
				if !c.OK || c.Records != perEnv {
					t.Errorf("chain %s: %+v, want ok with %d records", id, c, perEnv)
				}
			}
		}
		if !found {
			t.Errorf("chain %s of an infer environment is not in verify's chains %+v", id, v.Chains)
		}
	}
	seen := map[string]int{}
	var prev time.Time
	cursor, pages := "", 0
	for ; pages < 20; pages++ {
		ev := v2Event("GET", "/v1/audit", key, nil, "")
		ev.RawQueryString = "limit=10&until=" + url.QueryEscape(end.UTC().Format(time.RFC3339))
		if cursor != "" {
			ev.RawQueryString += "&cursor=" + url.QueryEscape(cursor)
		}
		r, _ := call(t, admin, ev)
		var page struct {
			Records []struct {
				Time      time.Time `json:"time"`
				RequestID string    `json:"request_id"`
				Action    string    `json:"action"`
				Chain     string    `json:"chain"`
			} `json:"records"`
			NextCursor string `json:"next_cursor"`
		}
		if r.StatusCode != 200 || json.Unmarshal(r.bytes(), &page) != nil {
			t.Fatalf("read audit: %d %s", r.StatusCode, r.bytes())
		}
		if len(page.Records) == 0 {
			break
		}
		for _, rec := range page.Records {
			if rec.Time.Before(prev) {
				t.Errorf("record %+v before the one read ahead of it (%v): not merged by time", rec, prev)
			}
			prev = rec.Time
			if strings.HasPrefix(rec.RequestID, "chains-"+run+"-") {
				if rec.Action != "infer" || !chains[rec.Chain] {
					t.Errorf("record %+v: want action infer from one of the environments' chains", rec)
				}
				seen[rec.RequestID]++
			}
		}
		cursor = page.NextCursor
	}
	if pages == 20 {
		t.Errorf("the read did not end after 20 pages")
	}
	if len(seen) != envs*perEnv {
		t.Errorf("%d of %d requests have an audit record", len(seen), envs*perEnv)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("request %s has %d audit records", id, n)
		}
	}
	t.Logf("%d requests over %d environments: %d chains verified (%d records in the log), read back in %d pages of 10", envs*perEnv, envs, len(v.Chains), v.Records, pages)
}
