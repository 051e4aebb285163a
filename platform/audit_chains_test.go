package platform_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/aiaas/aiaas/platform"
)

// A server's single chain and two chains of other writers (Lambda
// environments) on one store: GET /v1/audit merges them by time and pages
// them with next_cursor, after still pages the single chain, and
// /v1/audit/verify lists every chain.
func TestAuditChainsOverHTTP(t *testing.T) {
	dir := "file://" + t.TempDir()
	srv := newEnvOn(t, dir, nil)
	key := srv.tenant("acme")
	srv.publish(key, "clf", 1)
	envs := []*env{
		newEnvWith(t, &dir, func(o *platform.Options) { o.AuditChain = "20261205T100000Z-infer-aa" }),
		newEnvWith(t, &dir, func(o *platform.Options) { o.AuditChain = "20261205T100001Z-infer-bb" }),
	}
	const each = 5
	for i := range each {
		for _, e := range envs {
			if r := e.do("POST", "/v2/models/clf/infer", key, inferBody(1)); r.status != 200 {
				t.Fatalf("infer %d: %d %s", i, r.status, r.body)
			}
			if err := e.srv.FlushAudit(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	type page struct {
		Records []struct {
			Seq    uint64 `json:"seq"`
			Action string `json:"action"`
			Chain  string `json:"chain"`
		} `json:"records"`
		NextAfter  uint64 `json:"next_after"`
		NextCursor string `json:"next_cursor"`
	}
	perChain := map[string]int{}
	cursor := ""
	for range 20 {
		q := "/v1/audit?limit=4"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := srv.do("GET", q, key, nil)
		var p page
		if r.status != 200 || json.Unmarshal(r.body, &p) != nil || p.NextCursor == "" {
			t.Fatalf("page: %d %s", r.status, r.body)
		}
		if len(p.Records) == 0 {
			break
		}
		for _, rec := range p.Records {
			if rec.Action == "infer" {
				perChain[rec.Chain]++
			}
		}
		cursor = p.NextCursor
	}
	if perChain["20261205T100000Z-infer-aa"] != each || perChain["20261205T100001Z-infer-bb"] != each || perChain[""] != 0 {
		t.Fatalf("infer records per chain: %v", perChain)
	}
	// after pages the server's own chain alone, as before.
	r := srv.do("GET", "/v1/audit?after=1&limit=1000", key, nil)
	var p page
	if r.status != 200 || json.Unmarshal(r.body, &p) != nil || len(p.Records) == 0 || p.NextCursor != "" {
		t.Fatalf("after: %d %s", r.status, r.body)
	}
	for _, rec := range p.Records {
		if rec.Chain != "" || rec.Action == "infer" {
			t.Fatalf("after=1 read %+v from another chain", rec)
		}
	}
	if r := srv.do("GET", "/v1/audit?cursor=nonsense", key, nil); r.status != 400 {
		t.Errorf("bad cursor: %d %s", r.status, r.body)
	}
	if r := srv.do("GET", "/v1/audit?after=1&cursor=1.x.1", key, nil); r.status != 400 {
		t.Errorf("after and cursor: %d %s", r.status, r.body)
	}
	v := srv.do("GET", "/v1/audit/verify", key, nil)
	var res struct {
		OK     bool `json:"ok"`
		Chains []struct {
			ID      string `json:"id"`
			Records int    `json:"records"`
			OK      bool   `json:"ok"`
		} `json:"chains"`
	}
	if v.status != 200 || json.Unmarshal(v.body, &res) != nil || !res.OK || len(res.Chains) != 3 ||
		res.Chains[0].ID != "" || res.Chains[1].Records != each || res.Chains[2].Records != each {
		t.Fatalf("verify: %d %s", v.status, v.body)
	}
}
