//go:build race

package graph

// raceDetector: the race detector drops pooled objects at random, so
// allocation counts are only checked without it.
const raceDetector = true
