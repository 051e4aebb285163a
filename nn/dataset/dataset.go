// Package dataset reads training data: MNIST-style IDX files, CSV tables
// and folders of PNG images, one directory per class.
//
// # Overview
//
// A [Set] is a dense row-major feature matrix with one label (or one
// regression target) per row, ready for the trainer in package nn. [ReadIDX]
// reads the IDX format of the MNIST distribution, [ReadCSV] reads
// "f1,...,fk,label" rows, and [LoadMNIST] with [MNISTDir] finds and reads the
// real MNIST files. [ReadImageFolder] reads PNG images laid out one
// directory per class from an fs.FS, and [ReadImageArchive] the same layout
// from a tar, tar.gz or zip upload. Gzip-compressed input is recognised by
// its magic bytes and decompressed on the fly.
//
// # Untrusted input
//
// Dataset files are uploaded by tenants. Every reader is bounded by
// [Options] before it allocates: a header that claims two billion images
// does not allocate two billion of anything, because memory grows only as
// bytes actually arrive and never past the limits. Errors wrap [ErrFormat]
// (malformed data, 400) or [ErrTooLarge] (over a limit, 413), and name the
// line and column, the byte offset or the file at fault. An image's header is
// checked before its pixels are decoded, and archive entries are never
// written to disk: links, absolute names and ".." are refused. Nothing in
// this package panics on bad input.
package dataset

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/aiaas/aiaas/internal/yield"
)

var (
	// ErrFormat is wrapped by errors about malformed dataset bytes.
	ErrFormat = errors.New("dataset: invalid format")
	// ErrTooLarge is wrapped by errors about data over a limit of Options.
	ErrTooLarge = errors.New("dataset: too large")
)

// Set is a labelled dataset. Row i's features are X[i*Features:(i+1)*Features].
//
// For classification Y holds class labels in [0, Classes) and Targets is
// nil; for regression Targets holds one float per row and Y is nil with
// Classes 0. A Set is plain data: reading it concurrently is safe, the
// methods never modify it.
type Set struct {
	X        []float32
	Y        []int32
	Targets  []float32
	N        int
	Features int
	Classes  int
	// Shape, for images, is one sample's [C, H, W] (product Features),
	// pixels channel-major as a convolutional network reads them; nil for
	// tables.
	Shape []int
	// ClassNames, when the data names its classes (a folder per class),
	// holds the name of class i at i.
	ClassNames []string
}

// Options bound what the readers accept. A nil *Options or zero fields mean
// the defaults.
type Options struct {
	// MaxRows is the most rows (samples) accepted. Default 1<<24.
	MaxRows int
	// MaxFeatures is the most features per row. Default 1<<16.
	MaxFeatures int
	// MaxClasses bounds classification labels to [0, MaxClasses). Default 1<<12.
	MaxClasses int
	// MaxBytes is the most (decompressed) input bytes read from each file;
	// the image readers count all of a set's files together. Default 1 GiB.
	MaxBytes int64
	// MaxValues is the most feature values (rows × features) a CSV or an
	// image set may hold: the parsed set's memory is 4 bytes a value, and
	// a short number is 2 bytes of text (a plain PNG pixel far less), so
	// this bounds what a small compressed upload can make a server hold.
	// Default 1<<28.
	MaxValues int64
	// Regression makes ReadCSV read the last column as a float target into
	// Set.Targets instead of an integer class into Set.Y.
	Regression bool
	// Reserve, if set, is called before the set being read takes more
	// memory, with the bytes it is about to take; an error it returns
	// stops the read and is returned (wrapped). A server passes its memory
	// budget here, so that sets read at once cannot together pass it
	// however each stays within MaxValues. A CSV's arrays grow as rows
	// arrive, and each array they outgrow stays on the heap until the
	// collector runs (Go lets the heap reach twice what is live), so a CSV
	// is charged twice its arrays' capacity; an image set's array is
	// allocated once, at its size, and charged once.
	Reserve func(n int64) error
	// CheckOnly reads and checks every value, row and image as usual and
	// fills the set's counts (N, Features, Classes, Shape, ClassNames)
	// but keeps no values: X, Y and Targets stay nil, and Reserve is never
	// called. A server that stores an upload as it came and only needs to
	// know it is valid checks it so, in the memory of one row or image.
	// ReadCSV, ReadImageFolder and ReadImageArchive honour it; ReadIDX,
	// whose arrays are sized by their headers, does not.
	CheckOnly bool
}

const (
	defaultMaxRows     = 1 << 24
	defaultMaxFeatures = 1 << 16
	defaultMaxClasses  = 1 << 12
	defaultMaxBytes    = 1 << 30
	defaultMaxValues   = 1 << 28
)

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.MaxRows <= 0 {
		out.MaxRows = defaultMaxRows
	}
	if out.MaxFeatures <= 0 {
		out.MaxFeatures = defaultMaxFeatures
	}
	if out.MaxClasses <= 0 {
		out.MaxClasses = defaultMaxClasses
	}
	if out.MaxBytes <= 0 {
		out.MaxBytes = defaultMaxBytes
	}
	if out.MaxValues <= 0 {
		out.MaxValues = defaultMaxValues
	}
	return out
}

// Split returns the first part of s for training and the last frac of it
// for validation, without shuffling: exactly what Keras's
// validation_split does (split_at = floor(N*(1-frac))), so that results
// compare with the Keras recipe. seed is ignored and kept for API stability;
// shuffle the data before splitting if the file is sorted by class. frac is
// clamped to [0, 1]. The returned sets share memory with s.
func (s *Set) Split(frac float64, seed int64) (train, val *Set) {
	_ = seed
	if !(frac > 0) { // also catches NaN
		frac = 0
	}
	if frac > 1 {
		frac = 1
	}
	at := int(float64(s.N) * (1 - frac))
	return s.rows(0, at), s.rows(at, s.N)
}

// Subset returns the first n rows of s (all of them if n >= N, none if n <=
// 0), sharing memory with s.
func (s *Set) Subset(n int) *Set {
	return s.rows(0, max(0, min(n, s.N)))
}

func (s *Set) rows(from, to int) *Set {
	out := &Set{N: to - from, Features: s.Features, Classes: s.Classes, Shape: s.Shape, ClassNames: s.ClassNames}
	out.X = s.X[from*s.Features : to*s.Features : to*s.Features]
	if s.Y != nil {
		out.Y = s.Y[from:to:to]
	}
	if s.Targets != nil {
		out.Targets = s.Targets[from:to:to]
	}
	return out
}

// limitReader reads at most n bytes and then fails with ErrTooLarge, unlike
// io.LimitReader, which would silently truncate the data.
type limitReader struct {
	r    io.Reader
	n    int64 // bytes still allowed
	what string
	max  int64
	// y yields the processor between reads: the parse that pulls them
	// (a CSV inflating from a small gzip runs seconds) never blocks.
	y yield.Point
}

func (l *limitReader) Read(p []byte) (int, error) {
	l.y.Maybe()
	if l.n <= 0 {
		// One probe byte tells a file of exactly the limit from a longer one.
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, l.what, l.max)
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// open wraps r: gzip is detected by its magic bytes 1f 8b and the
// decompressed stream is bounded by maxBytes (compressed bombs included).
func open(r io.Reader, maxBytes int64, what string) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("dataset: read %s: %w", what, err)
	}
	var src io.Reader = br
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: gzip: %v", ErrFormat, what, err)
		}
		src = bufio.NewReaderSize(zr, 64<<10)
	}
	return &limitReader{r: src, n: maxBytes, max: maxBytes, what: what}, nil
}
