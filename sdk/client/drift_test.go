package client_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform"
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
}
