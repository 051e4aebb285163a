package plugins

import (
	"context"
	"math"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/aiaas/aiaas/internal/wasmasm"
	"github.com/aiaas/aiaas/sdk/plugin"
)

// guestMemory returns a live instance of the echo module (one 64 KiB
// page of memory) to run the host functions against.
func guestMemory(t testing.TB) api.Module {
	h := newHost(t, &Options{Prewarm: -1})
	p, err := h.mustPool(context.Background(), "acme", moduleOf(wasmasm.Echo().Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.put(inst, true) })
	return inst.mod
}

func callHost(m api.Module, name string, st *callState, args ...uint64) int32 {
	ctx := context.WithValue(context.Background(), stateKey{}, st)
	for _, f := range hostFuncs {
		if f.name == name {
			stack := make([]uint64, max(len(args), 1))
			copy(stack, args)
			f.fn(ctx, m, stack)
			return api.DecodeI32(stack[0])
		}
	}
	panic("no host function " + name)
}

func TestHostFunctionBounds(t *testing.T) {
	m := guestMemory(t)
	st := &callState{maxOut: 100}
	f1 := uint64(api.EncodeF32(1))
	cases := []struct {
		name string
		args []uint64
		want int32
	}{
		{plugin.HostSetOutput, []uint64{0, 100}, plugin.HostOK},
		{plugin.HostSetOutput, []uint64{0, 101}, plugin.HostLimit},
		{plugin.HostSetOutput, []uint64{65530, 10}, plugin.HostBadArg},
		{plugin.HostSetContentType, []uint64{0, 300}, plugin.HostLimit},
		{plugin.HostSetError, []uint64{65535, 2}, plugin.HostBadArg},
		{plugin.HostSoftmaxF32, []uint64{0, 16384}, plugin.HostOK},
		{plugin.HostSoftmaxF32, []uint64{0, 16385}, plugin.HostBadArg},
		{plugin.HostSoftmaxF32, []uint64{2, 4}, plugin.HostBadArg}, // misaligned
		{plugin.HostSoftmaxF32, []uint64{0, math.MaxUint32}, plugin.HostBadArg},
		{plugin.HostU8ToF32, []uint64{0, 40000, 6000, f1, 0}, plugin.HostOK},
		{plugin.HostU8ToF32, []uint64{0, 60000, 6000, f1, 0}, plugin.HostBadArg},
		{plugin.HostGrayFromRGBA, []uint64{0, 4, 1 << 30}, plugin.HostBadArg},
		{plugin.HostResizeF32, []uint64{0, 16384, 16384, 0, 1, 1}, plugin.HostBadArg},
		{plugin.HostResizeF32, []uint64{0, 2, 2, 64, 4, 4}, plugin.HostOK},
		{plugin.HostTopKF32, []uint64{0, 64, 10, 3}, 3},
		{plugin.HostTopKF32, []uint64{0, 65532, 10, 3}, plugin.HostBadArg},
		{plugin.HostImageInfo, []uint64{0, 100, 0}, plugin.HostBadArg}, // not an image
		{plugin.HostDecodeGray, []uint64{0, 0, 100, 1 << 12, 1 << 12}, plugin.HostBadArg},
		{plugin.HostBBoxF32, []uint64{0, 1 << 16, 1 << 16, f1, 0}, plugin.HostBadArg},
		{plugin.HostBBoxF32, []uint64{0, 4, 4, uint64(api.EncodeF32(1e9)), 64}, 0}, // nothing above 1e9
	}
	for i, c := range cases {
		if got := callHost(m, c.name, st, c.args...); got != c.want {
			t.Errorf("%d %s%v: got %d want %d", i, c.name, c.args, got, c.want)
		}
	}
	if st.limit == nil {
		t.Error("the output cap was not recorded")
	}
	// Without a call in progress the output functions refuse.
	if got := callHost(m, plugin.HostSetOutput, nil, 0, 1); got != plugin.HostBadArg {
		t.Errorf("no call state: %d", got)
	}
}

// Guest-chosen arguments to every host function: never a panic, never a
// read outside guest memory.
func FuzzHostFunctions(f *testing.F) {
	f.Add(uint8(0), uint32(0), uint32(16), uint32(4), uint32(4), uint32(64), uint32(2))
	f.Add(uint8(5), uint32(0), uint32(4), uint32(4), uint32(64), uint32(2), uint32(2))
	m := guestMemory(f)
	f.Fuzz(func(t *testing.T, which uint8, a, b, c, d, e, g uint32) {
		hf := hostFuncs[int(which)%len(hostFuncs)]
		args := []uint64{uint64(a), uint64(b), uint64(c), uint64(d), uint64(e), uint64(g)}
		for i, p := range hf.params {
			if p == api.ValueTypeF32 {
				args[i] = uint64(api.EncodeF32(float32(args[i]) / 7))
			}
		}
		callHost(m, hf.name, &callState{maxOut: 1 << 10}, args[:max(len(hf.params), 1)]...)
	})
}
