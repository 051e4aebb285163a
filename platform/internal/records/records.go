package records

import (
	"errors"
	"fmt"
	"time"
)

// Plugin is what the store keeps of an uploaded plugin; the module itself
// is a content-addressed blob the platform stores beside it.
type Plugin struct {
	Name       string    `json:"name"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	Exports    []string  `json:"exports"`
	ABIVersion int       `json:"abi_version"`
	Created    time.Time `json:"created"`
}

// Endpoint binds a model ref to optional plugins.
type Endpoint struct {
	Name        string `json:"name"`
	Model       string `json:"model"`
	Version     string `json:"version"` // number, alias, or "" for latest
	Preprocess  string `json:"preprocess,omitempty"`
	Postprocess string `json:"postprocess,omitempty"`
	// ForwardInputs names preprocess tensors handed to the postprocess
	// plugin beside the model's outputs (a pooling plugin needs the
	// tokenizer's attention_mask).
	ForwardInputs []string `json:"forward_inputs,omitempty"`
	// Generation configures text generation through this endpoint
	// (the generate and completions routes); nil for other endpoints.
	Generation *GenerationConfig `json:"generation,omitempty"`
	Created    time.Time         `json:"created"`
	Updated    time.Time         `json:"updated"`
}

// GenerationConfig is an endpoint's generation settings.
type GenerationConfig struct {
	// EOS lists the token ids that end a generation (GPT-2: 50256).
	EOS []int64 `json:"eos_token_ids,omitempty"`
	// MaxTokens is a request's default max_tokens (default 16); requests
	// may ask for more, up to the server's AIAAS_MAX_GENERATE_TOKENS.
	MaxTokens int `json:"max_tokens,omitempty"`
	// MaxContext bounds prompt plus generated tokens (the model's
	// positions; 0: no bound but the model's own).
	MaxContext int `json:"max_context,omitempty"`
}

// Bounds of an endpoint's configuration: each name and id is kept in the
// record and read on every invoke, so a client may not make them grow
// without limit.
const (
	MaxForwardInputs = 16
	MaxEOSIDs        = 16
)

// ErrInvalid means an endpoint's configuration is out of its bounds; the
// error's message, written for the client, says which.
var ErrInvalid = errors.New("records: invalid endpoint")

// kindError is an error of one kind with a message for the client: its
// text is the message alone, so the client reads what it always read.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func invalid(format string, a ...any) error {
	return &kindError{kind: ErrInvalid, msg: fmt.Sprintf(format, a...)}
}

// CheckEndpoint checks the bounds of ep's forward inputs and generation
// settings, and returns an error wrapping [ErrInvalid] for the first one
// it breaks. It checks neither names nor references: the platform does,
// in the order its clients expect to hear about them.
func CheckEndpoint(ep *Endpoint) error {
	if len(ep.ForwardInputs) > MaxForwardInputs {
		return invalid("forward_inputs: %d names, limit %d", len(ep.ForwardInputs), MaxForwardInputs)
	}
	for _, n := range ep.ForwardInputs {
		if n == "" || len(n) > 128 {
			return invalid("forward_inputs: names must have 1 to 128 bytes")
		}
	}
	if g := ep.Generation; g != nil {
		if len(g.EOS) > MaxEOSIDs {
			return invalid("generation.eos_token_ids: %d ids, limit %d", len(g.EOS), MaxEOSIDs)
		}
		if g.MaxTokens < 0 || g.MaxContext < 0 {
			return invalid("generation: max_tokens and max_context must not be negative")
		}
	}
	return nil
}
