package client

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// EvaluationCandidate names a model version to evaluate: a version
// number, an alias or "" (the latest).
type EvaluationCandidate struct {
	Model   string `json:"model"`
	Version string `json:"version,omitempty"`
}

// EvaluationRequest is the body of POST /v1/evaluations; zero fields take
// the server's defaults (docs/evaluation.md).
type EvaluationRequest struct {
	Candidates []EvaluationCandidate `json:"candidates"`
	Dataset    string                `json:"dataset"`
	// Task is "classification" (default) or "regression".
	Task string `json:"task,omitempty"`
	// Metrics: any of "quality", "latency", "memory", "cost" (default all).
	Metrics []string `json:"metrics,omitempty"`
	TopK    int      `json:"top_k,omitempty"`
	Limit   int      `json:"limit,omitempty"`
	Batches []int    `json:"batches,omitempty"`
	// MemoryMB and the prices parameterise the Lambda cost estimate
	// (defaults 1024 MB, 0.0000133334 USD per GB-second and 0.20 USD per
	// million requests: AWS's arm64 list prices).
	MemoryMB                int      `json:"memory_mb,omitempty"`
	PricePerGBSecond        float64  `json:"price_per_gb_second,omitempty"`
	PricePerMillionRequests *float64 `json:"price_per_million_requests,omitempty"`
}

// Evaluation is an evaluation job's state and, once it has succeeded, its
// results, one per candidate in the order asked.
type Evaluation struct {
	ID       string              `json:"id"`
	Status   string              `json:"status"` // the Job* statuses
	Request  *EvaluationRequest  `json:"request,omitempty"`
	Dataset  *EvaluationDataset  `json:"dataset,omitempty"`
	Progress *EvaluationProgress `json:"progress,omitempty"`
	Results  []EvaluationResult  `json:"results"`
	Error    string              `json:"error,omitempty"`
	Created  time.Time           `json:"created,omitzero"`
	Started  *time.Time          `json:"started,omitempty"`
	Finished *time.Time          `json:"finished,omitempty"`
}

// Done reports whether the evaluation reached a final status.
func (e *Evaluation) Done() bool {
	return e.Status == JobSucceeded || e.Status == JobFailed || e.Status == JobCanceled
}

// EvaluationDataset is the data an evaluation ran on.
type EvaluationDataset struct {
	Name     string `json:"name"`
	Rows     int    `json:"rows"`
	Features int    `json:"features"`
	Classes  int    `json:"classes,omitempty"`
	Shape    []int  `json:"shape,omitempty"`
	Task     string `json:"task"`
}

// EvaluationProgress is where a running evaluation is.
type EvaluationProgress struct {
	Candidate  int    `json:"candidate"`
	Candidates int    `json:"candidates"`
	Model      string `json:"model"`
	Phase      string `json:"phase"`
	Rows       int    `json:"rows"`
	RowsTotal  int    `json:"rows_total"`
}

// Candidate statuses.
const (
	CandidateOK           = "ok"
	CandidateIncompatible = "incompatible"
	CandidateFailed       = "failed"
	CandidateSkipped      = "skipped"
)

// EvaluationResult is one candidate's outcome.
type EvaluationResult struct {
	Model           string `json:"model"`
	Version         string `json:"version"`
	ResolvedVersion int    `json:"resolved_version"`
	SHA256          string `json:"sha256"`
	Architecture    string `json:"architecture,omitempty"`
	Status          string `json:"status"`
	Reason          string `json:"reason,omitempty"`
	ArtifactBytes   int64  `json:"artifact_bytes"`

	Classification *Classification    `json:"classification,omitempty"`
	Regression     *Regression        `json:"regression,omitempty"`
	Latency        *EvaluationLatency `json:"latency,omitempty"`
	Memory         *EvaluationMemory  `json:"memory,omitempty"`
	Cost           *EvaluationCost    `json:"cost,omitempty"`
	QualitySeconds float64            `json:"quality_seconds,omitempty"`
}

// Classification is a classifier's quality over the dataset.
type Classification struct {
	Rows            int            `json:"rows"`
	Accuracy        float64        `json:"accuracy"`
	TopK            int            `json:"top_k"`
	TopKAccuracy    float64        `json:"top_k_accuracy"`
	MacroF1         float64        `json:"macro_f1"`
	PerClass        []ClassMetrics `json:"per_class,omitempty"`
	ConfusionMatrix [][]int        `json:"confusion_matrix,omitempty"` // [true][predicted]
}

// ClassMetrics is one class's precision, recall and F1.
type ClassMetrics struct {
	Class     int     `json:"class"`
	Name      string  `json:"name,omitempty"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Regression is a regression model's quality over the dataset.
type Regression struct {
	Rows int     `json:"rows"`
	MSE  float64 `json:"mse"`
	MAE  float64 `json:"mae"`
}

// EvaluationLatency is a model's forward-pass time at batch 1 and at the
// timed batch size with the best throughput.
type EvaluationLatency struct {
	P50MS             float64        `json:"p50_ms"`
	P99MS             float64        `json:"p99_ms"`
	RowsPerSecond     float64        `json:"rows_per_second"`
	BestBatch         int            `json:"best_batch"`
	BestP50MS         float64        `json:"best_batch_p50_ms"`
	BestP99MS         float64        `json:"best_batch_p99_ms"`
	BestRowsPerSecond float64        `json:"best_rows_per_second"`
	Batches           []BatchLatency `json:"batches,omitempty"`
}

// BatchLatency is one timed batch size.
type BatchLatency struct {
	Batch         int     `json:"batch"`
	P50MS         float64 `json:"p50_ms"`
	P99MS         float64 `json:"p99_ms"`
	Calls         int     `json:"calls"`
	RowsPerSecond float64 `json:"rows_per_second"`
}

// EvaluationMemory is what serving the model holds (an estimate; see
// Source).
type EvaluationMemory struct {
	ModelBytes       int64  `json:"model_bytes"`
	PeakWorkingBytes int64  `json:"peak_working_bytes"` // measured heap growth while it ran
	Source           string `json:"source"`
}

// EvaluationCost is the estimated cost of serving the model on Lambda.
type EvaluationCost struct {
	MemoryMB                 int     `json:"memory_mb"`
	PricePerGBSecond         float64 `json:"price_per_gb_second"`
	PricePerMillionRequests  float64 `json:"price_per_million_requests"`
	BilledMS                 float64 `json:"billed_ms_per_request"`
	PerMillionRequestsUSD    float64 `json:"per_million_requests_usd"`
	BestBatch                int     `json:"best_batch"`
	PerMillionRowsBatchedUSD float64 `json:"per_million_rows_batched_usd"`
}

// SubmitEvaluation queues an evaluation job. Not retried on transport
// errors (it could queue two). Goroutine-safe.
func (c *Client) SubmitEvaluation(ctx context.Context, req *EvaluationRequest) (*Evaluation, error) {
	if req == nil || len(req.Candidates) == 0 || req.Dataset == "" {
		return nil, fmt.Errorf("%w: an evaluation needs candidates and a dataset", ErrInvalidArgument)
	}
	b, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	var v Evaluation
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/v1/evaluations", body: b}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Evaluation returns an evaluation's state and results. Goroutine-safe.
func (c *Client) Evaluation(ctx context.Context, id string) (*Evaluation, error) {
	n, err := seg("evaluation", id)
	if err != nil {
		return nil, err
	}
	var v Evaluation
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/evaluations/" + n}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Evaluations lists the tenant's evaluations (results without per-class
// detail or per-batch latency). Goroutine-safe.
func (c *Client) Evaluations(ctx context.Context) ([]Evaluation, error) {
	var v struct {
		Evaluations []Evaluation `json:"evaluations"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/evaluations"}, &v)
	return v.Evaluations, err
}

// CancelEvaluation asks the server to stop a queued or running
// evaluation; a finished one is a 409 error. Goroutine-safe.
func (c *Client) CancelEvaluation(ctx context.Context, id string) (*Evaluation, error) {
	n, err := seg("evaluation", id)
	if err != nil {
		return nil, err
	}
	var v Evaluation
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/v1/evaluations/" + n + "/cancel"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// WaitEvaluation polls an evaluation every poll (1s if <= 0) until it
// ends or ctx does, calling onUpdate (may be nil) with every state it
// sees. A failed or canceled evaluation is not an error (check Status).
// Goroutine-safe.
func (c *Client) WaitEvaluation(ctx context.Context, id string, poll time.Duration, onUpdate func(*Evaluation)) (*Evaluation, error) {
	if poll <= 0 {
		poll = time.Second
	}
	for {
		e, err := c.Evaluation(ctx, id)
		if err != nil {
			return nil, err
		}
		if onUpdate != nil {
			onUpdate(e)
		}
		if e.Done() {
			return e, nil
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return e, err
		}
	}
}
