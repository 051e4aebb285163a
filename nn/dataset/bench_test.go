package dataset

import (
	"bytes"
	"strconv"
	"testing"
)

// BenchmarkLoadMNIST reads the real MNIST files (both halves, gzipped).
func BenchmarkLoadMNIST(b *testing.B) {
	dir, err := MNISTDir()
	if err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := LoadMNIST(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadCSV reads 10,000 rows of 20 features and a label.
func BenchmarkReadCSV(b *testing.B) {
	var buf bytes.Buffer
	for i := range 10000 {
		for j := range 20 {
			buf.WriteString(strconv.FormatFloat(float64(i*j%97)/7, 'g', 6, 64))
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Itoa(i % 3))
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadCSV(bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
}
