//go:build aiaas_poison

package graph

// Built with -tags aiaas_poison (make test's race pass), every run starts
// on a poisoned arena: see poisonArenas.
func init() { poisonArenas = true }
