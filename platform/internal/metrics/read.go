package metrics

// TenantSeries is a tenant's own request series, as GET /v1/metrics
// returns them for the console's charts. It holds only the caller's
// labels: a tenant never sees another tenant's model names.
type TenantSeries struct {
	Requests []RequestSeries `json:"requests"`
	Latency  []LatencySeries `json:"latency"`
}

// RequestSeries is one aiaas_requests_total series of a tenant.
type RequestSeries struct {
	Action string  `json:"action"`
	Model  string  `json:"model,omitempty"`
	Status string  `json:"status"`
	Count  float64 `json:"count"`
}

// LatencySeries is one aiaas_request_duration_seconds histogram of a
// tenant.
type LatencySeries struct {
	Action  string   `json:"action"`
	Model   string   `json:"model,omitempty"`
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum_seconds"`
	Buckets []Bucket `json:"buckets"`
}

// Bucket is one cumulative histogram bucket: Count observations were at
// most LE.
type Bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// Tenant returns tenant's request series, read from the registry as a
// scrape would see them.
func (m *Metrics) Tenant(tenant string) (*TenantSeries, error) {
	fams, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	out := &TenantSeries{Requests: []RequestSeries{}, Latency: []LatencySeries{}}
	for _, f := range fams {
		switch f.GetName() {
		case "aiaas_requests_total", "aiaas_request_duration_seconds":
		default:
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, lp := range mt.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["tenant"] != tenant {
				continue
			}
			if c := mt.GetCounter(); c != nil {
				out.Requests = append(out.Requests, RequestSeries{Action: labels["action"], Model: labels["model"], Status: labels["status"], Count: c.GetValue()})
			}
			if h := mt.GetHistogram(); h != nil {
				ls := LatencySeries{Action: labels["action"], Model: labels["model"], Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
				for _, b := range h.GetBucket() {
					ls.Buckets = append(ls.Buckets, Bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
				}
				out.Latency = append(out.Latency, ls)
			}
		}
	}
	return out, nil
}

// CanarySide is what the forward passes through one side of a split alias
// did since the process started: Requests passes, Errors of them failed,
// and their latency as a cumulative histogram (Buckets, over Count
// observations; bounds in seconds).
type CanarySide struct {
	Requests, Errors uint64
	Count            uint64
	Buckets          []Bucket
}

// Canary returns the counts of one side ("primary" or "canary") of
// tenant's alias of model, from the series [Metrics.Forward] feeds. The
// model name is bounded as there, so a model past the tenant's bound reads
// the shared "_other" series.
func (m *Metrics) Canary(tenant, model, alias, side string) (CanarySide, error) {
	model = m.models.label(tenant, model)
	var out CanarySide
	fams, err := m.reg.Gather()
	if err != nil {
		return out, err
	}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["tenant"] != tenant || l["model"] != model || l["alias"] != alias || l["side"] != side {
				continue
			}
			switch f.GetName() {
			case "aiaas_canary_requests_total":
				n := uint64(mt.GetCounter().GetValue())
				out.Requests += n
				if l["outcome"] == "error" {
					out.Errors += n
				}
			case "aiaas_canary_duration_seconds":
				h := mt.GetHistogram()
				out.Count, out.Buckets = h.GetSampleCount(), nil
				for _, b := range h.GetBucket() {
					out.Buckets = append(out.Buckets, Bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
				}
			}
		}
	}
	return out, nil
}
