package platform

import (
	"context"
	"time"

	"github.com/aiaas/aiaas/platform/quota"
)

// QuotaLimiter decides whether a tenant's request may start: it admits it
// (the caller calls release exactly once when the request ends) or refuses
// it with the reason and when to retry, without waiting. The in-process
// quota.Limiter is the default; the Lambda functions pass the DynamoDB one
// (platform/quota/dynamo), whose quotas hold across all their execution
// environments. Implementations must be safe for concurrent use.
type QuotaLimiter interface {
	Acquire(ctx context.Context, tenant string, now time.Time) (d quota.Decision, release func())
}

// localQuota is the in-process limiter as a QuotaLimiter: it does no I/O,
// so it needs no context.
type localQuota struct{ l *quota.Limiter }

func (q localQuota) Acquire(_ context.Context, tenant string, now time.Time) (quota.Decision, func()) {
	return q.l.Acquire(tenant, now)
}
