//go:build race

package yield

const raceEnabled = true
