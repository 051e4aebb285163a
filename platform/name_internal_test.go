package platform

import (
	"regexp"
	"strings"
	"testing"
)

// nameRE is the rule validName implements by hand.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// FuzzValidName holds validName to the regexp it replaced.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"", "a", "A9", "mnist", "m.n_i-s", ".", "..", "_a", "-a", ".a", "a/b", "a b", "é",
		"a\n", "a\x00", strings.Repeat("x", 128), strings.Repeat("x", 129), "9" + strings.Repeat(".", 127)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validName(s), nameRE.MatchString(s); got != want {
			t.Fatalf("validName(%q) = %v, the regexp says %v", s, got, want)
		}
	})
}
