package client

import (
	"encoding/json"
	"fmt"
	"time"
)

// ServerMetadata is GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// TensorMetadata describes one model input or output.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is GET /v2/models/{model}[/versions/{version}].
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// Endpoint binds a model version (number, alias, or "" for latest) to
// optional pre- and postprocess plugins.
type Endpoint struct {
	Name        string `json:"name,omitempty"`
	Model       string `json:"model"`
	Version     string `json:"version"`
	Preprocess  string `json:"preprocess,omitempty"`
	Postprocess string `json:"postprocess,omitempty"`
	// ForwardInputs names preprocess tensors passed on to the postprocess
	// plugin (an embedding endpoint forwards "attention_mask").
	ForwardInputs []string `json:"forward_inputs,omitempty"`
	// Generation configures a text-generation endpoint.
	Generation *GenerationConfig `json:"generation,omitempty"`
	Created    time.Time         `json:"created,omitzero"`
	Updated    time.Time         `json:"updated,omitzero"`
}

// GenerationConfig is a generation endpoint's settings: the ids that end
// a generation, the default max_tokens, and the context limit.
type GenerationConfig struct {
	EOS        []int64 `json:"eos_token_ids,omitempty"`
	MaxTokens  int     `json:"max_tokens,omitempty"`
	MaxContext int     `json:"max_context,omitempty"`
}

// Tenant is returned by CreateTenant (with its first key, shown once) and
// ListTenants (without).
type Tenant struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	APIKey  string    `json:"api_key,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// Key scopes.
const (
	ScopeInvoke = "invoke"
	ScopeManage = "manage"
)

// Key is an API key. APIKey is set only in CreateKey's answer.
type Key struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Scope   string     `json:"scope"`
	APIKey  string     `json:"api_key,omitempty"`
	Created time.Time  `json:"created,omitzero"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// PushedModel is the answer to PushModel: the new immutable version.
type PushedModel struct {
	Model   string           `json:"model"`
	Version int              `json:"version"`
	SHA256  string           `json:"sha256"`
	Size    int64            `json:"size"`
	Inputs  []TensorMetadata `json:"inputs"`
	Outputs []TensorMetadata `json:"outputs"`
}

// Alias points a name at a version, optionally sending CanaryWeight
// percent of requests to CanaryVersion.
type Alias struct {
	Version       int `json:"version"`
	CanaryVersion int `json:"canary_version,omitempty"`
	CanaryWeight  int `json:"canary_weight,omitempty"`
	// Evaluation, in SetAlias only, cites a succeeded evaluation of this
	// version as the move's justification (kept in the audit record).
	Evaluation string `json:"evaluation,omitempty"`
}

// ModelSummary is one entry of ListModels.
type ModelSummary struct {
	Name     string           `json:"name"`
	Latest   int              `json:"latest"`
	Versions int              `json:"versions"`
	Aliases  map[string]Alias `json:"aliases,omitempty"`
}

// LatencyBatch is the forward-pass latency of one batch size.
type LatencyBatch struct {
	Batch    int   `json:"batch"`
	MedianNS int64 `json:"median_ns"`
	P99NS    int64 `json:"p99_ns"`
}

// Latency is a version's measured latency.
type Latency struct {
	Batches []LatencyBatch `json:"batches"`
}

// ModelVersion is one immutable version of a model.
type ModelVersion struct {
	Version int              `json:"version"`
	SHA256  string           `json:"sha256"`
	Size    int64            `json:"size"`
	Created time.Time        `json:"created,omitzero"`
	Inputs  []TensorMetadata `json:"inputs"`
	Outputs []TensorMetadata `json:"outputs"`
	Metrics map[string]any   `json:"metrics,omitempty"`
	Latency *Latency         `json:"latency,omitempty"`
}

// Model is GET /v1/models/{model}.
type Model struct {
	Name     string           `json:"name"`
	Aliases  map[string]Alias `json:"aliases"`
	Versions []ModelVersion   `json:"versions"`
}

// AliasResult is the answer to SetAlias.
type AliasResult struct {
	Model         string `json:"model"`
	Alias         string `json:"alias"`
	Version       int    `json:"version"`
	CanaryVersion int    `json:"canary_version,omitempty"`
	CanaryWeight  int    `json:"canary_weight,omitempty"`
	Evaluation    string `json:"evaluation,omitempty"`
}

// Explanation methods.
const (
	MethodIntegratedGradients = "integrated_gradients"
	MethodGradientXInput      = "gradient_x_input"
)

// ExplainRequest asks which inputs drove a prediction. Target nil means the
// predicted class.
type ExplainRequest struct {
	Version string    `json:"version,omitempty"`
	Input   []float32 `json:"input"`
	Target  *int      `json:"target,omitempty"`
	Method  string    `json:"method,omitempty"`
	Steps   int       `json:"steps,omitempty"`
}

// Explanation is the answer to Explain: one attribution per input.
type Explanation struct {
	Model        string    `json:"model"`
	Version      string    `json:"version"`
	Target       int       `json:"target"`
	Method       string    `json:"method"`
	Output       []float64 `json:"output"`
	Attributions []float64 `json:"attributions"`
}

// UnmarshalJSON accepts the version as a JSON number or string.
func (e *Explanation) UnmarshalJSON(b []byte) error {
	type plain Explanation
	var aux struct {
		*plain
		Version json.RawMessage `json:"version"`
	}
	aux.plain = (*plain)(e)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	e.Version = numberOrString(aux.Version)
	return nil
}

// numberOrString renders a JSON number or string as a string: servers
// disagree on whether versions are numbers.
func numberOrString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// Plugin is a tenant WebAssembly plugin.
type Plugin struct {
	Name       string    `json:"name"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	Exports    []string  `json:"exports"`
	ABIVersion int       `json:"abi_version"`
	Created    time.Time `json:"created,omitzero"`
}

// Dataset is an uploaded training set.
type Dataset struct {
	Name    string    `json:"name"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created,omitzero"`
}

// TrainingRequest submits a training job; zero fields take the server's
// defaults.
type TrainingRequest struct {
	Model           string  `json:"model"`
	Dataset         string  `json:"dataset"`
	Layers          []int   `json:"layers,omitempty"`
	Activation      string  `json:"activation,omitempty"`
	Optimizer       string  `json:"optimizer,omitempty"`
	LearningRate    float64 `json:"learning_rate,omitempty"`
	BatchSize       int     `json:"batch_size,omitempty"`
	Epochs          int     `json:"epochs,omitempty"`
	Seed            int64   `json:"seed,omitempty"`
	ValidationSplit float64 `json:"validation_split,omitempty"`
	Momentum        float64 `json:"momentum,omitempty"`
	Loss            string  `json:"loss,omitempty"`
	Dropout         float64 `json:"dropout,omitempty"`
	TestDataset     string  `json:"test_dataset,omitempty"`
	TestSplit       float64 `json:"test_split,omitempty"`
	EarlyStopping   int     `json:"early_stopping,omitempty"` // patience in epochs; needs ValidationSplit
	Limit           int     `json:"limit,omitempty"`          // use only the first Limit training rows
	// Network, instead of Layers, is any sequential network: convolutions,
	// pooling, batch normalisation … (docs/training.md).
	Network     *Network  `json:"network,omitempty"`
	WeightDecay float64   `json:"weight_decay,omitempty"`
	Schedule    *Schedule `json:"lr_schedule,omitempty"`
	Augment     *Augment  `json:"augment,omitempty"`
}

// Network is a sequential network: the shape of one sample ([C, H, W] or
// [D]; default the dataset's) and its layers, the last a dense layer with
// one unit per class.
type Network struct {
	InputShape []int   `json:"input_shape,omitempty"`
	Layers     []Layer `json:"layers"`
}

// Layer is one layer of a Network. Type is dense, dropout, conv2d,
// maxpool2d, avgpool2d, global_avgpool2d, batchnorm or flatten; each uses
// the fields docs/training.md lists and refuses the others.
type Layer struct {
	Type         string  `json:"type"`
	Units        int     `json:"units,omitempty"`
	Activation   string  `json:"activation,omitempty"`
	Rate         float64 `json:"rate,omitempty"`
	Filters      int     `json:"filters,omitempty"`
	KernelSize   Size    `json:"kernel_size,omitempty"`
	Strides      Size    `json:"strides,omitempty"`
	Padding      string  `json:"padding,omitempty"`
	DilationRate Size    `json:"dilation_rate,omitempty"`
	PoolSize     Size    `json:"pool_size,omitempty"`
	Momentum     float64 `json:"momentum,omitempty"`
	Epsilon      float64 `json:"epsilon,omitempty"`
}

// Size is a window size, stride or dilation: [height, width], or one value
// for both; in JSON an array or, as in Keras, a plain number.
type Size []int

// UnmarshalJSON reads a number or an array of numbers.
func (s *Size) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Size{n}
		return nil
	}
	var v []int
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a number or [height, width], have %s", b)
	}
	*s = v
	return nil
}

// Schedule is a learning-rate schedule: Kind "step" (the rate × Gamma
// every StepEpochs epochs) or "cosine" (annealed to MinRate).
type Schedule struct {
	Kind       string  `json:"kind"`
	StepEpochs int     `json:"step_epochs,omitempty"`
	Gamma      float64 `json:"gamma,omitempty"`
	MinRate    float64 `json:"min_rate,omitempty"`
}

// Augment shifts training images by up to Shift pixels and mirrors them
// left-right half of the time, at random.
type Augment struct {
	Shift          int  `json:"shift,omitempty"`
	FlipHorizontal bool `json:"flip_horizontal,omitempty"`
}

// Job statuses.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCanceled  = "canceled"
)

// JobProgress is where a running job is.
type JobProgress struct {
	Epoch    int     `json:"epoch"`
	Epochs   int     `json:"epochs"`
	Batch    int     `json:"batch"`
	Batches  int     `json:"batches"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
}

// EpochMetrics are one finished epoch.
type EpochMetrics struct {
	Epoch       int      `json:"epoch"`
	Loss        float64  `json:"loss"`
	Accuracy    float64  `json:"accuracy"`
	ValLoss     *float64 `json:"val_loss,omitempty"`
	ValAccuracy *float64 `json:"val_accuracy,omitempty"`
	Seconds     float64  `json:"seconds"`
}

// JobResult is a succeeded job's published version.
type JobResult struct {
	Version      int     `json:"version"`
	TestAccuracy float64 `json:"test_accuracy"`
	SHA256       string  `json:"sha256"`
}

// TrainingJob is a training job's state.
type TrainingJob struct {
	ID       string         `json:"id"`
	Status   string         `json:"status"`
	Model    string         `json:"model"`
	Progress *JobProgress   `json:"progress,omitempty"`
	Epochs   []EpochMetrics `json:"epochs,omitempty"`
	Result   *JobResult     `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
	Created  time.Time      `json:"created,omitzero"`
	Started  *time.Time     `json:"started,omitempty"`
	Finished *time.Time     `json:"finished,omitempty"`
	// Continuations counts the worker invocations after the first: a job
	// a Lambda invocation's deadline stopped is checkpointed and
	// continued by the next.
	Continuations int `json:"continuations,omitempty"`
}

// Done reports whether the job reached a final status.
func (j *TrainingJob) Done() bool {
	return j.Status == JobSucceeded || j.Status == JobFailed || j.Status == JobCanceled
}

// AuditRecord is one entry of the tenant's hash-chained audit log.
type AuditRecord struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Object    string    `json:"object,omitempty"`
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
	Prev      string    `json:"prev"`
	Hash      string    `json:"hash"`
	// Justification is what the caller cited, e.g. "evaluations/e…" for
	// an alias move.
	Justification string `json:"justification,omitempty"`
	// Chain is the hash chain the record belongs to: "" for a server's
	// single chain, else the writer's (one per Lambda environment).
	Chain string `json:"chain,omitempty"`
}

// AuditQuery filters ListAudit; zero fields are left out.
type AuditQuery struct {
	// After pages a server's single chain by sequence number.
	After uint64
	// Cursor pages every chain merged by time: pass the previous page's
	// NextCursor. Set After or Cursor, not both.
	Cursor string
	Since  time.Time
	Until  time.Time
	Limit  int
}

// AuditPage is one page of records; pass NextCursor as the next Cursor
// (NextAfter as the next After pages a server's single chain only).
type AuditPage struct {
	Records    []AuditRecord `json:"records"`
	NextAfter  uint64        `json:"next_after"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// AuditVerification is GET /v1/audit/verify: the whole log, then each
// chain.
type AuditVerification struct {
	Records  uint64             `json:"records"`
	Segments int                `json:"segments"`
	OK       bool               `json:"ok"`
	Problems []string           `json:"problems,omitempty"`
	First    time.Time          `json:"first,omitzero"`
	Last     time.Time          `json:"last,omitzero"`
	Chains   []AuditChainResult `json:"chains,omitempty"`
}

// AuditChainResult is the verification of one hash chain of the log.
type AuditChainResult struct {
	ID       string    `json:"id"` // "" for a server's single chain
	Records  uint64    `json:"records"`
	Segments int       `json:"segments"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	OK       bool      `json:"ok"`
	Problems []string  `json:"problems,omitempty"`
}
