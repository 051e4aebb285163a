package platform

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/aiaas/aiaas/platform/internal/metrics"
)

// Canary analysis: for an alias that splits traffic (canary_version,
// canary_weight), compare what its two sides did — requests, error rate,
// forward-pass latency — and give a plain verdict. The figures are this
// process's counters (aiaas_canary_* since the process started); on Lambda,
// where each environment counts its own, the route answers 404 like the
// other metrics routes. Accuracy needs labelled requests, which the
// platform does not take yet: it is reported as null.

// Canary verdicts.
const (
	verdictInsufficient = "insufficient data"
	verdictPromote      = "promote"
	verdictRollBack     = "roll back"
)

type canarySide struct {
	Version   int      `json:"version"`
	Requests  uint64   `json:"requests"`
	Errors    uint64   `json:"errors"`
	ErrorRate float64  `json:"error_rate"`
	P50MS     *float64 `json:"p50_ms"`
	P99MS     *float64 `json:"p99_ms"`
	Accuracy  *float64 `json:"accuracy"` // null: requests carry no labels yet
}

type canaryReport struct {
	Model        string     `json:"model"`
	Alias        string     `json:"alias"`
	CanaryWeight int        `json:"canary_weight"`
	Primary      canarySide `json:"primary"`
	Canary       canarySide `json:"canary"`
	Verdict      string     `json:"verdict"`
	Reasons      []string   `json:"reasons"`
	Criteria     struct {
		MinRequests     int     `json:"min_requests"`
		MaxLatencyRatio float64 `json:"max_latency_ratio"`
		Confidence      string  `json:"error_rate_confidence"`
	} `json:"criteria"`
	Source string `json:"source"`
}

func (s *Server) handleCanary(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	model, alias := r.PathValue("model"), r.PathValue("alias")
	if err := checkName("model", model); err != nil {
		return err
	}
	if !aliasRE.MatchString(alias) {
		return httpErr(http.StatusBadRequest, "invalid alias %q", truncate(alias, 40))
	}
	minReq, ratio := 100, 1.2
	q := r.URL.Query()
	if v := q.Get("min_requests"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return httpErr(http.StatusBadRequest, "min_requests must be an integer from 1 to 1000000")
		}
		minReq = n
	}
	if v := q.Get("max_latency_ratio"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 1 && f <= 100) {
			return httpErr(http.StatusBadRequest, "max_latency_ratio must be a number from 1 to 100")
		}
		ratio = f
	}
	aliases, err := s.store.Aliases(r.Context(), p.Tenant, model)
	if err != nil {
		return notFoundAs(err, "model %q not found", model)
	}
	a, ok := aliases[alias]
	if !ok {
		return notFound("model %q has no alias %q", model, alias)
	}
	if a.CanaryVersion == 0 || a.CanaryWeight == 0 {
		return httpErr(http.StatusConflict, "alias %q of %q does not split traffic: set canary_version and canary_weight first", alias, model)
	}
	rep := canaryReport{Model: model, Alias: alias, CanaryWeight: a.CanaryWeight,
		Primary: canarySide{Version: a.Version}, Canary: canarySide{Version: a.CanaryVersion},
		Source: "this process's counters since " + s.started.UTC().Format(time.RFC3339) + " (forward passes through the alias)"}
	rep.Criteria.MinRequests, rep.Criteria.MaxLatencyRatio, rep.Criteria.Confidence = minReq, ratio, "95% (two-proportion z-test)"
	for _, side := range []*struct {
		name string
		out  *canarySide
	}{{"primary", &rep.Primary}, {"canary", &rep.Canary}} {
		c, err := s.metrics.Canary(p.Tenant, model, alias, side.name)
		if err != nil {
			return err
		}
		side.out.fill(c)
	}
	rep.Verdict, rep.Reasons = canaryVerdict(rep.Primary, rep.Canary, minReq, ratio)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// canaryVerdict: "insufficient data" until both sides have minReq requests;
// "roll back" when the canary's error rate is higher at 95% confidence or
// its p99 latency exceeds ratio times the primary's; else "promote".
func canaryVerdict(pri, can canarySide, minReq int, ratio float64) (string, []string) {
	if pri.Requests < uint64(minReq) || can.Requests < uint64(minReq) {
		return verdictInsufficient, []string{fmt.Sprintf("each side needs %d requests; primary has %d, canary %d", minReq, pri.Requests, can.Requests)}
	}
	var bad []string
	if z := twoProportionZ(can.Errors, can.Requests, pri.Errors, pri.Requests); can.ErrorRate > pri.ErrorRate && z > 1.96 {
		bad = append(bad, fmt.Sprintf("the canary fails more: error rate %.2f%% against %.2f%% (z = %.1f)", 100*can.ErrorRate, 100*pri.ErrorRate, z))
	}
	if pri.P99MS != nil && can.P99MS != nil && *can.P99MS > ratio**pri.P99MS {
		bad = append(bad, fmt.Sprintf("the canary is slower: p99 %.3g ms against %.3g ms (more than %.2g×)", *can.P99MS, *pri.P99MS, ratio))
	}
	if len(bad) > 0 {
		return verdictRollBack, bad
	}
	return verdictPromote, []string{fmt.Sprintf("error rate %.2f%% against %.2f%%, p99 within %.2g× of the primary's", 100*can.ErrorRate, 100*pri.ErrorRate, ratio)}
}

// twoProportionZ is the z statistic of p1 − p2 with a pooled proportion.
func twoProportionZ(x1, n1, x2, n2 uint64) float64 {
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	p := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0
	}
	return (p1 - p2) / se
}

// fill sets one side's counts and latency quantiles from the
// aiaas_canary_* series.
func (out *canarySide) fill(c metrics.CanarySide) {
	out.Requests, out.Errors = c.Requests, c.Errors
	if c.Buckets != nil {
		les, counts := make([]float64, len(c.Buckets)), make([]uint64, len(c.Buckets))
		for i, b := range c.Buckets {
			les[i], counts[i] = b.LE, b.Count
		}
		out.P50MS = quantileMS(les, counts, c.Count, 0.50)
		out.P99MS = quantileMS(les, counts, c.Count, 0.99)
	}
	if out.Requests > 0 {
		out.ErrorRate = float64(out.Errors) / float64(out.Requests)
	}
}

// quantileMS estimates a quantile from cumulative histogram buckets,
// linearly within the bucket it falls in (nil without samples; the top
// bucket's bound when it falls past the last one).
func quantileMS(les []float64, cum []uint64, total uint64, q float64) *float64 {
	if total == 0 || len(les) == 0 {
		return nil
	}
	rank := q * float64(total)
	lo, prev := 0.0, uint64(0)
	for i, le := range les {
		if float64(cum[i]) >= rank {
			in := float64(cum[i] - prev)
			frac := 1.0
			if in > 0 {
				frac = (rank - float64(prev)) / in
			}
			v := 1000 * (lo + frac*(le-lo))
			return &v
		}
		lo, prev = le, cum[i]
	}
	v := 1000 * les[len(les)-1]
	return &v
}
