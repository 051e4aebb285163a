package tracing

import (
	"encoding/hex"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// maxXRayHeader bounds the header FromXRay parses: the real one is under
// 256 bytes (Root, Parent, Sampled, Lineage).
const maxXRayHeader = 1024

// FromXRay parses an X-Ray trace header as Lambda passes it in
// _X_AMZN_TRACE_ID ("Root=1-5759e988-bd862e3fe1be46a994272793;
// Parent=53995c3f42cd8ad8;Sampled=1") into a remote span context: the X-Ray
// trace id is the W3C trace id with the dash dropped, Parent is the span id.
// ok is false when the header is missing, malformed or has no Parent.
func FromXRay(header string) (sc trace.SpanContext, ok bool) {
	if header == "" || len(header) > maxXRayHeader {
		return sc, false
	}
	var cfg trace.SpanContextConfig
	var haveRoot, haveParent bool
	for field := range strings.SplitSeq(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Root":
			// 1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY: version, epoch seconds, random.
			if len(v) != 35 || v[0] != '1' || v[1] != '-' || v[10] != '-' {
				return sc, false
			}
			if !decodeHex(cfg.TraceID[:4], v[2:10]) || !decodeHex(cfg.TraceID[4:], v[11:]) {
				return sc, false
			}
			haveRoot = true
		case "Parent":
			if len(v) != 16 || !decodeHex(cfg.SpanID[:], v) {
				return sc, false
			}
			haveParent = true
		case "Sampled":
			if v == "1" {
				cfg.TraceFlags = trace.FlagsSampled
			}
		}
	}
	if !haveRoot || !haveParent {
		return sc, false
	}
	cfg.Remote = true
	sc = trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}

func decodeHex(dst []byte, s string) bool {
	if hex.DecodedLen(len(s)) != len(dst) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}
