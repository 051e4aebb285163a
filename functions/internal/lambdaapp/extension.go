package lambdaapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// afterResponse runs work after an invocation's response has gone to
// Lambda, as an internal extension (the Lambda Extensions API): Lambda
// does not freeze an execution environment until every extension has asked
// for its next event, so what the extension does between an invocation and
// that request — flushing the audit log, exporting spans — happens after
// the client has its answer, and before the environment can be frozen or
// torn down. Without it (registration refused, or not on Lambda) the work
// runs before the response, as it must.
type afterResponse struct {
	api    string // AWS_LAMBDA_RUNTIME_API
	id     string // Lambda-Extension-Identifier
	client *http.Client
	log    *slog.Logger
	// done carries one signal per finished invocation; its work runs when
	// the extension has seen the matching INVOKE event.
	done chan func()
}

// extensionName is what the extension registers as; an internal
// extension's name is free.
const extensionName = "aiaas-after-response"

// registerAfterResponse registers the internal extension for INVOKE
// events. It must run during init, before lambda.Start's first request
// for an invocation.
func registerAfterResponse(ctx context.Context, api string, log *slog.Logger) (*afterResponse, error) {
	e := &afterResponse{api: api, client: &http.Client{}, log: log, done: make(chan func(), 1)}
	body := []byte(`{"events":["INVOKE"]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+api+"/2020-01-01/extension/register", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Lambda-Extension-Name", extensionName)
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := e.client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("register: HTTP %d: %.200s", res.StatusCode, b)
	}
	if e.id = res.Header.Get("Lambda-Extension-Identifier"); e.id == "" {
		return nil, fmt.Errorf("register: no Lambda-Extension-Identifier")
	}
	go e.loop()
	return e, nil
}

// loop asks for the next event, then waits for the invocation it
// announces to finish and runs its work; then asks again, which is what
// lets Lambda freeze the environment.
func (e *afterResponse) loop() {
	for {
		ev, err := e.next()
		if err != nil {
			// The API answers until the environment shuts down; an
			// error here leaves nothing to do but stop (invocations
			// then block on done: see finish).
			e.log.Error("lambda extension: next event failed; audit flushes move back before the response", "err", err)
			close(e.done)
			return
		}
		if ev.EventType != "INVOKE" {
			continue
		}
		work, ok := <-e.done
		if !ok {
			return
		}
		work()
	}
}

type extensionEvent struct {
	EventType string `json:"eventType"`
	RequestID string `json:"requestId"`
}

func (e *afterResponse) next() (extensionEvent, error) {
	var ev extensionEvent
	req, err := http.NewRequest(http.MethodGet, "http://"+e.api+"/2020-01-01/extension/event/next", nil)
	if err != nil {
		return ev, err
	}
	req.Header.Set("Lambda-Extension-Identifier", e.id)
	res, err := e.client.Do(req)
	if err != nil {
		return ev, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return ev, err
	}
	if res.StatusCode != http.StatusOK {
		return ev, fmt.Errorf("HTTP %d: %.200s", res.StatusCode, b)
	}
	return ev, json.Unmarshal(b, &ev)
}

// finish hands an invocation's post-response work to the extension; it
// reports false (and the caller runs work itself, before answering) when
// the extension has stopped.
func (e *afterResponse) finish(work func()) (ok bool) {
	defer func() {
		if recover() != nil { // done was closed: the extension stopped
			ok = false
		}
	}()
	e.done <- work
	return true
}
