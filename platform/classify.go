package platform

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/aiaas/aiaas/platform/oip"
)

// classificationParam is the requested-output parameter of Triton's
// classification extension; tritonclient's InferRequestedOutput sends its
// class_count argument under this name.
const classificationParam = "classification"

// classifyOutputs applies Triton's classification extension to the
// outputs whose request asked for it: such an output becomes BYTES of
// shape [batch, k] (or [k] for a rank-1 output), each row's k highest
// values as "value:index" or "value:index:label", highest first. k is
// the requested count, capped at the output's classes as Triton caps it.
// labels name the classes of the model's first output, named first.
func classifyOutputs(outs []oip.ResponseOutput, req *oip.InferenceRequest, first string, labels []string) error {
	for _, ro := range req.Outputs {
		v, ok := ro.Parameters[classificationParam]
		if !ok {
			continue
		}
		k, err := classCount(ro.Name, v)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(outs, func(o oip.ResponseOutput) bool { return o.Name == ro.Name })
		if i < 0 {
			continue // the caller refused unknown names already
		}
		var lb []string
		if ro.Name == first {
			lb = labels
		}
		if err := classify(&outs[i], k, lb); err != nil {
			return err
		}
	}
	return nil
}

// classCount reads the classification parameter: a positive integer.
func classCount(output string, v any) (int, error) {
	n, ok := v.(json.Number)
	var k int64
	var err error
	if ok {
		k, err = strconv.ParseInt(string(n), 10, 64)
	}
	if !ok || err != nil || k <= 0 {
		return 0, httpErr(http.StatusBadRequest, "output %q: parameter classification must be a positive integer (the number of classes to return), got %s", truncate(output, 64), truncate(paramString(v), 32))
	}
	return int(min(k, 1<<30)), nil
}

func paramString(v any) string {
	switch t := v.(type) {
	case string:
		return strconv.Quote(t)
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return string(t)
	}
	return "?"
}

// classify turns one output into its top-k classifications in place.
func classify(o *oip.ResponseOutput, k int, labels []string) error {
	if o.Datatype == oip.BYTES || (o.F32 == nil && o.I64 == nil) {
		return httpErr(http.StatusBadRequest, "output %q: classification needs a numeric output; this one is %s", o.Name, o.Datatype)
	}
	var rows, classes int
	switch len(o.Shape) {
	case 1:
		rows, classes = 1, int(o.Shape[0])
	case 2:
		rows, classes = int(o.Shape[0]), int(o.Shape[1])
	default:
		return httpErr(http.StatusBadRequest, "output %q has shape %v: classification needs one row of class scores per batch item ([batch, classes] or [classes])", o.Name, o.Shape)
	}
	n := len(o.F32)
	if o.I64 != nil {
		n = len(o.I64)
	}
	if classes <= 0 || rows*classes != n {
		return httpErr(http.StatusBadRequest, "output %q has shape %v: nothing to classify", o.Name, o.Shape)
	}
	k = min(k, classes)
	value := func(j int) float64 {
		if o.I64 != nil {
			return float64(o.I64[j])
		}
		return float64(o.F32[j])
	}
	idx := make([]int, classes)
	res := make([][]byte, 0, rows*k)
	for r := 0; r < rows; r++ {
		base := r * classes
		for j := range idx {
			idx[j] = j
		}
		// Highest first; equal values by index, so answers are stable.
		slices.SortStableFunc(idx, func(a, b int) int {
			va, vb := value(base+a), value(base+b)
			switch {
			case va > vb:
				return -1
			case va < vb:
				return 1
			}
			return 0
		})
		for _, c := range idx[:k] {
			var s []byte
			// Triton writes the value with C++'s std::to_string: six
			// decimals for floats, plain digits for integers.
			if o.I64 != nil {
				s = strconv.AppendInt(s, o.I64[base+c], 10)
			} else {
				s = strconv.AppendFloat(s, float64(o.F32[base+c]), 'f', 6, 32)
			}
			s = append(s, ':')
			s = strconv.AppendInt(s, int64(c), 10)
			if c < len(labels) && labels[c] != "" {
				s = append(s, ':')
				s = append(s, labels[c]...)
			}
			res = append(res, s)
		}
	}
	if len(o.Shape) == 1 {
		o.Shape = []int64{int64(k)}
	} else {
		o.Shape = []int64{int64(rows), int64(k)}
	}
	o.Datatype, o.F32, o.I64, o.Bytes = oip.BYTES, nil, nil, res
	return nil
}
