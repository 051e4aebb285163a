package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A tenant creating models in a loop adds at most maxModelSeries model
// labels to /metrics; another tenant's names are counted apart.
func TestModelLabelsBounded(t *testing.T) {
	m := New(nil)
	for i := range 3 * maxModelSeries {
		m.Request("a", "infer", fmt.Sprint("m", i), 200, time.Millisecond)
	}
	m.Request("a", "infer", "m0", 200, time.Millisecond) // an early name keeps its label
	m.Request("b", "infer", "mine", 200, time.Millisecond)
	var sb strings.Builder
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "aiaas_requests_total" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			models[labels["tenant"]+"/"+labels["model"]] = true
			if labels["tenant"]+"/"+labels["model"] == "a/"+otherModels && metric.GetCounter().GetValue() != 2*maxModelSeries {
				fmt.Fprintf(&sb, "a's other models counted %v times, want %d; ", metric.GetCounter().GetValue(), 2*maxModelSeries)
			}
		}
	}
	if len(models) != maxModelSeries+2 || !models["a/m0"] || !models["a/"+otherModels] || !models["b/mine"] {
		t.Fatalf("%d model series (want %d): %v", len(models), maxModelSeries+2, models)
	}
	if sb.Len() > 0 {
		t.Fatal(sb.String())
	}
}
