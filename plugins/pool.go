package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

// tenant is a tenant's runtime and its pools, one per plugin sha256.
type tenant struct {
	h     *Host
	name  string
	rt    *sandbox
	share chan struct{} // this tenant's part of the host's guest slots

	mu    sync.Mutex
	pools map[string]*pool

	// idleBytes is the linear memory of this tenant's idle instances
	// (Options.MaxTenantIdleMemory).
	idleBytes atomic.Int64
}

// keepIdle reserves n bytes of idle memory for an instance of t, within
// the tenant's and the host's caps; false means the instance must be
// closed instead of kept.
func (t *tenant) keepIdle(n int) bool {
	o := &t.h.opts
	if t.idleBytes.Add(int64(n)) > o.MaxTenantIdleMemory {
		t.idleBytes.Add(-int64(n))
		return false
	}
	if t.h.idleBytes.Add(int64(n)) > o.MaxIdleMemory {
		t.h.idleBytes.Add(-int64(n))
		t.idleBytes.Add(-int64(n))
		return false
	}
	return true
}

// leaveIdle gives back what keepIdle reserved for an instance leaving the
// idle list.
func (t *tenant) leaveIdle(n int) {
	t.idleBytes.Add(-int64(n))
	t.h.idleBytes.Add(-int64(n))
}

// pool is the instances of one compiled module for one tenant.
type pool struct {
	t     *tenant
	sha   string
	ready chan struct{} // closed once cm/info/err are set
	cm    wazero.CompiledModule
	info  *Info
	err   error

	slots chan struct{} // one token per checked-out instance

	mu      sync.Mutex
	idle    []*instance // LIFO: the warmest first
	total   int         // idle + checked out + being created
	created int         // instances ever created (tests, metrics)
	// memBytes is the linear memory of the live instances, each as of
	// its last check-in (a running guest's memory is not read while it
	// runs).
	memBytes int
}

// pool returns the tenant's pool for mod, compiling it on first use.
// Concurrent first calls compile once.
func (t *tenant) pool(ctx context.Context, mod Module) (*pool, error) {
	if !validSHA(mod.SHA256) {
		return nil, fmt.Errorf("%w: module sha256 %q is not 64 hex digits", ErrInvalidModule, mod.SHA256)
	}
	t.mu.Lock()
	p := t.pools[mod.SHA256]
	if p == nil {
		p = &pool{t: t, sha: mod.SHA256, ready: make(chan struct{}), slots: make(chan struct{}, t.h.opts.PoolSize)}
		t.pools[mod.SHA256] = p
		t.mu.Unlock()
		p.cm, p.info, p.err = t.compile(ctx, mod)
		if p.err != nil {
			// Forget the failure so that a later call (a fixed store, a
			// new upload) can retry.
			t.mu.Lock()
			delete(t.pools, mod.SHA256)
			t.mu.Unlock()
		}
		close(p.ready)
		if p.err == nil {
			p.prewarm()
		}
	} else {
		t.mu.Unlock()
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	return p, nil
}

func (t *tenant) compile(ctx context.Context, mod Module) (wazero.CompiledModule, *Info, error) {
	if mod.Load == nil {
		return nil, nil, fmt.Errorf("%w: module %s has no loader", ErrInvalidModule, mod.SHA256)
	}
	wasm, err := mod.Load(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("plugins: loading module %s: %w", mod.SHA256, err)
	}
	sum := sha256.Sum256(wasm)
	if got := hex.EncodeToString(sum[:]); got != mod.SHA256 {
		return nil, nil, fmt.Errorf("%w: module bytes hash to %s, want %s", ErrInvalidModule, got, mod.SHA256)
	}
	cm, info, err := t.h.check(ctx, t.rt, wasm)
	if err != nil {
		return nil, nil, err
	}
	return cm, info, nil
}

func validSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// get checks out an instance, creating one if none is idle. It waits at
// most QueueTimeout for a free slot.
func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case p.slots <- struct{}{}:
	default:
		tm := time.NewTimer(p.t.h.opts.QueueTimeout)
		select {
		case p.slots <- struct{}{}:
			tm.Stop()
		case <-ctx.Done():
			tm.Stop()
			return nil, ctx.Err()
		case <-tm.C:
			return nil, fmt.Errorf("%w: all %d instances of plugin %s are in use", ErrBusy, cap(p.slots), short(p.sha))
		}
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		// Clear the slot: the backing array would otherwise keep this
		// instance, and through it its whole linear memory (128 MiB after
		// a memory bomb), reachable after it is closed and discarded.
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		p.t.leaveIdle(inst.counted)
		return inst, nil
	}
	p.total++
	p.mu.Unlock()
	inst, err := p.create(ctx)
	if err != nil {
		p.mu.Lock()
		p.total--
		p.mu.Unlock()
		<-p.slots
		return nil, err
	}
	return inst, nil
}

// create instantiates under a concurrency slot. The caller counted it in
// total.
func (p *pool) create(ctx context.Context) (*instance, error) {
	if err := p.t.h.acquire(ctx, p.t); err != nil {
		return nil, err
	}
	defer p.t.h.release(p.t)
	inst, err := p.t.rt.instantiate(ctx, p.cm, p.sha)
	if err != nil {
		return nil, fmt.Errorf("tenant %q plugin %s: %w", p.t.name, short(p.sha), err)
	}
	p.mu.Lock()
	p.created++
	inst.counted = inst.memBytes()
	p.memBytes += inst.counted
	p.mu.Unlock()
	return inst, nil
}

// put returns a checked-out instance. A broken one is closed and, if the
// pool falls below Prewarm, replaced in the background.
func (p *pool) put(inst *instance, healthy bool) {
	inst.lastUsed = time.Now().UnixNano()
	mem := inst.memBytes()
	keep := healthy && p.t.keepIdle(mem)
	p.mu.Lock()
	p.memBytes -= inst.counted
	if keep && p.total <= cap(p.slots) {
		inst.counted = mem
		p.memBytes += inst.counted
		p.idle = append(p.idle, inst)
		p.mu.Unlock()
		<-p.slots
		return
	}
	if keep { // over the pool's size after all
		p.t.leaveIdle(mem)
	}
	p.total--
	p.mu.Unlock()
	<-p.slots
	inst.close()
	if !healthy {
		p.t.h.scavengeSoon()
		p.prewarm()
	}
}

// prewarm tops the pool up to Prewarm instances in the background.
func (p *pool) prewarm() {
	p.mu.Lock()
	n := p.t.h.opts.Prewarm - p.total
	if n > 0 {
		p.total += n
	}
	p.mu.Unlock()
	for range max(n, 0) {
		if p.t.h.enter() != nil {
			p.mu.Lock()
			p.total--
			p.mu.Unlock()
			continue
		}
		go func() {
			defer p.t.h.exit()
			// Background work must not die with the request that caused
			// it, but it still waits for a concurrency slot, and Close
			// cancels it.
			ctx, cancel := context.WithTimeout(p.t.h.bg, p.t.h.opts.InitTimeout+p.t.h.opts.QueueTimeout)
			defer cancel()
			inst, err := p.create(ctx)
			p.mu.Lock()
			if err != nil {
				p.total--
				p.mu.Unlock()
				if p.t.h.bg.Err() == nil {
					p.t.h.opts.Logger.Warn("plugin prewarm failed", "tenant", p.t.name, "plugin", short(p.sha), "err", err)
				}
				return
			}
			inst.lastUsed = time.Now().UnixNano()
			if !p.t.keepIdle(inst.counted) {
				// No room for a warm instance within the memory caps.
				p.total--
				p.memBytes -= inst.counted
				p.mu.Unlock()
				inst.close()
				return
			}
			p.idle = append(p.idle, inst)
			p.mu.Unlock()
		}()
	}
}

// reclaim closes idle instances last used before cutoff.
func (p *pool) reclaim(cutoff time.Time) {
	c := cutoff.UnixNano()
	var old []*instance
	p.mu.Lock()
	keep := p.idle[:0]
	for _, inst := range p.idle {
		if inst.lastUsed < c {
			old = append(old, inst)
			p.total--
			p.memBytes -= inst.counted
		} else {
			keep = append(keep, inst)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, inst := range old {
		p.t.leaveIdle(inst.counted)
		inst.close()
	}
}

// stats is a snapshot for tests and metrics.
type poolStats struct{ idle, total, created, memBytes int }

func (p *pool) stats() poolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return poolStats{len(p.idle), p.total, p.created, p.memBytes}
}

// TenantStats is a snapshot of one tenant's plugin instances, for metrics.
type TenantStats struct {
	Tenant string
	// Idle instances wait in the pools; Busy ones run a call or start.
	Idle, Busy int
	// MemoryBytes is the linear memory of the tenant's instances, each as
	// of its last call.
	MemoryBytes int64
}

// Stats returns a snapshot per tenant that has run a plugin, sorted by
// tenant. Safe for concurrent use; it takes each pool's lock briefly.
func (h *Host) Stats() []TenantStats {
	h.mu.Lock()
	ts := make([]*tenant, 0, len(h.tenants))
	for _, t := range h.tenants {
		ts = append(ts, t)
	}
	h.mu.Unlock()
	out := make([]TenantStats, 0, len(ts))
	for _, t := range ts {
		st := TenantStats{Tenant: t.name}
		t.mu.Lock()
		ps := make([]*pool, 0, len(t.pools))
		for _, p := range t.pools {
			ps = append(ps, p)
		}
		t.mu.Unlock()
		for _, p := range ps {
			s := p.stats()
			st.Idle += s.idle
			st.Busy += s.total - s.idle
			st.MemoryBytes += int64(s.memBytes)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b TenantStats) int { return strings.Compare(a.Tenant, b.Tenant) })
	return out
}

func short(sha string) string { return sha[:min(12, len(sha))] }
