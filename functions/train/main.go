// Command train is the aiaas training Lambda function. It is invoked
// asynchronously (by the admin function, or `aws lambda invoke
// --invocation-type Event`) with {"tenant": "...", "job_id": "..."} for a job
// already queued in the store; it trains, publishes the new model version
// and records the job's outcome in the store, where GET
// /v1/training-jobs/{id} reads it. Training stops max(5 s, 10 %) before the
// function's deadline (the context carries it); the job is then
// checkpointed and continued by a new invocation of this function, up to
// platform.MaxJobContinuations times, so training is not bounded by
// Lambda's 15 minutes. Past that (or with AIAAS_TRAIN_CONTINUE=off) it
// publishes the model trained so far marked "stopped": "deadline", or fails
// with the reason when not one epoch fit; see infra/README.md. Its spans are
// exported before each invocation returns.
//
// The same event runs an evaluation (job ids starting with "e", from POST
// /v1/evaluations). The function is also its own failure destination:
// Lambda's record of an invocation that crashed, ran out of memory or
// timed out ({"requestContext", "requestPayload", "responsePayload"}) marks
// that job failed with Lambda's reason. A running job writes a heartbeat,
// so one whose process died is reported failed after AIAAS_JOB_STALE.
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
	opts := &lambdaapp.Options{Logger: logger, Metrics: os.Stdout, NoPlugins: true}
	// A job the function's deadline stops is checkpointed and continued by
	// a new invocation of this function (an asynchronous Invoke of
	// itself; the template grants it lambda:InvokeFunction on itself).
	// AIAAS_TRAIN_CONTINUE=off publishes what was trained instead.
	if fn := os.Getenv("AWS_LAMBDA_FUNCTION_NAME"); fn != "" && os.Getenv("AIAAS_TRAIN_CONTINUE") != "off" {
		if self := os.Getenv("AIAAS_TRAIN_FUNCTION"); self != "" {
			fn = self // tests: the emulator's name for it
		}
		opts.Dispatch = lambdaapp.InvokerFromEnv(fn).Dispatch
	}
	app, err := lambdaapp.Open(context.Background(), "train", os.Environ(), opts)
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
