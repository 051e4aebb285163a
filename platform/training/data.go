package training

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aiaas/aiaas/nn/dataset"
)

// MNIST is the dataset name that means the real MNIST data.
const MNIST = "mnist"

// LoadLocal reads a job's data from this machine: "mnist" (the GoMNIST
// module's files), a CSV file, an IDX images file (labels beside it), a
// folder of MNIST-style IDX files, a folder holding one folder of PNGs per
// class, or a .tar, .tar.gz or .zip archive of such a folder. Without a test dataset, a CSV or IDX
// dataset is split by testSplit after a seeded shuffle. name is a model
// name derived from the dataset.
func LoadLocal(path, testPath string, testSplit float64, seed int64) (train, test *dataset.Set, name string, err error) {
	if path == MNIST {
		dir, err := dataset.MNISTDir()
		if err != nil {
			return nil, nil, "", err
		}
		train, test, err = dataset.LoadMNIST(dir)
		return train, test, MNIST, err
	}
	all, err := readLocal(path)
	if err != nil {
		return nil, nil, "", err
	}
	name = filepath.Base(path)
	for _, ext := range []string{".gz", ".tgz", ".zip", ".tar", ".csv", ".idx"} {
		name = strings.TrimSuffix(name, ext)
	}
	if testPath != "" {
		test, err = readLocal(testPath)
		if err != nil {
			return nil, nil, "", err
		}
		return all, test, name, nil
	}
	train, test = SplitTest(all, testSplit, seed)
	return train, test, name, nil
}

func readLocal(path string) (*dataset.Set, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	lower := strings.ToLower(path)
	switch {
	case st.IsDir() && hasIDX(path):
		train, _, err := dataset.LoadMNIST(path)
		return train, err
	case st.IsDir():
		return dataset.ReadImageFolder(os.DirFS(path), nil)
	case strings.HasSuffix(lower, ".tar") || strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz") || strings.HasSuffix(lower, ".zip"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return dataset.ReadImageArchive(f, nil)
	case strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".csv.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return dataset.ReadCSV(f, nil)
	case strings.Contains(lower, "idx3"):
		labels := strings.Replace(strings.Replace(path, "images", "labels", 1), "idx3", "idx1", 1)
		fi, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer fi.Close()
		fl, err := os.Open(labels)
		if err != nil {
			return nil, fmt.Errorf("dataset: labels for %s: %w (expected beside it as %s)", path, err, filepath.Base(labels))
		}
		defer fl.Close()
		return dataset.ReadIDX(fi, fl, nil)
	}
	return nil, fmt.Errorf("dataset %s: unknown format; use a .csv file, an IDX images file (…-images-idx3-ubyte[.gz]), a folder of IDX files, a folder with one folder of PNGs per class, or a .tar, .tar.gz or .zip of one", path)
}

// hasIDX reports whether dir holds MNIST-style IDX files.
func hasIDX(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "idx3-ubyte") {
			return true
		}
	}
	return false
}

// Limits of an uploaded dataset once decompressed: its text, and its
// feature values (4 bytes each once parsed; MNIST's 60,000 × 784 fit).
const (
	MaxDatasetBytes  = 512 << 20
	MaxDatasetValues = 64 << 20
)

// ParseDataset reads an uploaded dataset: a CSV table (see ParseCSV), or
// images as a tar, tar.gz or zip archive of one folder of PNGs per class
// (dataset.ReadImageArchive), told apart by their first bytes. Both count
// decompressed bytes and values against the same limits as they inflate.
func ParseDataset(b []byte) (*dataset.Set, error) {
	o := &dataset.Options{MaxBytes: MaxDatasetBytes, MaxValues: MaxDatasetValues}
	if isArchive(b) {
		return dataset.ReadImageArchive(bytes.NewReader(b), o)
	}
	return dataset.ReadCSV(bytes.NewReader(b), o)
}

// CheckDataset checks an uploaded dataset as ParseDataset (or, if
// regression, ParseRegressionCSV) reads it — every value, row and image,
// within the same limits — and returns its counts without keeping its
// values (dataset.Options.CheckOnly): a server that stores the upload as
// it came holds one row or image of it at a time, however many values it
// inflates to.
func CheckDataset(b []byte, regression bool) (*dataset.Set, error) {
	o := &dataset.Options{MaxBytes: MaxDatasetBytes, MaxValues: MaxDatasetValues, Regression: regression, CheckOnly: true}
	if !regression && isArchive(b) {
		return dataset.ReadImageArchive(bytes.NewReader(b), o)
	}
	return dataset.ReadCSV(bytes.NewReader(b), o)
}

// isArchive recognises a zip (local file header), a tar (the "ustar" magic
// of its first header) or a gzip whose first 512 decompressed bytes are a
// tar header.
func isArchive(b []byte) bool {
	isTar := func(h []byte) bool { return len(h) >= 262 && string(h[257:262]) == "ustar" }
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")), isTar(b):
		return true
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return false
		}
		h := make([]byte, 512)
		n, _ := io.ReadFull(zr, h)
		return isTar(h[:n])
	}
	return false
}

// ParseCSV reads an uploaded dataset (CSV, optionally gzip-compressed),
// counting decompressed bytes and values against the limits as they
// inflate: a small gzip bomb is refused before it is held.
func ParseCSV(b []byte) (*dataset.Set, error) {
	return dataset.ReadCSV(bytes.NewReader(b), &dataset.Options{MaxBytes: MaxDatasetBytes, MaxValues: MaxDatasetValues})
}

// ParseRegressionCSV is ParseCSV for a numeric target: the last column is
// any finite number (Set.Targets), not a class.
func ParseRegressionCSV(b []byte) (*dataset.Set, error) {
	return dataset.ReadCSV(bytes.NewReader(b), &dataset.Options{MaxBytes: MaxDatasetBytes, MaxValues: MaxDatasetValues, Regression: true})
}
