package plugins

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/sdk/plugin"
)

// outputLimits bound what a preprocess plugin may return: a handful of
// model inputs, not a model.
var outputLimits = &safetensors.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 256, MaxRank: 8}

// Preprocess runs the plugin's preprocess on a request body and returns
// the tensors it produced (their Data is owned by the caller). Safe for
// concurrent use.
func (h *Host) Preprocess(ctx context.Context, tenant string, mod Module, contentType string, body []byte) ([]safetensors.Tensor, error) {
	if len(contentType) > maxContentType {
		return nil, fmt.Errorf("%w: content type is %d bytes; the cap is %d", ErrLimit, len(contentType), maxContentType)
	}
	if len(body)+len(contentType) > h.opts.MaxInputBytes {
		return nil, fmt.Errorf("%w: input is %d bytes; the cap is %d", ErrLimit, len(body), h.opts.MaxInputBytes)
	}
	st, err := h.call(ctx, tenant, mod, Preprocess, []byte(contentType), body)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Decode(st.out, outputLimits)
	if err != nil {
		return nil, fmt.Errorf("%w: tenant %q plugin %s: output is not valid safetensors: %v", ErrPluginError, tenant, short(mod.SHA256), err)
	}
	return f.Tensors, nil
}

// Postprocess runs the plugin's postprocess on the model's outputs and
// returns the response body and its content type. out.Metadata carries
// string parameters to the plugin (for example "k" for top-k). Safe for
// concurrent use.
func (h *Host) Postprocess(ctx context.Context, tenant string, mod Module, out *safetensors.File) (body []byte, contentType string, err error) {
	if err := out.Validate(); err != nil {
		return nil, "", fmt.Errorf("plugins: postprocess input: %w", err)
	}
	in := safetensors.Encode(out)
	if len(in) > h.opts.MaxInputBytes {
		return nil, "", fmt.Errorf("%w: input is %d bytes; the cap is %d", ErrLimit, len(in), h.opts.MaxInputBytes)
	}
	st, err := h.call(ctx, tenant, mod, Postprocess, in, nil)
	if err != nil {
		return nil, "", err
	}
	ct := st.contentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if !validContentType(ct) {
		return nil, "", fmt.Errorf("%w: tenant %q plugin %s: invalid content type %q", ErrPluginError, tenant, short(mod.SHA256), ct)
	}
	return st.out, ct, nil
}

// validContentType reports whether ct, a plugin's answer, may be sent as a
// Content-Type header: an RFC 9110 media type with no control bytes (a
// NUL or a line break would make the header malformed or split it).
func validContentType(ct string) bool {
	if strings.ContainsFunc(ct, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	_, _, err := mime.ParseMediaType(ct)
	return err == nil
}

// Warm compiles mod for tenant and starts Options.Prewarm instances in
// the background, so the first call does not pay for them. Safe for
// concurrent use.
func (h *Host) Warm(ctx context.Context, tenant string, mod Module) error {
	if err := h.enter(); err != nil {
		return err
	}
	defer h.exit()
	t, err := h.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	_, err = t.pool(ctx, mod)
	return err
}

// call runs one export: a is the first part of the input (content type
// or safetensors), b the second (body).
func (h *Host) call(ctx context.Context, tenantName string, mod Module, kind Kind, a, b []byte) (*callState, error) {
	if err := h.enter(); err != nil {
		return nil, err
	}
	defer h.exit()
	t, err := h.tenant(ctx, tenantName)
	if err != nil {
		return nil, err
	}
	p, err := t.pool(ctx, mod)
	if err != nil {
		return nil, err
	}
	inst, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	healthy := false
	defer func() { p.put(inst, healthy) }()
	if err := h.acquire(ctx, t); err != nil {
		return nil, err
	}
	defer h.release(t)

	fn := inst.pre
	if kind == Postprocess {
		fn = inst.post
	}
	if fn == nil || !inst.kind.Has(kind) {
		healthy = true
		return nil, fmt.Errorf("%w: tenant %q plugin %s does not implement %s", ErrInvalidModule, tenantName, short(p.sha), kind)
	}
	st := &callState{maxOut: h.opts.MaxOutputBytes, maxErr: maxErrorBytes}
	cctx, cancel := context.WithTimeout(ctx, h.opts.CallTimeout)
	defer cancel()
	cctx = context.WithValue(cctx, stateKey{}, st)

	err = h.run(cctx, inst, fn, kind, a, b)
	inst.calls++
	if err != nil {
		err = h.classify(ctx, cctx, tenantName, p.sha, inst, err)
		h.flushLogs(tenantName, p.sha, inst)
		return nil, err
	}
	h.flushLogs(tenantName, p.sha, inst)
	if inst.memBytes() <= h.opts.HighWaterBytes {
		healthy = true
	} else {
		h.opts.Logger.Info("plugin instance discarded: memory above high-water mark",
			"tenant", tenantName, "plugin", short(p.sha), "memory_bytes", inst.memBytes(), "high_water_bytes", h.opts.HighWaterBytes)
	}
	if st.limit != nil {
		return nil, fmt.Errorf("tenant %q plugin %s: %w", tenantName, short(p.sha), st.limit)
	}
	stack := inst.stack[:]
	switch status := api.DecodeI32(stack[0]); status {
	case plugin.StatusOK:
		if !st.outSet {
			return nil, fmt.Errorf("%w: tenant %q plugin %s: returned success without calling %s", ErrPluginError, tenantName, short(p.sha), plugin.HostSetOutput)
		}
		return st, nil
	case plugin.StatusError:
		msg := strings.ToValidUTF8(st.errMsg, string(utf8.RuneError))
		if msg == "" {
			msg = "(no message)"
		}
		return nil, fmt.Errorf("%w: %s", ErrPluginError, msg)
	default:
		return nil, fmt.Errorf("%w: tenant %q plugin %s: unknown status %d", ErrPluginError, tenantName, short(p.sha), status)
	}
}

// run copies the input into guest memory and calls fn; the status is
// left in inst.stack[0].
func (h *Host) run(ctx context.Context, inst *instance, fn api.Function, kind Kind, a, b []byte) error {
	n := len(a) + len(b)
	stack := inst.stack[:]
	stack[0] = api.EncodeI32(int32(n))
	if err := inst.alloc.CallWithStack(ctx, stack[:1]); err != nil {
		return err
	}
	ptr := api.DecodeU32(stack[0])
	if ptr == 0 {
		return errAlloc
	}
	if !inst.mem.Write(ptr, a) || !inst.mem.Write(ptr+uint32(len(a)), b) {
		return errAlloc
	}
	stack[0] = api.EncodeU32(ptr)
	if kind == Preprocess {
		stack[1], stack[2] = api.EncodeI32(int32(len(a))), api.EncodeI32(int32(len(b)))
	} else {
		stack[1] = api.EncodeI32(int32(len(a)))
	}
	return fn.CallWithStack(ctx, stack)
}

var errAlloc = errors.New("aiaas_alloc returned a buffer outside memory (out of memory?)")

const (
	deadlineExit = sys.ExitCodeDeadlineExceeded
	canceledExit = sys.ExitCodeContextCanceled
)

func isExit(err error, code uint32) bool {
	var ee *sys.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// classify maps a failed guest call to a sentinel. parent is the caller's
// context, cctx the call's (with the deadline).
func (h *Host) classify(parent, cctx context.Context, tenant, sha string, inst *instance, err error) error {
	who := fmt.Sprintf("tenant %q plugin %s", tenant, short(sha))
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s: %w", who, parent.Err())
	case cctx.Err() == context.DeadlineExceeded || isExit(err, deadlineExit) || isExit(err, canceledExit):
		return fmt.Errorf("%w: %s: did not return within %v", ErrTimeout, who, h.opts.CallTimeout)
	}
	// The guest's wasm stack trace is for the operator's log, not for the
	// caller: it names the guest's functions and offsets.
	msg := err.Error()
	if i := strings.Index(msg, "\nwasm stack trace"); i >= 0 {
		h.opts.Logger.Warn("plugin call failed", "tenant", tenant, "plugin", short(sha), "err", msg)
		msg = msg[:i]
	}
	if errors.Is(err, errAlloc) || h.outOfMemory(inst) {
		return fmt.Errorf("%w: %s: memory: %s (cap %d MiB)", ErrLimit, who, msg, int(h.opts.MemoryLimitPages)/16)
	}
	return fmt.Errorf("%w: %s: %s", ErrTrap, who, msg)
}

// outOfMemory reports whether a failed call was (most likely) a failed
// memory.grow: Go runtimes grow their heap in 4 MiB arenas and exit with
// "out of memory" when the grow fails; other languages trap.
func (h *Host) outOfMemory(inst *instance) bool {
	if strings.Contains(inst.logs.String(), "out of memory") {
		return true
	}
	return inst.memBytes()+4<<20 > int(h.opts.MemoryLimitPages)*65536
}

// flushLogs sends the guest's captured output to the logger.
func (h *Host) flushLogs(tenant, sha string, inst *instance) {
	if len(inst.logs.buf) == 0 && inst.logs.dropped == 0 {
		return
	}
	h.opts.Logger.Info("plugin output", "tenant", tenant, "plugin", short(sha),
		"output", strings.ToValidUTF8(inst.logs.String(), "?"), "dropped_bytes", inst.logs.dropped)
	inst.logs.reset()
}
