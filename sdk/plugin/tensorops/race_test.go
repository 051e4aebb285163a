//go:build race

package tensorops

// raceEnabled: this test binary runs under the race detector, whose
// sync.Pool drops a share of what is put back (to shake out misuse).
const raceEnabled = true
