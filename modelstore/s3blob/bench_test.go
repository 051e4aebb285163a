package s3blob_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
)

// mnistSize is the MNIST 784-128-128-10 float32 model: 784·128+128+
// 128·128+128+128·10+10 parameters.
const mnistSize = (784*128 + 128 + 128*128 + 128 + 128*10 + 10) * 4

func mnistWeights() []byte {
	b := make([]byte, mnistSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(b); i += 4 {
		binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(r.NormFloat64()*0.05)))
	}
	return b
}

// benchLoad publishes the MNIST-sized artifact once, then loads it b.N
// times (GET marker + GET data, decrypt, verify sha256) and reports the
// median. fresh=true opens a new Store for every load, so the tenant's
// data key is fetched and unwrapped too: a cold function instance.
func benchLoad(b *testing.B, fresh bool) {
	e := liveEnv(b)
	bucket := e.open(b, randName(e.bucket+"-bench-"), "", "")
	opts := &modelstore.Options{MasterKey: bytes.Repeat([]byte{5}, 32)}
	s, err := modelstore.New(bucket, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w := mnistWeights()
	if _, err := s.PublishModel(ctx, "acme", "mnist", bytes.NewReader(w), int64(len(w)), []byte(`{"arch":"784-128-128-10"}`)); err != nil {
		b.Fatal(err)
	}
	times := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(len(w)))
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		st := s
		if fresh {
			st, _ = modelstore.New(bucket, opts)
		}
		got, _, err := st.OpenModel(ctx, "acme", "mnist", 1)
		if err != nil || len(got) != len(w) {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}

func BenchmarkColdLoadMNIST(b *testing.B) { benchLoad(b, true) }
func BenchmarkLoadMNIST(b *testing.B)     { benchLoad(b, false) }
