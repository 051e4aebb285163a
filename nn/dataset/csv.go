package dataset

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ReadCSV reads rows of "f1,f2,...,fk,label" (RFC 4180 quoting; gzip is
// detected and undone). A first row with any non-numeric field is taken as a
// header and skipped. Every row must have the same number of fields, at least
// two. Features must be finite numbers within float32 range. The label is a
// class in [0, MaxClasses) written as an integer (Classes = largest + 1),
// or, with opts.Regression, any finite number stored in Targets.
//
// Errors name the 1-based line and column at fault. Safe for concurrent use
// on distinct readers.
func ReadCSV(r io.Reader, opts *Options) (*Set, error) {
	o := opts.withDefaults()
	src, err := open(r, o.MaxBytes, "csv")
	if err != nil {
		return nil, err
	}
	// A UTF-8 byte order mark (spreadsheet exports write one) would
	// otherwise make the first row look like a header and drop it.
	br := bufio.NewReader(src)
	if bom, _ := br.Peek(3); string(bom) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked here, to say which line and how
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true

	s := &Set{}
	cols := 0
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, err
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if errors.Is(pe.Err, ErrTooLarge) {
					return nil, pe.Err
				}
				return nil, fmt.Errorf("%w: csv line %d column %d: %v", ErrFormat, pe.Line, pe.Column, pe.Err)
			}
			return nil, fmt.Errorf("%w: csv: %v", ErrFormat, err)
		}
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			cols = len(rec)
			if cols < 2 {
				return nil, fmt.Errorf("%w: csv line %d: %d column, need at least one feature and a label", ErrFormat, line, cols)
			}
			if cols-1 > o.MaxFeatures {
				return nil, fmt.Errorf("%w: csv line %d: %d features, limit %d", ErrTooLarge, line, cols-1, o.MaxFeatures)
			}
			s.Features = cols - 1
			if isHeader(rec) {
				continue
			}
		}
		if len(rec) != cols {
			return nil, fmt.Errorf("%w: csv line %d: %d columns, want %d like the first row", ErrFormat, line, len(rec), cols)
		}
		if s.N >= o.MaxRows {
			return nil, fmt.Errorf("%w: csv line %d: more than %d rows", ErrTooLarge, line, o.MaxRows)
		}
		if int64(s.N+1)*int64(cols-1) > o.MaxValues {
			return nil, fmt.Errorf("%w: csv line %d: more than %d feature values in all", ErrTooLarge, line, o.MaxValues)
		}
		if !o.CheckOnly {
			if err := grow(&s.X, cols-1, o.Reserve); err != nil {
				return nil, fmt.Errorf("csv line %d: %w", line, err)
			}
			if o.Regression {
				err = grow(&s.Targets, 1, o.Reserve)
			} else {
				err = grow(&s.Y, 1, o.Reserve)
			}
			if err != nil {
				return nil, fmt.Errorf("csv line %d: %w", line, err)
			}
		}
		for j, f := range rec[:cols-1] {
			v, err := parseFinite(f, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: csv line %d column %d: %v", ErrFormat, line, j+1, err)
			}
			if !o.CheckOnly {
				s.X = append(s.X, float32(v))
			}
		}
		lf := rec[cols-1]
		if o.Regression {
			v, err := parseFinite(lf, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: csv line %d column %d (target): %v", ErrFormat, line, cols, err)
			}
			if !o.CheckOnly {
				s.Targets = append(s.Targets, float32(v))
			}
		} else {
			c, err := parseLabel(lf, o.MaxClasses)
			if err != nil {
				if errors.Is(err, ErrTooLarge) {
					return nil, fmt.Errorf("csv line %d column %d (label): %w", line, cols, err)
				}
				return nil, fmt.Errorf("%w: csv line %d column %d (label): %v", ErrFormat, line, cols, err)
			}
			if !o.CheckOnly {
				s.Y = append(s.Y, int32(c))
			}
			s.Classes = max(s.Classes, c+1)
		}
		s.N++
	}
	if s.N == 0 {
		return nil, fmt.Errorf("%w: csv: no data rows", ErrFormat)
	}
	return s, nil
}

// grow makes room for n more elements in *s, 4 bytes each, calling
// reserve first (if set) for twice what the larger array adds: the array
// it replaces stays on the heap until the collector frees it. It grows
// by a quarter, as append does for large slices.
func grow[T float32 | int32](s *[]T, n int, reserve func(int64) error) error {
	if len(*s)+n <= cap(*s) {
		return nil
	}
	c := max(cap(*s)+cap(*s)/4, len(*s)+n, 1024)
	if reserve != nil {
		if err := reserve(2 * 4 * int64(c-cap(*s))); err != nil {
			return err
		}
	}
	ns := make([]T, len(*s), c)
	copy(ns, *s)
	*s = ns
	return nil
}

// isHeader reports whether any field of the first row is not a number,
// which is how pandas-written and hand-written files look alike.
func isHeader(rec []string) bool {
	for _, f := range rec {
		if _, err := strconv.ParseFloat(strings.TrimSpace(f), 64); err != nil {
			return true
		}
	}
	return false
}

// parseFinite parses a float and refuses NaN, ±Inf and values out of the
// range of bitSize, which strconv would otherwise hand back as ±Inf.
func parseFinite(f string, bitSize int) (float64, error) {
	f = strings.TrimSpace(f)
	v, err := strconv.ParseFloat(f, bitSize)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("%q is out of float32 range", f)
		}
		return 0, fmt.Errorf("%q is not a number", f)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", f)
	}
	return v, nil
}

// parseLabel accepts "3" and "3.0" (pandas writes float columns so) but not
// "3.5" or "-1".
func parseLabel(f string, maxClasses int) (int, error) {
	v, err := parseFinite(f, 64)
	if err != nil {
		return 0, err
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("label %q is not an integer class", f)
	}
	if v < 0 {
		return 0, fmt.Errorf("label %q is negative", f)
	}
	if v >= float64(maxClasses) {
		return 0, fmt.Errorf("%w: label %q, limit %d classes", ErrTooLarge, f, maxClasses)
	}
	return int(v), nil
}
