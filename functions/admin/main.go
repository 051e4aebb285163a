// Command admin is the aiaas control-plane Lambda function: the /v1
// management API (tenants, models, plugins, endpoints, training jobs, audit)
// behind the HTTP API: the control plane only — a data-plane route (OIP,
// endpoint invoke, explain) answers 404 naming the infer function's plane,
// and /metrics is CloudWatch EMF, not a route. Its role may write the bucket
// and start the train function asynchronously; the data plane
// (functions/infer) cannot.
//
// Training jobs are not run here: POST /v1/training-jobs answers 202 with a
// job id and hands the job to the train function (AIAAS_TRAIN_FUNCTION) as
// an asynchronous event, because an HTTP API call is cut at 30 s.
//
// Build: CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./functions/admin
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aiaas/aiaas/functions/internal/lambdaapp"
	"github.com/aiaas/aiaas/platform"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func main() {
	logger := lambdacontext.NewLogger()
	opts := &lambdaapp.Options{Logger: logger, Metrics: os.Stdout, Plane: platform.PlaneControl, AfterResponse: true}
	if fn := os.Getenv("AIAAS_TRAIN_FUNCTION"); fn != "" {
		opts.Dispatch = lambdaapp.InvokerFromEnv(fn).Dispatch
	}
	app, err := lambdaapp.Open(context.Background(), "admin", os.Environ(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
	lambda.Start(app.HTTP())
}
