package evaluation

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := func() Request {
		return Request{Candidates: []Candidate{{Model: "mnist", Version: "prod"}, {Model: "mnist-cnn", Version: "3"}}, Dataset: "digits"}
	}
	neg := -1.0
	for i, tc := range []struct {
		mutate func(*Request)
		want   string // "" for valid
	}{
		{func(r *Request) {}, ""},
		{func(r *Request) { r.Candidates = nil }, "candidates"},
		{func(r *Request) { r.Candidates = slices.Repeat([]Candidate{{Model: "m"}}, MaxCandidates+1) }, "at most"},
		{func(r *Request) { r.Candidates = append(r.Candidates, Candidate{Model: "mnist", Version: "prod"}) }, "twice"},
		{func(r *Request) { r.Candidates[0].Model = "" }, "model"},
		{func(r *Request) { r.Dataset = "" }, "dataset"},
		{func(r *Request) { r.Task = "ranking" }, "task"},
		{func(r *Request) { r.Metrics = []string{"quality", "speed"} }, "unknown metric"},
		{func(r *Request) { r.Metrics = []string{"cost", "cost"} }, "twice"},
		{func(r *Request) { r.TopK = -2 }, "top_k"},
		{func(r *Request) { r.Limit = -1 }, "limit"},
		{func(r *Request) { r.Batches = []int{1, 0} }, "batch"},
		{func(r *Request) { r.Batches = []int{MaxBatch + 1} }, "batch"},
		{func(r *Request) { r.MemoryMB = 64 }, "memory_mb"},
		{func(r *Request) { r.PricePerGBSecond = -1 }, "price_per_gb_second"},
		{func(r *Request) { r.PricePerMillionRequests = &neg }, "price_per_million_requests"},
	} {
		r := ok()
		tc.mutate(&r)
		r.Defaults()
		err := r.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%d: %v", i, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%d: got %v, want an error naming %q", i, err, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	var r Request
	r.Defaults()
	if r.Task != TaskClassification || r.MemoryMB != 1024 || r.PricePerGBSecond != 0.0000133334 ||
		*r.PricePerMillionRequests != 0.20 || r.TopK != 5 || !slices.Equal(r.Batches, []int{1, 8, 32, 128}) {
		t.Errorf("defaults: %+v", r)
	}
	zero := 0.0
	r = Request{PricePerMillionRequests: &zero, Batches: []int{64, 8, 8}, Metrics: []string{MetricCost}}
	r.Defaults()
	if *r.PricePerMillionRequests != 0 {
		t.Error("an explicit price of 0 per million requests was replaced")
	}
	if got := r.TimedBatches(); !slices.Equal(got, []int{1, 8, 64}) {
		t.Errorf("timed batches %v", got)
	}
	if !r.Wants(MetricLatency) || r.Wants(MetricQuality) {
		t.Error("cost must bring latency, and only what was asked")
	}
}

// A 3-class tally checked by hand.
func TestClassTally(t *testing.T) {
	tl, err := NewClassTally(3, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		scores []float32
		label  int
	}{
		{[]float32{0.8, 0.1, 0.1}, 0}, // right
		{[]float32{0.6, 0.3, 0.1}, 1}, // wrong (0), top-2 right
		{[]float32{0.1, 0.7, 0.2}, 1}, // right
		{[]float32{0.5, 0.4, 0.1}, 2}, // wrong (0), not in top 2
		{[]float32{0.2, 0.2, 0.6}, 2}, // right
		{[]float32{0.3, 0.3, 0.4}, 0}, // wrong (2); tie for second: top-2 counts it
	}
	for _, r := range rows {
		tl.AddClass(r.scores, r.label)
	}
	c := tl.Classification([]string{"a", "b", "c"})
	if c.Rows != 6 || c.Accuracy != 0.5 || c.TopK != 2 || math.Abs(c.TopKAccuracy-5.0/6) > 1e-12 {
		t.Errorf("accuracy %v top-%d %v over %d", c.Accuracy, c.TopK, c.TopKAccuracy, c.Rows)
	}
	want := [][]int{{1, 0, 1}, {1, 1, 0}, {1, 0, 1}}
	for i := range want {
		if !slices.Equal(c.ConfusionMatrix[i], want[i]) {
			t.Fatalf("confusion %v, want %v", c.ConfusionMatrix, want)
		}
	}
	// Class 0: predicted 3 times, right once; 2 rows, 1 found.
	p0 := c.PerClass[0]
	if p0.Name != "a" || p0.Support != 2 || math.Abs(p0.Precision-1.0/3) > 1e-12 || p0.Recall != 0.5 || math.Abs(p0.F1-0.4) > 1e-12 {
		t.Errorf("class 0: %+v", p0)
	}
	if p1 := c.PerClass[1]; p1.Precision != 1 || p1.Recall != 0.5 {
		t.Errorf("class 1: %+v", p1)
	}
	wantMacro := (0.4 + 2.0/3 + 0.5) / 3
	if math.Abs(c.MacroF1-wantMacro) > 1e-12 {
		t.Errorf("macro F1 %v, want %v", c.MacroF1, wantMacro)
	}
	if _, err := NewClassTally(10, 3, 5); err == nil {
		t.Error("3 outputs for 10 classes accepted")
	}
}

func TestManyClassesNoDetail(t *testing.T) {
	tl, _ := NewClassTally(MaxDetailedClasses+1, MaxDetailedClasses+1, 5)
	s := make([]float32, MaxDetailedClasses+1)
	s[3] = 1
	tl.AddClass(s, 3)
	c := tl.Classification(nil)
	if c.Accuracy != 1 || c.ConfusionMatrix != nil || c.PerClass != nil {
		t.Errorf("%+v", c)
	}
}

func TestRegressionTally(t *testing.T) {
	tl := NewRegressionTally()
	for _, p := range [][2]float32{{1, 2}, {3, 1}, {0, 0}} {
		tl.AddRegression(p[0], p[1])
	}
	r := tl.Regression()
	if r.Rows != 3 || math.Abs(r.MSE-5.0/3) > 1e-12 || math.Abs(r.MAE-1) > 1e-12 {
		t.Errorf("%+v", r)
	}
}

func TestEstimate(t *testing.T) {
	// 1.2 ms is billed 2 ms: 0.002 s × 1 GB × 0.0000133334 $ a million
	// times is 0.0266668 $, plus 0.20 $ of requests.
	c := Estimate(1_200_000, 4_000_000, 32, 1024, DefaultPricePerGBSecond, DefaultPricePerMillionRequests)
	if c.BilledMS != 2 || math.Abs(c.PerMillionRequestsUSD-0.2266668) > 1e-12 {
		t.Errorf("batch 1: %+v", c)
	}
	// 32 rows in 4 ms (billed 4): (0.004 × 0.0000133334 + 0.2e-6) / 32 a row.
	if want := 1e6 * (0.004*DefaultPricePerGBSecond + 0.2e-6) / 32; math.Abs(c.PerMillionRowsBatchedUSD-want) > 1e-9 {
		t.Errorf("batched %v, want %v", c.PerMillionRowsBatchedUSD, want)
	}
	// A sub-millisecond call is billed the 1 ms minimum; memory scales it.
	c = Estimate(10_000, 10_000, 1, 2048, 0.00001, 0)
	if c.BilledMS != 1 || math.Abs(c.PerMillionRequestsUSD-0.02) > 1e-12 {
		t.Errorf("minimum: %+v", c)
	}
}

// FuzzRequest: whatever the bytes, decoding and validating never panics,
// and an accepted request is within every documented bound.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"candidates":[{"model":"mnist","version":"prod"},{"model":"mnist-cnn","version":"3"}],"dataset":"mnist-test"}`))
	f.Add([]byte(`{"candidates":[{"model":"m"}],"dataset":"d","metrics":["cost"],"batches":[1024,1],"memory_mb":10240,"price_per_gb_second":0.5,"price_per_million_requests":0}`))
	f.Add([]byte(`{"candidates":[],"dataset":""}`))
	f.Add([]byte(`{"candidates":[{"model":"m"}],"dataset":"d","top_k":-1,"limit":-5,"batches":[0]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if json.Unmarshal(b, &r) != nil {
			return
		}
		r.Defaults()
		if r.Validate() != nil {
			return
		}
		if len(r.Candidates) < 1 || len(r.Candidates) > MaxCandidates || r.Dataset == "" ||
			r.MemoryMB < MinMemoryMB || r.MemoryMB > MaxMemoryMB || r.TopK < 1 || r.Limit < 0 ||
			!(r.PricePerGBSecond > 0) || *r.PricePerMillionRequests < 0 {
			t.Fatalf("accepted out of bounds: %+v", r)
		}
		tb := r.TimedBatches()
		if tb[0] != 1 || len(tb) > MaxBatches+1 || tb[len(tb)-1] > MaxBatch {
			t.Fatalf("timed batches %v", tb)
		}
		c := Estimate(1, 1, 1, r.MemoryMB, r.PricePerGBSecond, *r.PricePerMillionRequests)
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("cost does not encode: %v", err)
		}
	})
}
