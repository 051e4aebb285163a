package plugin

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/internal/safetensors"
)

// reset clears the registered handlers (tests only).
func reset() { preprocess, postprocess = nil, nil }

func TestPreprocess(t *testing.T) {
	defer reset()
	reset()
	if _, err := runPreprocess(nil, "", nil); !errors.Is(err, errNoHandler) {
		t.Fatalf("no handler: %v", err)
	}
	HandlePreprocess(func(req Request) ([]Tensor, error) {
		switch req.ContentType {
		case "fail":
			return nil, errors.New("nope")
		case "bad":
			return []Tensor{{Name: "x", DType: "F32", Shape: []int{2}, Data: []byte{1}}}, nil
		}
		return []Tensor{F32("input", []int{1, len(req.Body)}, []float32{float32(len(req.Body))})}, nil
	})
	if kinds() != KindPreprocess {
		t.Fatalf("kinds %d", kinds())
	}
	cases := []struct {
		ct   string
		body []byte
		err  string
	}{
		{"x", []byte{9}, ""},
		{"fail", nil, "nope"},
		{"bad", nil, "invalid tensors"},
	}
	for i, c := range cases {
		out, err := runPreprocess([]byte("kept"), c.ct, c.body)
		if err == nil {
			// The encoding is appended to the caller's buffer.
			if string(out[:4]) != "kept" {
				t.Fatalf("%d: output %q does not start with the buffer passed in", i, out)
			}
			out = out[4:]
		}
		if c.err != "" {
			if err == nil || !contains(err.Error(), c.err) {
				t.Errorf("%d: %v", i, err)
			}
			continue
		}
		f, err := safetensors.Decode(out, nil)
		if err != nil || len(f.Tensors) != 1 || f.Tensors[0].Name != "input" {
			t.Errorf("%d: %v %+v", i, err, f)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("second registration did not panic")
		}
	}()
	HandlePreprocess(func(Request) ([]Tensor, error) { return nil, nil })
}

func TestPostprocess(t *testing.T) {
	defer reset()
	reset()
	HandlePostprocess(func(in Input) (Response, error) {
		return Response{Body: []byte(in.Params["k"] + in.Tensors[0].Name)}, nil
	})
	in := safetensors.Encode(&safetensors.File{Metadata: map[string]string{"k": "3"}, Tensors: []Tensor{F32("out", []int{1}, []float32{1})}})
	resp, err := runPostprocess(in)
	if err != nil || string(resp.Body) != "3out" || resp.ContentType != "application/octet-stream" {
		t.Fatalf("%+v %v", resp, err)
	}
	if _, err := runPostprocess([]byte("garbage")); !errors.Is(err, safetensors.ErrFormat) {
		t.Fatalf("garbage: %v", err)
	}
	if kinds() != KindPostprocess {
		t.Fatalf("kinds %d", kinds())
	}
}

func TestIntrinsicWrappers(t *testing.T) {
	idx, err := TopK(make([]int32, 2), []float32{1, 3, 2}, 2)
	if err != nil || !slices.Equal(idx, []int32{1, 2}) {
		t.Fatalf("%v %v", idx, err)
	}
	if err := Resize(make([]float32, 1), 1, 1, []float32{1, 2}, 3, 1); !errors.Is(err, ErrIntrinsic) {
		t.Fatalf("resize: %v", err)
	}
	if _, _, _, err := ImageInfo([]byte("nope")); !errors.Is(err, ErrIntrinsic) {
		t.Fatalf("image info: %v", err)
	}
	x := []float32{0, 0}
	if err := Softmax(x); err != nil || x[0] != 0.5 {
		t.Fatalf("softmax %v %v", x, err)
	}
}

func FuzzPostprocessInput(f *testing.F) {
	f.Add(safetensors.Encode(&safetensors.File{Tensors: []Tensor{F32("out", []int{2}, []float32{1, 2})}}))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer reset()
		reset()
		HandlePostprocess(func(in Input) (Response, error) { return Response{Body: []byte("ok")}, nil })
		resp, err := runPostprocess(b)
		if err == nil && string(resp.Body) != "ok" {
			t.Fatal("handler not called")
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
