//go:build race

package hardening

// raceEnabled: this test binary runs under the race detector.
const raceEnabled = true
