package astopk_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/sdk/plugin"
	"github.com/aiaas/aiaas/sdk/plugin/tensorops"
)

// The host validates and re-encodes what it passes to a postprocess
// plugin, so malformed safetensors never reach a guest through
// plugins.Host. A plugin must still not trap on them (the ABI does not
// promise the host's checks), so rawGuest feeds arbitrary bytes straight
// to aiaas_postprocess in a bare wazero runtime whose aiaas_v1 functions
// are the host's own arithmetic (package tensorops) behind the same
// bounds checks, and reports status, output and error, or the trap.
type rawGuest struct {
	mu       sync.Mutex
	rt       wazero.Runtime
	mod      api.Module
	alloc    api.Function
	post     api.Function
	out, msg []byte
	ct       string
}

func newRawGuest(t testing.TB, wasm []byte) *rawGuest {
	t.Helper()
	ctx := context.Background()
	g := &rawGuest{rt: wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(2048).WithCloseOnContextDone(true))}
	t.Cleanup(func() { g.rt.Close(context.Background()) })
	view := func(m api.Module, ptr, n uint32) ([]byte, bool) { return m.Memory().Read(ptr, n) }
	f32s := func(m api.Module, ptr, n uint32) ([]float32, bool) {
		b, ok := view(m, ptr, 4*n)
		if !ok || ptr%4 != 0 || n > 1<<28 {
			return nil, false
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v, true
	}
	i32 := []api.ValueType{api.ValueTypeI32}
	copyOut := func(dst *[]byte) api.GoModuleFunc {
		return func(_ context.Context, m api.Module, s []uint64) {
			b, ok := view(m, api.DecodeU32(s[0]), api.DecodeU32(s[1]))
			if !ok {
				s[0] = api.EncodeI32(plugin.HostBadArg)
				return
			}
			*dst = append((*dst)[:0], b...)
			s[0] = 0
		}
	}
	var ct []byte
	_, err := g.rt.NewHostModuleBuilder(plugin.HostModule).
		NewFunctionBuilder().WithGoModuleFunction(copyOut(&g.out), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, i32).Export(plugin.HostSetOutput).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
		copyOut(&ct)(ctx, m, s)
		g.ct = string(ct)
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, i32).Export(plugin.HostSetContentType).
		NewFunctionBuilder().WithGoModuleFunction(copyOut(&g.msg), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, i32).Export(plugin.HostSetError).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		ptr, n := api.DecodeU32(s[0]), api.DecodeU32(s[1])
		x, ok := f32s(m, ptr, n)
		if !ok {
			s[0] = api.EncodeI32(plugin.HostBadArg)
			return
		}
		tensorops.Softmax(x)
		b := make([]byte, 4*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint32(b[4*i:], float32bits(v))
		}
		m.Memory().Write(ptr, b)
		s[0] = 0
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, i32).Export(plugin.HostSoftmaxF32).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		dstp, n, k := api.DecodeU32(s[0]), api.DecodeU32(s[2]), api.DecodeU32(s[3])
		k = min(k, n)
		x, ok := f32s(m, api.DecodeU32(s[1]), n)
		if _, ok2 := view(m, dstp, 4*k); !ok || !ok2 || dstp%4 != 0 {
			s[0] = api.EncodeI32(plugin.HostBadArg)
			return
		}
		idx := tensorops.TopK(make([]int32, k), x, int(k))
		b := make([]byte, 4*len(idx))
		for i, v := range idx {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
		m.Memory().Write(dstp, b)
		s[0] = api.EncodeI32(int32(len(idx)))
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, i32).Export(plugin.HostTopKF32).
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g.mod, err = g.rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("as-top-k")); err != nil {
		t.Fatal(err)
	}
	g.alloc, g.post = g.mod.ExportedFunction(plugin.ExportAlloc), g.mod.ExportedFunction(plugin.ExportPostprocess)
	return g
}

// call runs one postprocess on in. err is a trap (or an ABI violation).
// Safe for concurrent use (calls are serialised).
func (g *rawGuest) call(in []byte) (status int32, out []byte, ct, msg string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx := context.Background()
	g.out, g.msg, g.ct = g.out[:0], g.msg[:0], ""
	r, err := g.alloc.Call(ctx, uint64(len(in)))
	if err != nil {
		return 0, nil, "", "", fmt.Errorf("aiaas_alloc trapped: %w", err)
	}
	p := api.DecodeU32(r[0])
	if p == 0 || !g.mod.Memory().Write(p, in) {
		return 0, nil, "", "", fmt.Errorf("aiaas_alloc(%d) = %d: outside memory", len(in), p)
	}
	r, err = g.post.Call(ctx, uint64(p), uint64(len(in)))
	if err != nil {
		return 0, nil, "", "", fmt.Errorf("aiaas_postprocess trapped: %w", err)
	}
	return api.DecodeI32(r[0]), bytes.Clone(g.out), g.ct, string(g.msg), nil
}

// raw builds safetensors bytes from a header string and data.
func raw(header string, data ...byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

var four = []byte{0, 0, 0x80, 0x3f} // 1.0f

func malformedCases() []struct {
	in   []byte
	want string
} {
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	return []struct {
		in   []byte
		want string
	}{
		0:  {nil, "shorter than the 8-byte header length"},
		1:  {[]byte{1, 2, 3}, "shorter than the 8-byte header length"},
		2:  {binary.LittleEndian.AppendUint64(nil, 1<<40), "header length exceeds the input"},
		3:  {binary.LittleEndian.AppendUint64(nil, ^uint64(0)), "header length exceeds the input"},
		4:  {raw("{"), "header too short"},
		5:  {raw(`{"output":`), "malformed header at byte 10: want '{' opening a tensor"},
		6:  {raw(`{"out`), "unterminated string"},
		7:  {raw(`["output"]`), "want '{' opening the header"},
		8:  {raw(`{"output":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x`, four...), "want the end of the header"},
		9:  {raw(`{"output":{"dtype":"F32","shape":[1,2,3,4,5,6,7,8,9],"data_offsets":[0,4]}}`, four...), "rank at most 8"},
		10: {raw(`{"output":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, four...), "do not hold 1 F32 values within the 4 data bytes"},
		11: {raw(`{"output":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, four...), "data_offsets [4,0]"},
		12: {raw(`{"output":{"dtype":"F32","shape":[1]}}`, four...), "lacks dtype, shape or data_offsets"},
		13: {raw(`{"output":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, four...), "want a dimension"},
		14: {raw(`{"output":{"dtype":"F32","shape":[99999999999999999],"data_offsets":[0,4]}}`, four...), "integer below 2^53"},
		15: {raw(`{"output":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}`, four...), "without leading zeros"},
		16: {raw("{\"output\":{\"dtype\":\"F3\x012\",\"shape\":[1],\"data_offsets\":[0,4]}}", four...), "without control characters"},
		17: {raw(`{"output":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":`+deep+`}}`, four...), "nested at most 32 deep"},
		18: {raw(`{"__metadata__":{"k":5},"output":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, four...), "want a string metadata value"},
		19: {raw(`{"__metadata__":{"k":"\q"}}`), `want a valid escape`},
		20: {raw(`{"__metadata__":{"k":"\u12"}}`), `four hex digits after \u`},
		21: {raw(`{"output":{"dtype":"F32","shape":[2000000],"data_offsets":[0,4]}}`, four...), "2000000 classes; at most 1048576"},
		22: {raw(`{}`), `no tensor named "output" among 0`},
		23: {raw(`{"output":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}`, four...), "want a tensor name"},
		24: {raw(`{"output":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`, four...), "want ',' or '}' after a header entry"},
	}
}

// TestMalformed: broken safetensors end in the error path with a message
// that says what is wrong and where, never in a trap.
func TestMalformed(t *testing.T) {
	as, _ := modules(t)
	g := newRawGuest(t, as)
	for i, c := range malformedCases() {
		status, out, _, msg, err := g.call(c.in)
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		if status != plugin.StatusError || !strings.HasPrefix(msg, "top-k: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%d: status %d, error %q, output %q; want status 1 and an error with %q", i, status, msg, out, c.want)
		}
	}
	// The instance is still healthy afterwards.
	in := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{f32("output", []int{1, 10}, probs...)}})
	status, out, ct, msg, err := g.call(in)
	if err != nil || status != plugin.StatusOK || ct != "application/json" || !bytes.HasPrefix(out, []byte(`{"predictions":[{"label":"7","index":7,"score":0.8}`)) {
		t.Errorf("after the malformed inputs: status %d, %q, %q, %q, %v", status, out, ct, msg, err)
	}
}

// TestMemoryFlat: the arena is reset on every call, so a pooled instance
// does not grow (the host discards instances past its high-water mark).
func TestMemoryFlat(t *testing.T) {
	as, _ := modules(t)
	g := newRawGuest(t, as)
	in := safetensors.Encode(&safetensors.File{
		Tensors:  []safetensors.Tensor{f32("output", []int{1, 10}, probs...)},
		Metadata: map[string]string{"k": "10", "labels": "a,b,c,d,e,f,g,h,i,j"},
	})
	var size uint32
	for i := range 5000 {
		if status, _, _, msg, err := g.call(in); err != nil || status != 0 {
			t.Fatalf("%d: status %d %q %v", i, status, msg, err)
		}
		if i == 10 {
			size = g.mod.Memory().Size()
		}
	}
	if got := g.mod.Memory().Size(); got != size {
		t.Errorf("memory grew from %d to %d bytes over 5000 calls", size, got)
	}
}

// FuzzPostprocess: any bytes give status 0 with JSON, or status 1 with a
// "top-k: " message; never a trap.
func FuzzPostprocess(f *testing.F) {
	for _, c := range malformedCases() {
		f.Add(c.in)
	}
	f.Add(safetensors.Encode(&safetensors.File{
		Tensors:  []safetensors.Tensor{f32("a", []int{2}, .5, .5), f32("output", []int{1, 10}, probs...)},
		Metadata: map[string]string{"k": "4", "labels": "x,\"y\",\\z,\u00e9", "output": "output"},
	}))
	f.Add(raw(`{"output":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"__metadata__":{"labels":"\ud83d\ude00,\udc00"}}`, four...))
	as, _ := modules(f)
	g := newRawGuest(f, as)
	f.Fuzz(func(t *testing.T, in []byte) {
		status, out, ct, msg, err := g.call(in)
		switch {
		case err != nil:
			t.Fatal(err)
		case status == plugin.StatusOK:
			if ct != "application/json" || !json.Valid(out) {
				t.Fatalf("status 0, content type %q, invalid JSON %q", ct, out)
			}
		case status == plugin.StatusError:
			if !strings.HasPrefix(msg, "top-k: ") {
				t.Fatalf("status 1 with message %q", msg)
			}
		default:
			t.Fatalf("status %d", status)
		}
	})
}

func float32frombits(b uint32) float32 { return math.Float32frombits(b) }
func float32bits(f float32) uint32     { return math.Float32bits(f) }
