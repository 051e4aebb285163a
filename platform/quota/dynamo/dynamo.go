// Package dynamo enforces each tenant's request rate and concurrency across
// every process that serves it — all the Lambda execution environments of
// a deployment — with the quota state in one DynamoDB table.
//
// # Overview
//
// A [Limiter] has the same contract as the in-process [quota.Limiter]:
// [Limiter.Acquire] never blocks on a queue; it admits a request, and the
// caller must call the returned release func when it ends, or refuses it
// with the reason and how long to wait.
//
// Each tenant is one item, keyed by the tenant ID:
//
//   - tat: the rate quota as GCRA (the generic cell rate algorithm, which
//     is a token bucket written as one number): the "theoretical arrival
//     time" in Unix nanoseconds. A request at now is admitted when
//     max(tat, now) + T - now <= Burst·T, T = 1/RPS, and sets tat to
//     max(tat, now) + T. Tokens left = (now + Burst·T - tat)/T.
//   - n and l_<lease>: the concurrency quota as leases. Each admitted
//     request adds an attribute l_<lease> = its expiry (Unix ms) and adds 1
//     to n, in the same write; release removes the attribute and subtracts
//     1, on the condition that the attribute still exists, so a release
//     counts once. A request of an environment that dies (a Lambda timeout,
//     an OOM) is never released: its lease stops counting at its expiry,
//     when the next acquire that finds the tenant at its limit reads the
//     item and removes every expired lease in the write that admits it.
//   - expires: the table's TTL attribute, set past the moment the bucket is
//     full again and every lease has expired, when the item means nothing:
//     DynamoDB deletes idle tenants' items on its own.
//
// Every write is one UpdateItem whose ConditionExpression is the quota
// itself ("tat <= :max AND n < :limit"), evaluated by DynamoDB on the
// item's current value, not a comparison with a version read before: many
// environments admitting the same tenant at once all succeed, serialised
// by DynamoDB, until the quota is reached, and no interleaving can admit
// more. The one branch the write cannot choose by itself (whether the
// bucket was already full, tat <= now, or not) is guessed from the last tat
// this process saw; a wrong guess or a refusal costs one strongly
// consistent GetItem and, unless refused, one more write.
//
// Cost: one UpdateItem per acquire and one per release (two write request
// units for an item under 1 KB, i.e. up to ~30 leases) when the guess is
// right, which it is unless the tenant is at its limit or changes pace.
//
// When DynamoDB cannot be reached, answers 5xx or throttles, the Limiter
// fails open to an in-process [quota.Limiter] with the same options —
// each environment then enforces the quota on its own, as before this
// package existed — for [Options.Cooldown], logs once per cooldown, and
// counts the decisions made so ([Limiter.Fallbacks]).
//
// All methods are safe for concurrent use.
package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiaas/aiaas/internal/dynamodb"
	"github.com/aiaas/aiaas/platform/quota"
)

// HashKey is the table's partition key (a string: the tenant ID).
const HashKey = "tenant"

// TTLAttribute is the attribute the table's TTL is enabled on (Unix seconds).
const TTLAttribute = "expires"

// maxLeases bounds Concurrency: the item holds one attribute per lease and
// DynamoDB items are at most 400 KB (and every 1 KB is a write unit).
const maxLeases = 1000

// maxAttempts bounds the writes of one Acquire: the conditions only fail
// when the tenant is at a limit or the guess was wrong, so more means heavy
// contention at the limit, where a refusal is the right answer anyway.
const maxAttempts = 4

// Options configures a Limiter.
type Options struct {
	// Quota is the per-tenant quota; zero fields disable that quota, as in
	// the in-process limiter, which is also the fallback.
	Quota quota.Options
	// Lease is how long an unreleased request counts against
	// concurrency: longer than any request may run (the request timeout,
	// the function timeout). Default 1 minute.
	Lease time.Duration
	// CallTimeout bounds each DynamoDB call; default 500 ms.
	CallTimeout time.Duration
	// Cooldown is how long the Limiter decides in process after DynamoDB
	// failed, before it tries again; default 5 s.
	Cooldown time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

// Limiter is a quota limiter whose state is shared through DynamoDB.
type Limiter struct {
	db    *dynamodb.Client
	table string
	opts  Options
	rate  bool
	conc  bool
	t     int64 // ns per token
	burst int64
	env   string // this process's lease prefix
	seq   atomic.Uint64
	local *quota.Limiter // the fallback

	down      atomic.Int64 // Unix ns until which DynamoDB is not asked
	fallbacks atomic.Uint64
	mu        sync.Mutex
	tat       map[string]int64 // last tat seen per tenant: the branch guess
}

// New returns a Limiter on table through db. A nil opts disables every
// quota (Acquire then never calls DynamoDB).
func New(db *dynamodb.Client, table string, opts *Options) (*Limiter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if db == nil || table == "" {
		return nil, errors.New("dynamo: a client and a table name are required")
	}
	if o.Quota.RPS < 0 || o.Quota.Burst < 0 || o.Quota.Concurrency < 0 {
		return nil, fmt.Errorf("dynamo: negative quota %+v", o.Quota)
	}
	if o.Quota.Concurrency > maxLeases {
		return nil, fmt.Errorf("dynamo: concurrency %d over %d: one item holds every lease", o.Quota.Concurrency, maxLeases)
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 500 * time.Millisecond
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	l := &Limiter{
		db: db, table: table, opts: o,
		rate: o.Quota.RPS > 0, conc: o.Quota.Concurrency > 0,
		burst: int64(max(1, o.Quota.Burst)),
		env:   hex.EncodeToString(id[:]),
		local: quota.New(&o.Quota),
		tat:   map[string]int64{},
	}
	if l.rate {
		l.t = max(1, int64(float64(time.Second)/o.Quota.RPS))
	}
	return l, nil
}

// Fallbacks is the number of decisions made in process because DynamoDB
// failed.
func (l *Limiter) Fallbacks() uint64 { return l.fallbacks.Load() }

// Acquire admits one request of tenant at now, or refuses it. When d.OK the
// caller must call release exactly once when the request ends; release
// writes to DynamoDB (bounded by CallTimeout, not by ctx's cancellation).
func (l *Limiter) Acquire(ctx context.Context, tenant string, now time.Time) (d quota.Decision, release func()) {
	if !l.rate && !l.conc {
		return quota.Decision{OK: true}, func() {}
	}
	if now.UnixNano() < l.down.Load() {
		return l.fallback(tenant, now)
	}
	d, release, err := l.acquire(ctx, tenant, now)
	if err != nil {
		if ctx.Err() != nil {
			// The request itself is gone; not DynamoDB's fault.
			return quota.Decision{Reason: "rate", RetryAfter: time.Second}, func() {}
		}
		l.down.Store(now.Add(l.opts.Cooldown).UnixNano())
		l.opts.Logger.WarnContext(ctx, "quota store unavailable: each environment enforces quotas alone",
			"table", l.table, "cooldown", l.opts.Cooldown, "err", err)
		return l.fallback(tenant, now)
	}
	return d, release
}

func (l *Limiter) fallback(tenant string, now time.Time) (quota.Decision, func()) {
	l.fallbacks.Add(1)
	return l.local.Acquire(tenant, now)
}

// state is what a GetItem told about a tenant.
type state struct {
	tat     int64
	n       int64
	expired []string // lease attribute names past their expiry
}

func (l *Limiter) acquire(ctx context.Context, tenant string, now time.Time) (quota.Decision, func(), error) {
	nowNs := now.UnixNano()
	l.mu.Lock()
	seen, ok := l.tat[tenant]
	l.mu.Unlock()
	full := !ok || seen <= nowNs // the guess: the bucket has refilled
	lease := ""
	if l.conc {
		lease = "l_" + l.env + strconv.FormatUint(l.seq.Add(1), 36)
	}
	var reap []string
	for range maxAttempts {
		in := l.admit(tenant, now, full, lease, reap)
		out, err := l.call(ctx, func(ctx context.Context) (dynamodb.Item, error) { return l.db.UpdateItem(ctx, in) })
		if err == nil {
			return l.admitted(ctx, tenant, now, out, lease), l.releaser(ctx, tenant, lease), nil
		}
		if !errors.Is(err, dynamodb.ErrConditionalCheckFailed) {
			return quota.Decision{}, nil, err
		}
		item, err := l.call(ctx, func(ctx context.Context) (dynamodb.Item, error) {
			return l.db.GetItem(ctx, l.table, dynamodb.Item{HashKey: dynamodb.S(tenant)}, true)
		})
		if err != nil {
			return quota.Decision{}, nil, err
		}
		st := l.parse(item, now)
		l.remember(tenant, st.tat)
		if l.rate && st.tat > nowNs+(l.burst-1)*l.t {
			wait := time.Duration(st.tat - nowNs - (l.burst-1)*l.t)
			return quota.Decision{Reason: "rate", RetryAfter: wait, Limit: int(l.burst), Reset: time.Duration(st.tat - nowNs)}, func() {}, nil
		}
		if l.conc && st.n-int64(len(st.expired)) >= int64(l.opts.Quota.Concurrency) {
			return l.refuseConcurrency(), func() {}, nil
		}
		full = st.tat <= nowNs
		reap = st.expired
		if len(reap) > 32 {
			reap = reap[:32] // keeps the write small; the next acquire reaps more
		}
	}
	// Lost every race at the limit: the tenant is as busy as its quota.
	return quota.Decision{Reason: "rate", RetryAfter: max(time.Duration(l.t), 10*time.Millisecond), Limit: int(l.burst)}, func() {}, nil
}

func (l *Limiter) refuseConcurrency() quota.Decision {
	d := quota.Decision{Reason: "concurrency", RetryAfter: time.Second}
	if l.rate {
		d.Limit = int(l.burst)
	}
	return d
}

// call runs one DynamoDB call under CallTimeout.
func (l *Limiter) call(ctx context.Context, f func(context.Context) (dynamodb.Item, error)) (dynamodb.Item, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.CallTimeout)
	defer cancel()
	return f(ctx)
}

// admit builds the conditional write that admits one request: full says
// whether it assumes the bucket refilled (tat <= now); reap lists expired
// leases to remove in the same write.
func (l *Limiter) admit(tenant string, now time.Time, full bool, lease string, reap []string) *dynamodb.UpdateItemInput {
	nowNs := now.UnixNano()
	names := map[string]string{"#x": TTLAttribute}
	values := dynamodb.Item{}
	var set, cond []string
	if l.rate {
		names["#tat"] = "tat"
		values[":now"] = dynamodb.N(nowNs)
		if full {
			set = append(set, "#tat = :next")
			values[":next"] = dynamodb.N(nowNs + l.t)
			cond = append(cond, "(attribute_not_exists(#tat) OR #tat <= :now)")
		} else {
			set = append(set, "#tat = #tat + :t")
			values[":t"] = dynamodb.N(l.t)
			values[":max"] = dynamodb.N(nowNs + (l.burst-1)*l.t)
			cond = append(cond, "(#tat > :now AND #tat <= :max)")
		}
	}
	expires := now.Add(l.opts.Lease)
	if l.rate {
		expires = expires.Add(time.Duration(l.burst * l.t))
	}
	set = append(set, "#x = :x")
	values[":x"] = dynamodb.N(expires.Unix() + 60)
	expr := ""
	if l.conc {
		names["#n"], names["#l"] = "n", lease
		set = append(set, "#l = :exp")
		values[":exp"] = dynamodb.N(now.Add(l.opts.Lease).UnixMilli())
		values[":d"] = dynamodb.N(1 - int64(len(reap)))
		if len(reap) == 0 {
			values[":lim"] = dynamodb.N(int64(l.opts.Quota.Concurrency))
			cond = append(cond, "(attribute_not_exists(#n) OR #n < :lim)")
		} else {
			values[":lim"] = dynamodb.N(int64(l.opts.Quota.Concurrency + len(reap)))
			c := []string{"#n < :lim"}
			var rm []string
			for i, r := range reap {
				k := "#r" + strconv.Itoa(i)
				names[k] = r
				c = append(c, "attribute_exists("+k+")")
				rm = append(rm, k)
			}
			cond = append(cond, "("+strings.Join(c, " AND ")+")")
			expr = " REMOVE " + strings.Join(rm, ", ")
		}
		expr = " ADD #n :d" + expr
	}
	return &dynamodb.UpdateItemInput{
		TableName:                 l.table,
		Key:                       dynamodb.Item{HashKey: dynamodb.S(tenant)},
		UpdateExpression:          "SET " + strings.Join(set, ", ") + expr,
		ConditionExpression:       strings.Join(cond, " AND "),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              "UPDATED_NEW",
	}
}

// admitted is the Decision of a successful write, whose answer holds the
// new tat.
func (l *Limiter) admitted(ctx context.Context, tenant string, now time.Time, out dynamodb.Item, lease string) quota.Decision {
	d := quota.Decision{OK: true}
	if !l.rate {
		return d
	}
	tat, ok := out["tat"].Int()
	if !ok {
		l.opts.Logger.WarnContext(ctx, "quota store: answer without tat", "tenant", tenant)
		return d
	}
	l.remember(tenant, tat)
	nowNs := now.UnixNano()
	d.Limit = int(l.burst)
	d.Remaining = int(max(0, (nowNs+l.burst*l.t-tat)/l.t))
	d.Reset = time.Duration(max(0, tat-nowNs))
	return d
}

func (l *Limiter) remember(tenant string, tat int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tat) > 100000 {
		clear(l.tat) // only guesses: a wrong one costs a read
	}
	l.tat[tenant] = tat
}

// releaser returns the release func of lease: one conditional write, so a
// lease reaped meanwhile (it expired) is not subtracted twice.
func (l *Limiter) releaser(ctx context.Context, tenant, lease string) func() {
	if lease == "" {
		return func() {}
	}
	ctx = context.WithoutCancel(ctx)
	var once sync.Once
	return func() {
		once.Do(func() {
			in := &dynamodb.UpdateItemInput{
				TableName:                 l.table,
				Key:                       dynamodb.Item{HashKey: dynamodb.S(tenant)},
				UpdateExpression:          "REMOVE #l ADD #n :d",
				ConditionExpression:       "attribute_exists(#l)",
				ExpressionAttributeNames:  map[string]string{"#l": lease, "#n": "n"},
				ExpressionAttributeValues: dynamodb.Item{":d": dynamodb.N(-1)},
			}
			_, err := l.call(ctx, func(ctx context.Context) (dynamodb.Item, error) { return l.db.UpdateItem(ctx, in) })
			if err != nil && !errors.Is(err, dynamodb.ErrConditionalCheckFailed) {
				l.opts.Logger.WarnContext(ctx, "quota store: release failed; the slot counts until its lease expires",
					"tenant", tenant, "lease", l.opts.Lease, "err", err)
			}
		})
	}
}

// parse reads a tenant's item: its tat, its lease count and the leases
// expired at now (oldest first).
func (l *Limiter) parse(item dynamodb.Item, now time.Time) state {
	var st state
	st.tat, _ = item["tat"].Int()
	st.n, _ = item["n"].Int()
	type exp struct {
		name string
		at   int64
	}
	var expired []exp
	ms := now.UnixMilli()
	for k, v := range item {
		if !strings.HasPrefix(k, "l_") {
			continue
		}
		if at, ok := v.Int(); ok && at <= ms {
			expired = append(expired, exp{k, at})
		}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i].at < expired[j].at })
	for _, e := range expired {
		st.expired = append(st.expired, e.name)
	}
	return st
}
