// Package evaluation is what an evaluation job computes: the request and
// its limits, the quality of a model's outputs over a labelled dataset
// (classification and regression), and the estimated cost of serving it
// on AWS Lambda.
//
// # Overview
//
// The platform (platform/evaluations.go) loads the dataset and the
// candidate models, runs them and hands the outputs here, row by row, to a
// [Tally]; it also times them with nn/nnbench. This package never loads
// models, reads storage or measures time: it is plain arithmetic over
// what it is given, so its results are reproducible and testable alone.
//
// A [Request] comes from a tenant: decode it, call [Request.Defaults] and
// then [Request.Validate] before it reaches anything else.
package evaluation

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Candidate names one model version to evaluate: a version number, an
// alias or "" (the latest), as everywhere else.
type Candidate struct {
	Model   string `json:"model"`
	Version string `json:"version,omitempty"`
}

// Request is the body of POST /v1/evaluations.
type Request struct {
	Candidates []Candidate `json:"candidates"`
	// Dataset is a labelled dataset uploaded with PUT /v1/datasets, or
	// "mnist" (the built-in MNIST test set, where the server has it).
	Dataset string `json:"dataset"`
	// Task is "classification" (the default: labels are classes) or
	// "regression" (a CSV whose last column is a number).
	Task string `json:"task,omitempty"`
	// Metrics selects what is measured: any of "quality", "latency",
	// "memory", "cost" (default all). Cost needs latency, which is then
	// measured too.
	Metrics []string `json:"metrics,omitempty"`
	// TopK is the k of top-k accuracy (default 5, capped at the classes).
	TopK int `json:"top_k,omitempty"`
	// Limit evaluates only the first Limit rows (default all).
	Limit int `json:"limit,omitempty"`
	// Batches are the batch sizes timed; the one with the best
	// throughput is reported (default 1, 8, 32, 128; 1 is always timed).
	Batches []int `json:"batches,omitempty"`
	// MemoryMB is the Lambda function's configured memory for the cost
	// estimate (default 1024).
	MemoryMB int `json:"memory_mb,omitempty"`
	// PricePerGBSecond and PricePerMillionRequests are Lambda's prices in
	// USD (defaults: the AWS arm64 list prices, see the constants).
	PricePerGBSecond        float64  `json:"price_per_gb_second,omitempty"`
	PricePerMillionRequests *float64 `json:"price_per_million_requests,omitempty"`
}

// Tasks and metric groups.
const (
	TaskClassification = "classification"
	TaskRegression     = "regression"

	MetricQuality = "quality"
	MetricLatency = "latency"
	MetricMemory  = "memory"
	MetricCost    = "cost"
)

// Defaults and limits. The prices are AWS Lambda's published list prices
// for arm64 (us-east-1, first pricing tier) when this was written; they
// are parameters of every request, not facts the server checks.
const (
	DefaultPricePerGBSecond        = 0.0000133334
	DefaultPricePerMillionRequests = 0.20
	DefaultMemoryMB                = 1024
	MinMemoryMB                    = 128
	MaxMemoryMB                    = 10240
	DefaultTopK                    = 5
	MaxCandidates                  = 8
	MaxBatches                     = 8
	MaxBatch                       = 1024
	// MaxDetailedClasses bounds the classes for which per-class metrics
	// and the confusion matrix are reported (the record stays small).
	MaxDetailedClasses = 100
)

// DefaultBatches are the batch sizes timed when a request names none.
var DefaultBatches = []int{1, 8, 32, 128}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("evaluation: invalid request")

// Defaults fills the zero fields.
func (r *Request) Defaults() {
	if r.Task == "" {
		r.Task = TaskClassification
	}
	if len(r.Metrics) == 0 {
		r.Metrics = []string{MetricQuality, MetricLatency, MetricMemory, MetricCost}
	}
	if r.TopK == 0 {
		r.TopK = DefaultTopK
	}
	if len(r.Batches) == 0 {
		r.Batches = slices.Clone(DefaultBatches)
	}
	if r.MemoryMB == 0 {
		r.MemoryMB = DefaultMemoryMB
	}
	if r.PricePerGBSecond == 0 {
		r.PricePerGBSecond = DefaultPricePerGBSecond
	}
	if r.PricePerMillionRequests == nil {
		p := DefaultPricePerMillionRequests
		r.PricePerMillionRequests = &p
	}
}

// Validate checks r after Defaults. Model and dataset names are checked
// again by the platform (and the store).
func (r *Request) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case len(r.Candidates) == 0:
		return bad(`"candidates" is required: [{"model": "mnist", "version": "prod"}, …]`)
	case len(r.Candidates) > MaxCandidates:
		return bad("at most %d candidates", MaxCandidates)
	case r.Dataset == "":
		return bad(`"dataset" is required`)
	case r.Task != TaskClassification && r.Task != TaskRegression:
		return bad(`task must be "classification" or "regression"`)
	case r.TopK < 1 || r.TopK > MaxDetailedClasses:
		return bad("top_k must be between 1 and %d", MaxDetailedClasses)
	case r.Limit < 0:
		return bad("limit must not be negative")
	case len(r.Batches) > MaxBatches:
		return bad("at most %d batch sizes", MaxBatches)
	case r.MemoryMB < MinMemoryMB || r.MemoryMB > MaxMemoryMB:
		return bad("memory_mb must be between %d and %d (Lambda's range)", MinMemoryMB, MaxMemoryMB)
	case !(r.PricePerGBSecond > 0 && r.PricePerGBSecond < 1):
		return bad("price_per_gb_second must be in (0, 1) USD")
	case r.PricePerMillionRequests == nil || !(*r.PricePerMillionRequests >= 0 && *r.PricePerMillionRequests <= 1000):
		return bad("price_per_million_requests must be in [0, 1000] USD")
	}
	seen := map[Candidate]bool{}
	for i, c := range r.Candidates {
		switch {
		case c.Model == "":
			return bad("candidate %d: \"model\" is required", i)
		case len(c.Model) > 128 || len(c.Version) > 64:
			return bad("candidate %d: name too long", i)
		case seen[c]:
			return bad("candidate %d (%s:%s) is listed twice", i, c.Model, orLatest(c.Version))
		}
		seen[c] = true
	}
	for _, b := range r.Batches {
		if b < 1 || b > MaxBatch {
			return bad("batch sizes must be between 1 and %d", MaxBatch)
		}
	}
	known := []string{MetricQuality, MetricLatency, MetricMemory, MetricCost}
	for i, m := range r.Metrics {
		if !slices.Contains(known, m) {
			return bad("unknown metric %q: use %s", truncate(m, 32), strings.Join(known, ", "))
		}
		if slices.Contains(r.Metrics[:i], m) {
			return bad("metric %q is listed twice", m)
		}
	}
	return nil
}

// Wants reports whether metric group m is measured.
func (r *Request) Wants(m string) bool {
	if m == MetricLatency && slices.Contains(r.Metrics, MetricCost) {
		return true
	}
	return slices.Contains(r.Metrics, m)
}

// TimedBatches is the sorted, deduplicated batch sizes to time, 1 always
// among them.
func (r *Request) TimedBatches() []int {
	out := append([]int{1}, r.Batches...)
	slices.Sort(out)
	return slices.Compact(out)
}

func orLatest(v string) string {
	if v == "" {
		return "latest"
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Classification is a classifier's quality over a dataset. The predicted
// class of a row is the index of its largest output.
type Classification struct {
	Rows         int     `json:"rows"`
	Accuracy     float64 `json:"accuracy"`
	TopK         int     `json:"top_k"`
	TopKAccuracy float64 `json:"top_k_accuracy"`
	// MacroF1 is the unweighted mean of the per-class F1 scores over the
	// classes the dataset has.
	MacroF1 float64 `json:"macro_f1"`
	// PerClass and ConfusionMatrix are reported up to MaxDetailedClasses
	// model outputs. ConfusionMatrix[i][j] counts rows of true class i
	// predicted as j; it is outputs × outputs, and its cells sum to Rows.
	PerClass        []ClassMetrics `json:"per_class,omitempty"`
	ConfusionMatrix [][]int        `json:"confusion_matrix,omitempty"`
}

// ClassMetrics is one class's precision, recall and F1 (0 where
// undefined: no predictions, or no rows of the class).
type ClassMetrics struct {
	Class     int     `json:"class"`
	Name      string  `json:"name,omitempty"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"` // rows of this class
}

// Regression is a regression model's quality over a dataset.
type Regression struct {
	Rows int     `json:"rows"`
	MSE  float64 `json:"mse"`
	MAE  float64 `json:"mae"`
}

// Tally accumulates a model's outputs row by row. It is not goroutine-safe.
type Tally struct {
	task    string
	classes int // classes of the dataset
	outputs int // outputs of the model per row
	k       int
	rows    int
	hits    int
	topHits int
	conf    []int // outputs × outputs
	sqErr   float64
	absErr  float64
}

// NewClassTally counts a classifier with outputs scores per row over a
// dataset of classes classes (outputs >= classes >= 1), top-k with k capped
// at outputs.
func NewClassTally(classes, outputs, k int) (*Tally, error) {
	if classes < 1 || outputs < classes || outputs < 2 || k < 1 {
		return nil, fmt.Errorf("evaluation: %d outputs for %d classes", outputs, classes)
	}
	t := &Tally{task: TaskClassification, classes: classes, outputs: outputs, k: min(k, outputs)}
	if outputs <= MaxDetailedClasses {
		t.conf = make([]int, outputs*outputs)
	}
	return t, nil
}

// NewRegressionTally counts a model with one output per row.
func NewRegressionTally() *Tally { return &Tally{task: TaskRegression, outputs: 1} }

// AddClass counts one row: its scores (len outputs) and its true label.
func (t *Tally) AddClass(scores []float32, label int) {
	pred := 0
	for i, v := range scores {
		if v > scores[pred] {
			pred = i
		}
	}
	t.rows++
	if pred == label {
		t.hits++
	}
	// Top-k: the label is among the k largest when fewer than k scores
	// beat it (ties count for the label).
	if label >= 0 && label < len(scores) {
		above := 0
		for _, v := range scores {
			if v > scores[label] {
				above++
			}
		}
		if above < t.k {
			t.topHits++
		}
	}
	if t.conf != nil && label >= 0 && label < t.outputs {
		t.conf[label*t.outputs+pred]++
	}
}

// AddRegression counts one row's prediction and target.
func (t *Tally) AddRegression(pred, target float32) {
	d := float64(pred) - float64(target)
	t.rows++
	t.sqErr += d * d
	t.absErr += math.Abs(d)
}

// Rows is the rows counted so far.
func (t *Tally) Rows() int { return t.rows }

// Classification returns the classifier's metrics; names, when given,
// name the classes.
func (t *Tally) Classification(names []string) Classification {
	c := Classification{Rows: t.rows, TopK: t.k}
	if t.rows == 0 {
		return c
	}
	c.Accuracy = float64(t.hits) / float64(t.rows)
	c.TopKAccuracy = float64(t.topHits) / float64(t.rows)
	if t.conf == nil {
		return c
	}
	n := t.outputs
	c.ConfusionMatrix = make([][]int, n)
	for i := range n {
		c.ConfusionMatrix[i] = t.conf[i*n : (i+1)*n : (i+1)*n]
	}
	var f1s float64
	for i := range n {
		var tp, predicted, actual int
		tp = t.conf[i*n+i]
		for j := range n {
			predicted += t.conf[j*n+i]
			actual += t.conf[i*n+j]
		}
		m := ClassMetrics{Class: i, Support: actual}
		if i < len(names) {
			m.Name = names[i]
		}
		if predicted > 0 {
			m.Precision = float64(tp) / float64(predicted)
		}
		if actual > 0 {
			m.Recall = float64(tp) / float64(actual)
		}
		if m.Precision+m.Recall > 0 {
			m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
		}
		if i < t.classes {
			f1s += m.F1
		}
		c.PerClass = append(c.PerClass, m)
	}
	c.MacroF1 = f1s / float64(t.classes)
	return c
}

// Regression returns the regression metrics.
func (t *Tally) Regression() Regression {
	r := Regression{Rows: t.rows}
	if t.rows > 0 {
		r.MSE, r.MAE = t.sqErr/float64(t.rows), t.absErr/float64(t.rows)
	}
	return r
}

// Cost is the estimated cost of serving a model on AWS Lambda, from its
// measured forward-pass time: a request is billed its duration rounded up
// to the next millisecond × the configured memory × the price per
// GB-second, plus the price per request. It leaves out what a real
// request adds (HTTP, decoding, plugins, a cold start).
type Cost struct {
	MemoryMB                int     `json:"memory_mb"`
	PricePerGBSecond        float64 `json:"price_per_gb_second"`
	PricePerMillionRequests float64 `json:"price_per_million_requests"`
	// BilledMS is what Lambda bills per request at batch 1: the median
	// forward-pass time rounded up to a whole millisecond.
	BilledMS float64 `json:"billed_ms_per_request"`
	// PerMillionRequestsUSD is the cost of a million batch-1 requests.
	PerMillionRequestsUSD float64 `json:"per_million_requests_usd"`
	// PerMillionRowsBatchedUSD is the cost of a million rows sent in
	// requests of BestBatch rows each.
	BestBatch                int     `json:"best_batch"`
	PerMillionRowsBatchedUSD float64 `json:"per_million_rows_batched_usd"`
}

// Estimate computes a Cost from the median time of one request at batch 1
// and of one request of bestBatch rows.
func Estimate(batch1NS, bestNS int64, bestBatch, memoryMB int, perGBSecond, perMillion float64) Cost {
	billed := func(ns int64) float64 { return max(1, math.Ceil(float64(ns)/1e6)) }
	gb := float64(memoryMB) / 1024
	perReq := func(ns int64) float64 { return billed(ns)/1000*gb*perGBSecond + perMillion/1e6 }
	c := Cost{MemoryMB: memoryMB, PricePerGBSecond: perGBSecond, PricePerMillionRequests: perMillion,
		BilledMS: billed(batch1NS), PerMillionRequestsUSD: 1e6 * perReq(batch1NS), BestBatch: bestBatch}
	if bestBatch >= 1 {
		c.PerMillionRowsBatchedUSD = 1e6 * perReq(bestNS) / float64(bestBatch)
	}
	return c
}

// Candidate statuses in a [Result].
const (
	StatusPending      = "pending"
	StatusOK           = "ok"
	StatusIncompatible = "incompatible" // its signature does not fit the dataset; see Reason
	StatusFailed       = "failed"       // it ran and failed (e.g. non-finite outputs); see Reason
	StatusSkipped      = "skipped"      // the evaluation was canceled or failed before it
)

// Result is one candidate's outcome.
type Result struct {
	Model           string `json:"model"`
	Version         string `json:"version"` // as asked: a number, an alias or "" (latest)
	ResolvedVersion int    `json:"resolved_version"`
	SHA256          string `json:"sha256"`
	Architecture    string `json:"architecture,omitempty"` // dense or graph
	Status          string `json:"status"`
	Reason          string `json:"reason,omitempty"`
	ArtifactBytes   int64  `json:"artifact_bytes"`

	Classification *Classification `json:"classification,omitempty"`
	Regression     *Regression     `json:"regression,omitempty"`
	Latency        *Latency        `json:"latency,omitempty"`
	Memory         *Memory         `json:"memory,omitempty"`
	Cost           *Cost           `json:"cost,omitempty"`
	// QualitySeconds is the wall time of the pass over the dataset.
	QualitySeconds float64 `json:"quality_seconds,omitempty"`
}

// Latency is a model's forward-pass time, per request at batch 1 and at
// the timed batch size with the highest throughput.
type Latency struct {
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	// RowsPerSecond is the throughput at batch 1 (1 / median).
	RowsPerSecond float64 `json:"rows_per_second"`
	BestBatch     int     `json:"best_batch"`
	BestP50MS     float64 `json:"best_batch_p50_ms"`
	BestP99MS     float64 `json:"best_batch_p99_ms"`
	// BestRowsPerSecond is the throughput at BestBatch (rows / median).
	BestRowsPerSecond float64        `json:"best_rows_per_second"`
	Batches           []BatchLatency `json:"batches"`
}

// BatchLatency is one timed batch size.
type BatchLatency struct {
	Batch         int     `json:"batch"`
	P50MS         float64 `json:"p50_ms"`
	P99MS         float64 `json:"p99_ms"`
	Calls         int     `json:"calls"`
	RowsPerSecond float64 `json:"rows_per_second"`
}

// Memory is what serving the model holds.
type Memory struct {
	// ModelBytes is the model's own estimate of what it holds once
	// loaded: its weights and its working buffers, the figure the
	// server's model cache budgets with (not a heap measurement).
	ModelBytes int64 `json:"model_bytes"`
	// PeakWorkingBytes is measured: the most the process's heap grew
	// above its live size when the candidate's runs began (its model
	// already loaded; measured right after a collection), sampled every millisecond through the quality and timing
	// runs — the activations and buffers its forward passes needed.
	// Process-wide: other work in the same process adds to it (the Lambda
	// train function runs an evaluation alone).
	PeakWorkingBytes int64  `json:"peak_working_bytes"`
	Source           string `json:"source"`
}
