package client_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/audit"
	"github.com/aiaas/aiaas/platform/evaluation"
	"github.com/aiaas/aiaas/platform/training"
	"github.com/aiaas/aiaas/sdk/client"
)

// jsonFields lists a struct's JSON field names (embedded structs and
// fields tagged "-" aside).
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestTypesMatchTheServer: the SDK's request and record types have the
// server's JSON fields, so a field the server gains cannot be silently
// missing from the SDK (as forward_inputs once was from PutEndpoint).
func TestTypesMatchTheServer(t *testing.T) {
	for _, c := range []struct {
		name        string
		sdk, server any
	}{
		{"TrainingRequest", client.TrainingRequest{}, training.Request{}},
		{"Network", client.Network{}, training.Network{}},
		{"Layer", client.Layer{}, nn.Layer{}},
		{"Schedule", client.Schedule{}, nn.Schedule{}},
		{"Augment", client.Augment{}, nn.Augment{}},
		{"EvaluationRequest", client.EvaluationRequest{}, evaluation.Request{}},
		{"EvaluationCandidate", client.EvaluationCandidate{}, evaluation.Candidate{}},
		{"EvaluationResult", client.EvaluationResult{}, evaluation.Result{}},
		{"Classification", client.Classification{}, evaluation.Classification{}},
		{"ClassMetrics", client.ClassMetrics{}, evaluation.ClassMetrics{}},
		{"Regression", client.Regression{}, evaluation.Regression{}},
		{"EvaluationLatency", client.EvaluationLatency{}, evaluation.Latency{}},
		{"BatchLatency", client.BatchLatency{}, evaluation.BatchLatency{}},
		{"EvaluationMemory", client.EvaluationMemory{}, evaluation.Memory{}},
		{"EvaluationCost", client.EvaluationCost{}, evaluation.Cost{}},
		{"EvaluationDataset", client.EvaluationDataset{}, platform.EvalDataset{}},
		{"EvaluationProgress", client.EvaluationProgress{}, platform.EvalProgress{}},
		{"AuditRecord", client.AuditRecord{}, audit.Record{}},
	} {
		if got, want := jsonFields(c.sdk), jsonFields(c.server); !slices.Equal(got, want) {
			t.Errorf("%s: the SDK has %v, the server %v", c.name, got, want)
		}
	}
	// A job as the SDK reads it: every field but the echoed request and
	// the bookkeeping time.
	got, want := jsonFields(client.TrainingJob{}), jsonFields(platform.Job{})
	want = slices.DeleteFunc(want, func(f string) bool { return f == "request" || f == "updated" })
	if !slices.Equal(got, want) {
		t.Errorf("TrainingJob: the SDK has %v, the server %v", got, want)
	}
	// An evaluation as the SDK reads it: all but the bookkeeping time.
	got, want = jsonFields(client.Evaluation{}), jsonFields(platform.Evaluation{})
	want = slices.DeleteFunc(want, func(f string) bool { return f == "updated" })
	if !slices.Equal(got, want) {
		t.Errorf("Evaluation: the SDK has %v, the server %v", got, want)
	}
}
