// Command infer is the aiaas data-plane Lambda function: API Gateway HTTP
// API (payload 2.0), REST API (1.0) and function URL events for the Open
// Inference Protocol v2 (/v2/...) and endpoint invocations
// (/v1/endpoints/{name}/invoke), served by the same platform handler as
// `aiaas serve`.
//
// Configuration, the store client, the plugin runtime and the platform
// server are built once at init; models load on first use and stay warm
// across invocations. Its IAM role can only read the bucket.
//
// Build: CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./functions/infer
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
	app, err := lambdaapp.Open(context.Background(), "infer", os.Environ(),
		&lambdaapp.Options{Logger: logger, Metrics: os.Stdout})
	if err != nil {
		// Before lambda.Start: Lambda reports an init failure with this
		// message instead of failing every request.
		fmt.Fprintln(os.Stderr, "infer:", err)
		os.Exit(1)
	}
	lambda.Start(app.HTTP())
}
