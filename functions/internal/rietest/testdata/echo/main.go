// Command echo is a tiny Lambda function for testing the rietest harness and
// the apigw adapter under the real Runtime Interface Emulator: it answers
// with what it received.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"

	"github.com/aiaas/aiaas/functions/internal/apigw"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("echo: asked to panic") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1"})
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method":    r.Method,
			"uri":       r.RequestURI,
			"requestId": r.Header.Get("X-Request-Id"),
			"cookie":    r.Header.Get("Cookie"),
			"body":      body, // base64 in JSON, so binary survives
			"greeting":  os.Getenv("ECHO_GREETING"),
		})
	})
	lambda.Start(apigw.New(mux, nil))
}
