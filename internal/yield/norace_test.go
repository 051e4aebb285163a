//go:build !race

package yield

const raceEnabled = false
