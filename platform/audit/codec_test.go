package audit

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The scanner's decoding of a line is encoding/json's whenever it accepts
// the line, and it accepts every line the log writes.
func FuzzDecodeRecord(f *testing.F) {
	r := Record{Seq: 7, Time: time.Unix(1700000000, 123456789).UTC(), RequestID: "req-1", Actor: "k1", Action: "infer",
		Object: "models/m/versions/1", Status: 200, LatencyMS: 1.25, Prev: "ab", Hash: "cd", Chain: "c1", Justification: "e/1"}
	f.Add(AppendJSON(nil, &r))
	r.Chain, r.Justification, r.RequestID = "", "", "\"quoted\""
	f.Add(appendRecord(nil, &r))
	for _, s := range []string{
		`{"seq":1,"status":-5,"latency_ms":1e-7}`, `{"Seq":1}`, `{"seq":1,"seq":2}`, `{"status":- 5}`, `{"seq":01}`,
		`{"seq":1.0}`, `{"time":"2026-12-06T10:00:00+02:00"}`, `{"time":"bad"}`, `{"actor":null}`, `{"status":2147483648}`,
		`{"seq":18446744073709551616}`, `{"latency_ms":1e999}`, ` {"seq":3} `, `{"seq":3}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast Record
		if !decodeRecordFast(line, &fast) {
			return
		}
		var slow Record
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("%q: read by the scanner as %+v, refused by encoding/json: %v", line, fast, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nscanner       %+v\nencoding/json %+v", line, fast, slow)
		}
	})
}

func TestDecodeRecordWrittenLines(t *testing.T) {
	for _, r := range []Record{
		{Seq: 1, Time: time.Unix(1, 0).UTC(), Actor: "admin", Action: "tenant.create", Status: 201},
		{Seq: 1 << 60, Time: time.Unix(1700000000, 5).UTC(), RequestID: "x", Actor: "k", Action: "a", Object: "o",
			Justification: "j", Status: 504, LatencyMS: 12345.678, Prev: "p", Hash: "h", Chain: "lambda-1"},
	} {
		var got Record
		if !decodeRecordFast(AppendJSON(nil, &r), &got) || !reflect.DeepEqual(got, r) {
			t.Errorf("%+v read back as %+v", r, got)
		}
	}
}
