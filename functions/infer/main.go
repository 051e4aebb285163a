// Command infer is the aiaas data-plane Lambda function: API Gateway HTTP
// API (payload 2.0), REST API (1.0) and function URL events for the Open
// Inference Protocol v2 (/v2/...), generate, OpenAI (/openai/v1/...),
// endpoint invocations (/v1/endpoints/{name}/invoke) and explain, served by
// the same platform handler as `aiaas serve`, restricted to the data plane.
// With AIAAS_TENANT_ISOLATION=PER_TENANT (Lambda tenant isolation) it
// refuses any key but the tenant's whose environment it runs in.
//
// Configuration, the store client, the plugin runtime and the platform
// server are built once at init; models load on first use and stay warm
// across invocations. Its IAM role can read the bucket and write only its
// tenants' audit records.
//
// Build: CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./functions/infer
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
	app, err := lambdaapp.Open(context.Background(), "infer", os.Environ(),
		&lambdaapp.Options{Logger: logger, Metrics: os.Stdout, Plane: platform.PlaneData, AfterResponse: true})
	if err != nil {
		// Before lambda.Start: Lambda reports an init failure with this
		// message instead of failing every request.
		fmt.Fprintln(os.Stderr, "infer:", err)
		os.Exit(1)
	}
	lambda.Start(app.HTTP())
}
