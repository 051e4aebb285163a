package machine

import (
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas/blas32"
)

func TestDescribe(t *testing.T) {
	in := Describe()
	if in.NProc != runtime.NumCPU() || in.GoVersion == "" {
		t.Errorf("Describe: %+v", in)
	}
	if runtime.GOOS == "linux" && (in.CPU == "" || in.MHz <= 0) {
		t.Errorf("Describe on linux read no CPU model or clock: %+v", in)
	}
}

func TestUseBLAS(t *testing.T) {
	defer blas32.Use(BLAS["gonum"])
	for i, name := range []string{"gonum", "kernels"} {
		if err := UseBLAS(name); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if g := PeakSGEMM(64, 3); !(g > 0) {
			t.Errorf("case %d (%s): peak %v", i, name, g)
		}
	}
	if err := UseBLAS("mkl"); err == nil {
		t.Error("unknown BLAS accepted")
	}
}
