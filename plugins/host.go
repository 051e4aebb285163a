package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// Options configure a Host. The zero value of every field means its
// default; a nil *Options means all defaults.
type Options struct {
	// CacheDir holds the compilation cache shared by all tenants and by
	// later processes (warm and cold starts skip recompilation). Default:
	// os.UserCacheDir()/aiaas/wazero, or, when that is unset or not
	// writable (AWS Lambda: no HOME, read-only file system but /tmp),
	// os.TempDir()/aiaas-wazero-UID. It is created with mode 0700.
	CacheDir string
	// Shared, when set, shares compiled code between the processes that
	// use one store (Lambda execution environments): a module's code is
	// fetched into CacheDir before it is compiled, and the code this
	// process compiles is put there for the others. Compilations then run
	// one at a time in the process. Nil: CacheDir only.
	Shared SharedCache
	// MaxModuleBytes caps an uploaded module. Default 16 MiB.
	MaxModuleBytes int
	// MemoryLimitPages caps each instance's linear memory, in 64 KiB
	// pages. Default 2048 (128 MiB); a Go-built module needs about 4 MiB
	// just to start.
	MemoryLimitPages uint32
	// HighWaterBytes: an instance whose memory grew past it is discarded
	// after its call (the call still succeeds). Default half the cap.
	HighWaterBytes int
	// CallTimeout is each call's deadline. Default 2 s.
	CallTimeout time.Duration
	// InitTimeout is the deadline for instantiating a module (running its
	// start function / _initialize). Default 5 s.
	InitTimeout time.Duration
	// MaxInputBytes caps the bytes passed into a call. Default 32 MiB.
	MaxInputBytes int
	// MaxOutputBytes caps what a call may return. Default 16 MiB.
	MaxOutputBytes int
	// MaxLogBytes caps the stdout+stderr kept per call; the rest is
	// dropped and counted. Default 4 KiB.
	MaxLogBytes int
	// PoolSize bounds the instances per (tenant, plugin). Default 4.
	PoolSize int
	// Prewarm is how many instances a pool starts in the background when
	// it is created and keeps after discards. Default 1; negative: none.
	Prewarm int
	// MaxConcurrency bounds guest execution in the whole process (calls
	// and instantiations). Default DefaultConcurrency().
	MaxConcurrency int
	// QueueTimeout is how long a call waits for a free instance or
	// concurrency slot before failing with ErrBusy. Default 1 s.
	QueueTimeout time.Duration
	// IdleTimeout: idle instances unused for longer are closed. Default 5
	// minutes; negative: never.
	IdleTimeout time.Duration
	// MaxIdleMemory bounds the linear memory of the idle instances kept
	// for later calls, in the whole process, and MaxTenantIdleMemory one
	// tenant's: an instance that would pass either when it is checked
	// back in is closed instead (the call itself succeeded; the next one
	// starts a fresh instance). Defaults 1 GiB and 256 MiB. Running
	// instances are bounded by the guest slots (MaxConcurrency, half of
	// them a tenant's) times MemoryLimitPages.
	MaxIdleMemory, MaxTenantIdleMemory int64
	// Logger receives plugin output and lifecycle events. Default
	// slog.Default().
	Logger *slog.Logger

	// noDeadline skips the interrupt instrumentation (interrupt.go), so
	// calls cannot be stopped; benchmarks only, to measure its cost.
	noDeadline bool
}

// DefaultConcurrency is MaxConcurrency's default: guests are CPU-bound
// and cannot be preempted, so more than a few per core only adds latency.
func DefaultConcurrency() int { return 2 * max(1, runtime.GOMAXPROCS(0)) }

func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.CacheDir == "" {
		c.CacheDir = defaultCacheDir()
	}
	if c.noDeadline {
		// Benchmarks' uninstrumented modules get a folder of their own;
		// their bytes differ from the instrumented ones anyway (wazero
		// keys its cache by the bytes), so this only keeps them apart.
		c.CacheDir = filepath.Join(c.CacheDir, "no-deadline")
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.MaxModuleBytes, 16<<20)
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = 2048
	}
	if c.MemoryLimitPages > 65536 {
		return c, fmt.Errorf("plugins: MemoryLimitPages %d exceeds 65536 (4 GiB)", c.MemoryLimitPages)
	}
	def(&c.HighWaterBytes, int(c.MemoryLimitPages)*65536/2)
	defd(&c.CallTimeout, 2*time.Second)
	defd(&c.InitTimeout, 5*time.Second)
	def(&c.MaxInputBytes, 32<<20)
	def(&c.MaxOutputBytes, 16<<20)
	def(&c.MaxLogBytes, 4<<10)
	def(&c.PoolSize, 4)
	if c.Prewarm == 0 {
		c.Prewarm = 1
	}
	c.Prewarm = min(max(c.Prewarm, 0), c.PoolSize)
	def(&c.MaxConcurrency, DefaultConcurrency())
	defd(&c.QueueTimeout, time.Second)
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.MaxIdleMemory <= 0 {
		c.MaxIdleMemory = 1 << 30
	}
	if c.MaxTenantIdleMemory <= 0 {
		c.MaxTenantIdleMemory = 256 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// defaultCacheDir picks the first usable folder. Configuration is read in
// main, not here: callers that want another folder set Options.CacheDir.
func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		d = filepath.Join(d, "aiaas", "wazero")
		if os.MkdirAll(d, 0o700) == nil {
			return d
		}
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("aiaas-wazero-%d", os.Getuid()))
}

// Module identifies a plugin's wasm by the hex sha256 of its bytes. Load
// is called only when the host has not compiled that sha256 for the
// tenant yet; the bytes it returns must hash to SHA256.
type Module struct {
	SHA256 string
	Load   func(ctx context.Context) ([]byte, error)
}

// Host runs plugins. All its methods are safe for concurrent use.
type Host struct {
	opts  Options
	cache wazero.CompilationCache
	sem   chan struct{} // global guest concurrency
	// memory places instances' linear memories (linearmem.go).
	memory experimental.MemoryAllocator

	allowed map[string]map[string]signature // import module → name → signature

	// idleBytes is the linear memory of all tenants' idle instances
	// (Options.MaxIdleMemory).
	idleBytes atomic.Int64

	mu      sync.Mutex
	tenants map[string]*tenant
	closed  bool

	vmu sync.RWMutex // guards vrt: validations read it, Close clears it
	vrt *sandbox     // validation runtime: uploads are checked here
	// vsem bounds validations in the whole process; vten holds one slot
	// per tenant, so a tenant's uploads are checked one at a time while
	// other tenants' proceed (a module whose start function loops holds
	// its slot until InitTimeout).
	vsem chan struct{}
	vten map[string]chan struct{} // guarded by mu

	// compiling serializes compilations of one module across the
	// runtimes (see check); other modules never wait on it.
	compiling keyedMutex
	shared    *shared // nil without Options.Shared

	stop chan struct{}
	done chan struct{}

	// discarded wakes the scavenger after an instance was thrown away
	// for misbehaving; scavDone closes when the scavenger has stopped.
	discarded chan struct{}
	scavDone  chan struct{}

	// work counts calls, validations and background instantiations in
	// progress: Close waits for them, because closing a wazero runtime
	// while one of its modules runs or instantiates is not safe.
	work   sync.WaitGroup
	bg     context.Context // background instantiations; cancelled by Close
	stopBg context.CancelFunc
}

// enter registers work; it fails once the host is closing.
func (h *Host) enter() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.work.Add(1)
	return nil
}

func (h *Host) exit() { h.work.Done() }

// New returns a Host. The compilation cache folder is created if needed.
// Close it to release the runtimes and the janitor goroutine.
func New(ctx context.Context, opts *Options) (*Host, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("plugins: compilation cache: %w", err)
	}
	cache, err := wazero.NewCompilationCacheWithDir(o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("plugins: compilation cache %s: %w", o.CacheDir, err)
	}
	h := &Host{
		opts:    o,
		cache:   cache,
		sem:     make(chan struct{}, o.MaxConcurrency),
		vsem:    make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		vten:    map[string]chan struct{}{},
		memory:  linearMemory(o.HighWaterBytes, int(min(o.MaxTenantIdleMemory, 128<<20))),
		tenants: make(map[string]*tenant),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),

		discarded: make(chan struct{}, 1),
		scavDone:  make(chan struct{}),
	}
	if o.Shared != nil {
		if h.shared, err = newShared(o.Shared, o.CacheDir, o.Logger.Info); err != nil {
			cache.Close(ctx)
			return nil, err
		}
	}
	h.bg, h.stopBg = context.WithCancel(context.Background())
	h.vrt, err = h.newRuntime(ctx, "")
	if err != nil {
		cache.Close(ctx)
		return nil, err
	}
	h.allowed = h.vrt.allowedImports()
	go h.janitor()
	go h.scavenger()
	return h, nil
}

// Options returns the effective options (defaults filled in). Safe for
// concurrent use.
func (h *Host) Options() Options { return h.opts }

// Close refuses new work, waits for the calls in flight (each ends within
// CallTimeout), cancels background instantiations, stops the janitor and
// closes every runtime. Safe for concurrent use; later calls return nil.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.stopBg()
	close(h.stop)
	<-h.done
	<-h.scavDone
	h.work.Wait()
	h.mu.Lock()
	ts := h.tenants
	h.tenants = nil
	h.mu.Unlock()
	var errs []error
	for _, t := range ts {
		errs = append(errs, t.rt.close(ctx))
	}
	h.vmu.Lock()
	errs = append(errs, h.vrt.close(ctx))
	h.vmu.Unlock()
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

// tenant returns (creating) the tenant's runtime and pools.
func (h *Host) tenant(ctx context.Context, name string) (*tenant, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty tenant", ErrInvalidModule)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if t := h.tenants[name]; t != nil {
		return t, nil
	}
	rt, err := h.newRuntime(ctx, name)
	if err != nil {
		return nil, err
	}
	t := &tenant{h: h, name: name, rt: rt, pools: make(map[string]*pool), share: make(chan struct{}, tenantShare(cap(h.sem)))}
	h.tenants[name] = t
	return t, nil
}

// tenantShare is how many of the host's n guest slots one tenant may
// hold at once: half, so a tenant keeping every call of its own busy (a
// plugin that loops until its deadline) leaves the other half to the
// others.
func tenantShare(n int) int { return max(1, n/2) }

// acquire takes a slot of t's share (t nil: validation, which has none)
// and a global concurrency slot, waiting at most QueueTimeout in all.
func (h *Host) acquire(ctx context.Context, t *tenant) error {
	// The common case takes both at once, without a timer.
	shared := t == nil
	if !shared {
		select {
		case t.share <- struct{}{}:
			shared = true
		default:
		}
	}
	if shared {
		select {
		case h.sem <- struct{}{}:
			return nil
		default:
		}
	}
	tm := time.NewTimer(h.opts.QueueTimeout)
	defer tm.Stop()
	if !shared {
		select {
		case t.share <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-tm.C:
			return fmt.Errorf("%w: tenant %q already runs %d guests, its share of %d", ErrBusy, t.name, cap(t.share), cap(h.sem))
		case <-h.stop:
			return ErrClosed
		}
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		h.releaseShare(t)
		return ctx.Err()
	case <-tm.C:
		h.releaseShare(t)
		return fmt.Errorf("%w: %d guests already running", ErrBusy, cap(h.sem))
	case <-h.stop:
		h.releaseShare(t)
		return ErrClosed
	}
}

func (h *Host) release(t *tenant) {
	<-h.sem
	h.releaseShare(t)
}

func (h *Host) releaseShare(t *tenant) {
	if t != nil {
		<-t.share
	}
}

// janitor closes idle instances.
// scavengeEvery bounds how often the scavenger forces a collection.
const scavengeEvery = 5 * time.Second

// scavenger hands the memory of misbehaving instances back to the OS.
// Their linear memory is unmapped when they close (linearmem.go), but a
// guest that recursed deeply also grew wazero's native call stack, a Go
// slice of up to 400 MB; freed, it would stay in the process's RSS until
// the Go runtime's background scavenger got to it, minutes later. So
// after a discard (coalesced, and at most once per scavengeEvery) it
// forces a collection and returns all free memory: a few milliseconds of
// one core, only when a tenant's plugin traps, times out or meets a limit.
func (h *Host) scavenger() {
	defer close(h.scavDone)
	var last time.Time
	for {
		select {
		case <-h.stop:
			return
		case <-h.discarded:
		}
		// Let the failed call return first: its frames still hold the
		// instance.
		wait := max(100*time.Millisecond, time.Until(last.Add(scavengeEvery)))
		select {
		case <-h.stop:
			return
		case <-time.After(wait):
		}
		debug.FreeOSMemory()
		last = time.Now()
	}
}

// scavengeSoon wakes the scavenger; it never blocks.
func (h *Host) scavengeSoon() {
	select {
	case h.discarded <- struct{}{}:
	default:
	}
}

func (h *Host) janitor() {
	defer close(h.done)
	if h.opts.IdleTimeout < 0 {
		<-h.stop
		return
	}
	tick := time.NewTicker(max(h.opts.IdleTimeout/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-tick.C:
			h.mu.Lock()
			var ps []*pool
			for _, t := range h.tenants {
				t.mu.Lock()
				for _, p := range t.pools {
					ps = append(ps, p)
				}
				t.mu.Unlock()
			}
			h.mu.Unlock()
			for _, p := range ps {
				p.reclaim(now.Add(-h.opts.IdleTimeout))
			}
		}
	}
}
