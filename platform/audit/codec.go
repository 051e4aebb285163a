package audit

import (
	"encoding/json"
	"strconv"
	"unsafe"

	"github.com/aiaas/aiaas/internal/jsonscan"
)

// decodeRecord decodes one line of a segment. A line in the form the log
// writes (appendRecord's: known keys, plain strings, integers) is read by
// a scanner, without encoding/json's reflection and its garbage; any other
// line goes to encoding/json, whose rules (keys matched without case, null,
// escapes) then decide, so both paths give the same record.
//
// The record's strings read by the scanner share line's bytes: line must
// never change afterwards (a segment's bytes never do).
func decodeRecord(line []byte, r *Record) error {
	if decodeRecordFast(line, r) {
		return nil
	}
	*r = Record{}
	return json.Unmarshal(line, r)
}

// decodeRecordFast reports false, leaving r partly set, for any line it
// does not read exactly as encoding/json would.
func decodeRecordFast(line []byte, r *Record) bool {
	s := jsonscan.Scanner{B: line}
	if s.Expect('{') != nil {
		return false
	}
	for first := true; ; first = false {
		more, err := s.More('}', first)
		if err != nil {
			return false
		}
		if !more {
			break
		}
		key, esc, err := s.StrRaw()
		if err != nil || esc || s.Expect(':') != nil {
			return false
		}
		ok := true
		switch string(key) {
		case "seq":
			s.WS()
			r.Seq, ok = uintValue(&s)
		case "time":
			s.WS()
			start := s.Pos
			if _, esc, err := s.StrRaw(); err != nil || esc || r.Time.UnmarshalJSON(line[start:s.Pos]) != nil {
				return false
			}
		case "request_id":
			r.RequestID, ok = plainString(&s)
		case "actor":
			r.Actor, ok = plainString(&s)
		case "action":
			r.Action, ok = plainString(&s)
		case "object":
			r.Object, ok = plainString(&s)
		case "justification":
			r.Justification, ok = plainString(&s)
		case "prev":
			r.Prev, ok = plainString(&s)
		case "hash":
			r.Hash, ok = plainString(&s)
		case "chain":
			r.Chain, ok = plainString(&s)
		case "status":
			var n uint64
			neg := s.Peek() == '-'
			if neg {
				s.Pos++
			}
			if n, ok = uintValue(&s); ok && n <= 1<<31 {
				r.Status = int(n)
				if neg {
					r.Status = -r.Status
				}
			} else {
				ok = false
			}
		case "latency_ms":
			raw, err := s.Num()
			if err != nil {
				return false
			}
			r.LatencyMS, err = strconv.ParseFloat(string(raw), 64)
			ok = err == nil
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return s.AtEnd()
}

// uintValue reads a JSON integer of at most 19 digits without a sign, at
// the scanner's position.
func uintValue(s *jsonscan.Scanner) (uint64, bool) {
	start := s.Pos
	for s.Pos < len(s.B) && '0' <= s.B[s.Pos] && s.B[s.Pos] <= '9' {
		s.Pos++
	}
	n := s.Pos - start
	if n == 0 || n > 19 || (n > 1 && s.B[start] == '0') {
		return 0, false
	}
	if s.Pos < len(s.B) {
		if c := s.B[s.Pos]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(string(s.B[start:s.Pos]), 10, 64)
	return v, err == nil
}

// plainString reads a string without escapes (the log writes escapes only
// for quotes, backslashes and control characters). It shares the
// scanner's bytes (decodeRecord): a page of records read from cached
// segments allocated more for its strings than for anything but the
// answer.
func plainString(s *jsonscan.Scanner) (string, bool) {
	raw, esc, err := s.StrRaw()
	if err != nil || esc {
		return "", false
	}
	if len(raw) == 0 {
		return "", true
	}
	return unsafe.String(&raw[0], len(raw)), true
}

// AppendJSON appends r as a JSON object: the form the log stores (the
// fields in a fixed order, no reflection) and, when set, the chain it was
// read from. It is what a server answers a read of the log with.
func AppendJSON(b []byte, r *Record) []byte {
	b = appendRecord(b, r)
	if r.Chain != "" {
		b = b[:len(b)-1]
		b = append(b, `,"chain":`...)
		b = appendString(b, r.Chain)
		b = append(b, '}')
	}
	return b
}
