// Command train is the aiaas training Lambda function. It is invoked
// asynchronously (by the admin function, or `aws lambda invoke
// --invocation-type Event`) with {"tenant": "...", "job_id": "..."} for a job
// already queued in the store; it trains within the function's deadline
// (the context carries it: the platform stops training max(5 s, 10 %) before
// it, publishes the model trained so far marked "stopped": "deadline", or
// fails the job with the reason when not one epoch fit; see infra/README.md),
// publishes the new model version and records the job's outcome in the
// store, where GET /v1/training-jobs/{id} reads it. Its spans are exported
// before each invocation returns.
//
// Build: CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./functions/train
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aiaas/aiaas/functions/internal/lambdaapp"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func main() {
	logger := lambdacontext.NewLogger()
	app, err := lambdaapp.Open(context.Background(), "train", os.Environ(),
		&lambdaapp.Options{Logger: logger, Metrics: os.Stdout, NoPlugins: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, ev lambdaapp.JobEvent) error {
		err := app.RunJob(ctx, ev)
		if err != nil {
			logger.ErrorContext(ctx, "training job ended with an error", "tenant", ev.Tenant, "job", ev.JobID, "err", err)
		}
		// The outcome is in the job record; returning the error would make
		// Lambda retry an asynchronous event and train twice.
		if flushErr := app.Server.FlushAudit(context.WithoutCancel(ctx)); flushErr != nil {
			logger.ErrorContext(ctx, "audit flush failed", "err", flushErr)
		}
		return nil
	})
}
