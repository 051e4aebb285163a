package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/aiaas/aiaas/internal/deadline"
	"github.com/aiaas/aiaas/nn/kernels"
	"github.com/aiaas/aiaas/platform/audit"
	"github.com/aiaas/aiaas/platform/internal/auth"
	"github.com/aiaas/aiaas/platform/tracing"
)

// Every request first takes its turn for a processor (withTurn, see
// turns.go). Every route is then its handler wrapped in the middleware
// below, one concern each, outermost first:
//
//	compressResponses   Accept-Encoding: gzip answers
//	withRequestID       the request's id and its reqInfo, shared by all below
//	withObserve         status, metrics, log line, audit record; holds a
//	                    control-plane answer until its record is durable
//	withDeadline        the request timeout and the trace span
//	withRecover         a panic becomes a 500 and a log line
//	withAuth            the key: principal, scope, execution tenant
//	withQuota           the tenant's rate and concurrency
//	withShare           the tenant's share of the CPUs beside others
//	                    (public routes: withShare right above withBody)
//	withAuditPromise    promise the tenant's audit log a record is coming
//	withBody            size limit, Content-Encoding, the memory budget
//	handle              the handler's error becomes the JSON error answer
//
// They talk through the request's *reqInfo (the principal, the recorder,
// what the handler acted on), so none of them adds a context layer of its
// own.
func (s *Server) chain(pattern string, acc access, action string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	var next http.Handler = s.handle(h)
	next = s.withBody(action, next)
	if acc != public {
		next = s.withAuditPromise(next)
		next = s.withShare(next)
		next = s.withQuota(next)
		next = s.withAuth(acc, next)
	} else {
		next = s.withShare(next)
	}
	next = s.withRecover(next)
	next = s.withDeadline(routeOf(pattern), next)
	next = s.withObserve(acc, next)
	next = withRequestID(action, next)
	return compressResponses(next)
}

// reqInfo carries one request's facts between the middleware and the
// handler.
type reqInfo struct {
	id, action    string
	start         time.Time
	p             *auth.Principal // set by withAuth; nil on public routes
	rec           *statusRecorder // set by withObserve, to recorder
	recorder      statusRecorder
	idHeader      [1]string // X-Request-Id's value slice, allocated with the rest
	object, model string
	tenant        string // for admin actions: the tenant acted upon
	justification string // what the caller cited for the action (audit)
}

type reqInfoKey struct{}

func infoOf(ctx context.Context) *reqInfo {
	i, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	if i == nil {
		return &reqInfo{}
	}
	return i
}

func requestID(ctx context.Context) string { return infoOf(ctx).id }

// setAuditObject names the object a request acted on.
func setAuditObject(r *http.Request, object string) { infoOf(r.Context()).object = object }

// principalOf is the caller withAuth authenticated, or nil.
func principalOf(ctx context.Context) *auth.Principal {
	i, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	if i == nil {
		return nil
	}
	return i.p
}

// tenantOf is the tenant a request acts as ("" for the admin and on public
// routes).
func (i *reqInfo) tenantOf() string {
	if i.p == nil || i.p.Admin {
		return ""
	}
	return i.p.Tenant
}

// withRequestID starts the request's reqInfo under the client's
// X-Request-Id when it is plain and short, else a new one, and echoes it.
func withRequestID(action string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqInfo{id: r.Header.Get("X-Request-Id"), action: action, start: time.Now()}
		if !validRequestID(info.id) {
			info.id = newRequestID()
		}
		info.idHeader[0] = info.id
		w.Header()["X-Request-Id"] = info.idHeader[:]
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info)))
	})
}

// withObserve records the outcome of every request: the metrics, the log
// line and, for an authenticated caller, the audit record. A control-plane
// change is answered only once its audit record is written: its answer is
// held by the recorder until then.
func (s *Server) withObserve(acc access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoOf(r.Context())
		durable := (acc == manage || acc == admin) && r.Method != http.MethodGet && r.Method != http.MethodHead
		info.recorder = statusRecorder{ResponseWriter: w, hold: durable}
		rec := &info.recorder
		info.rec = rec
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 { // only a middleware that answered nothing gets here
			status = http.StatusOK
		}
		elapsed := time.Since(info.start)
		tenant := info.tenantOf()
		s.metrics.Request(tenant, info.action, info.model, status, elapsed)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		// Enabled first: the arguments of a line the level drops would
		// still be boxed, five allocations on every request.
		if s.log.Enabled(r.Context(), level) {
			s.log.Log(r.Context(), level, "request", "request_id", info.id, "tenant", tenant, "action", info.action,
				"status", status, "ms", float64(elapsed.Microseconds())/1000)
		}
		if p := info.p; p != nil && acc != public {
			auditTenant := tenant
			if p.Admin && info.tenant != "" {
				auditTenant = info.tenant
			}
			if auditTenant != "" {
				s.audit.Record(auditTenant, audit.Record{
					Time: info.start, RequestID: info.id, Actor: p.KeyID, Action: info.action, Object: info.object,
					Status: status, LatencyMS: float64(elapsed.Microseconds()) / 1000, Justification: info.justification,
				})
				if durable && heldStatus(status) {
					fctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditFlushTimeout)
					if err := s.audit.FlushTenant(fctx, auditTenant); err != nil {
						// The change is made and cannot be undone: answer it;
						// the record stays queued and is retried.
						s.log.Error("audit record of a control-plane action not written before its answer; queued for retry",
							"request_id", info.id, "tenant", auditTenant, "action", info.action, "err", err)
					}
					cancel()
				}
			}
		}
		rec.commit()
	})
}

// withDeadline bounds the request by the configured timeout and runs it
// in a trace span named by its route.
func (s *Server) withDeadline(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A timer only if something waits on the deadline: most requests
		// just ask ctx.Err() between steps (internal/deadline).
		dl := deadline.New(r.Context(), s.cfg.RequestTimeout)
		defer dl.Release()
		ctx, span := tracing.StartHTTP(dl, s.tracer, r, route)
		next.ServeHTTP(w, r.WithContext(ctx))
		info := infoOf(ctx)
		status := http.StatusOK
		if info.rec != nil && info.rec.status != 0 {
			status = info.rec.status
		}
		tracing.EndHTTP(span, status, info.id, info.tenantOf())
	})
}

// withRecover turns a handler's panic into a 500 (when nothing was sent
// yet) and a log line with the stack; the server keeps serving.
func (s *Server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			info := infoOf(r.Context())
			s.log.Error("panic in handler", "request_id", info.id, "action", info.action, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if info.rec == nil || info.rec.status == 0 {
				writeError(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withAuth authenticates the key and checks that it may use the route:
// the admin key only the admin routes, a tenant's key only its tenant's
// routes with the scope they need, and only in an execution environment
// of its own tenant.
func (s *Server) withAuth(acc access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := s.authenticate(r)
		if err == nil {
			err = ap.May(acc)
		}
		if err == nil {
			err = mayRunHere(r.Context(), &ap)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		infoOf(r.Context()).p = &ap
		next.ServeHTTP(w, r)
	})
}

// mayRunHere reports why p may not be served by this execution
// environment (WithExecutionTenant), or nil.
func mayRunHere(ctx context.Context, p *auth.Principal) error {
	if id, ok := ctx.Value(execTenantKey{}).(string); ok && (p.Admin || p.Tenant != id) {
		if id == "" {
			return httpErr(http.StatusBadRequest, "this deployment runs each tenant in environments of its own: send your tenant ID in the X-Aiaas-Tenant header")
		}
		return httpErr(http.StatusForbidden, "this execution environment serves tenant %q, not this key's; send your own tenant ID in the X-Aiaas-Tenant header", id)
	}
	return nil
}

// withQuota holds a tenant's request to its rate and concurrency quota:
// 429 with Retry-After when over it, the X-RateLimit headers always.
func (s *Server) withQuota(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoOf(r.Context())
		tenant := info.tenantOf()
		if tenant == "" {
			next.ServeHTTP(w, r)
			return
		}
		d, release := s.quota.Acquire(r.Context(), tenant, info.start)
		setRateHeaders(w.Header(), d)
		if !d.OK {
			s.metrics.Throttled(tenant, d.Reason)
			if d.Reason == "rate" {
				s.holdRefusal(r.Context(), d.RetryAfter)
			}
			writeError(w, r, &Error{Status: http.StatusTooManyRequests, RetryAfter: d.RetryAfter,
				Msg: fmt.Sprintf("over the tenant's %s quota; retry after %s", d.Reason, d.RetryAfter.Round(time.Millisecond))})
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// holdRefusal waits until a refused request's retry would be due (at
// most maxRefusalHold) before it is answered: a client looping on 429s
// then sends at about its quota's rate instead of as fast as the server
// can refuse, and the refusals stop taking the cores from other tenants.
// At most maxHeldRefusals wait at once in the process (a goroutine and a
// timer each); past that a refusal is answered at once, as before.
func (s *Server) holdRefusal(ctx context.Context, retry time.Duration) {
	if s.holds == nil { // Options.AnswerRefusalsAtOnce
		return
	}
	select {
	case s.holds <- struct{}{}:
	default:
		return
	}
	defer func() { <-s.holds }()
	t := time.NewTimer(min(retry, maxRefusalHold))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

const (
	maxRefusalHold  = time.Second
	maxHeldRefusals = 1024
)

// withShare runs a tenant's request once the tenant is within its share
// of the CPUs (internal/share): while other tenants are active, the
// tenant's requests past its share wait, in order, for one of its own to
// end. A request whose deadline passes while it waits answers 504.
func (s *Server) withShare(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.share == nil {
			next.ServeHTTP(w, r)
			return
		}
		tenant := infoOf(r.Context()).tenantOf()
		if tenant == "" {
			// Probes, server metadata and the operator's routes share
			// as one more tenant: a tenant's load must not keep the
			// readiness probe from answering.
			tenant = shareUntenanted
		}
		if err := s.share.Enter(r.Context(), tenant); err != nil {
			writeError(w, r, fmt.Errorf("waiting for the tenant's share of the CPUs while other tenants are active: %w", err))
			return
		}
		defer s.share.Leave(tenant)
		kernels.SetMaxHelpers(s.helpersWhile(s.share.Active(shareUntenanted)))
		next.ServeHTTP(w, r)
	})
}

// helpersWhile is the kernels' helper limit while n tenants are active:
// none alone; with several, each product keeps to its tenant's share of
// the processors (GOMAXPROCS/n, its caller included), so a tenant's
// 700-row product no longer fills both cores beside another tenant's
// requests (and the client that waits for them).
func (s *Server) helpersWhile(n int) int {
	if n <= 1 {
		return -1
	}
	return max(0, runtime.GOMAXPROCS(0)/n-1)
}

// shareUntenanted is the share gate's name for requests of no tenant; a
// tenant id is "t" and hex, so it cannot collide.
const shareUntenanted = "(untenanted)"

// withAuditPromise tells the tenant's audit log a record is coming before
// the request runs: its record is written after the answer, and a crash
// in between must show in verify.
func (s *Server) withAuditPromise(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoOf(r.Context())
		if tenant := info.tenantOf(); tenant != "" {
			if err := s.audit.Promise(r.Context(), tenant); err != nil {
				s.log.Warn("audit promise failed", "request_id", info.id, "err", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withBody bounds the request body by the route's limit (the inflated
// bytes too, for a Content-Encoding) and counts it against the process's
// body budget under the tenant.
func (s *Server) withBody(action string, next http.Handler) http.Handler {
	limit := s.bodyLimit(action)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := http.MaxBytesReader(w, r.Body, limit)
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			dec, err := decodedBody(ce, body)
			if err != nil {
				writeError(w, r, err)
				return
			}
			// The limit holds for the inflated bytes too: a small
			// compressed body cannot become a large one.
			body = http.MaxBytesReader(w, dec, limit)
			r.Header.Del("Content-Encoding")
			r.ContentLength = -1
		}
		bb := &budgetedBody{ReadCloser: body, b: s.bodies, share: s.share, tenant: infoOf(r.Context()).tenantOf()}
		defer bb.done()
		r.Body = bb
		next.ServeHTTP(w, r)
	})
}

// handle runs a handler and answers its error: the status from the error
// (errors.go), a log line for a 5xx, nothing more if the handler had
// already started its answer; 200 if it answered nothing.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoOf(r.Context())
		err := h(w, r)
		started := info.rec != nil && info.rec.status != 0
		switch {
		case err != nil && started:
			s.log.Warn("error after response started", "request_id", info.id, "err", err)
		case err != nil:
			if st := statusOf(err); st >= 500 && !clientGone(r, err) {
				s.log.Error("request failed", "request_id", info.id, "action", info.action, "status", st, "err", err)
			}
			writeError(w, r, bodyErr(err))
		case !started:
			w.WriteHeader(http.StatusOK)
		}
		// Compress and send the answer's last block here, inside the
		// tenant's share, not in compressResponses once the share is left
		// (a held control-plane answer is written later, by withObserve).
		if info.rec == nil || !info.rec.hold {
			finishCompression(w)
		}
	})
}
