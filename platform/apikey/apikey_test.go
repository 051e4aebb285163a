package apikey

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewKeysAreDistinctAndParse(t *testing.T) {
	seen := map[Key]bool{}
	for i := 0; i < 1000; i++ {
		k := New()
		if seen[k] {
			t.Fatalf("duplicate key after %d", i)
		}
		seen[k] = true
		if _, err := Parse(k.Reveal()); err != nil {
			t.Fatalf("key %d does not parse: %v", i, err)
		}
		if len(k.Hash()) != 64 || len(k.ID()) != 12 {
			t.Fatalf("hash/id lengths: %d %d", len(k.Hash()), len(k.ID()))
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := New().Reveal()
	for i, s := range []string{"", "aiaas_", "Bearer " + good, good + "a", good[:len(good)-1],
		"xxxxx_" + good[6:], strings.Replace(good, good[10:11], "!", 1), strings.ToUpper(good[:6]) + good[6:],
		// digits 0, 1, 8, 9 and '=' are outside base32's alphabet
		good[:20] + "0" + good[21:], good[:20] + "1" + good[21:], good[:20] + "8" + good[21:], good[:20] + "9" + good[21:], good[:37] + "="} {
		if _, err := Parse(s); err == nil {
			t.Errorf("case %d: %q accepted", i, s)
		}
	}
}

func TestKeyNeverPrints(t *testing.T) {
	k := New()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", k, "s", struct{ K Key }{k})
	secret := k.Reveal()[len(Prefix):]
	for i, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q", k, k, k, k, k), buf.String(), fmt.Sprintf("%+v", struct{ K Key }{k})} {
		if strings.Contains(s, secret) {
			t.Fatalf("case %d leaked the key: %s", i, s)
		}
	}
}

func TestEqualAndScopes(t *testing.T) {
	a, b := New(), New()
	if !Equal(a.Hash(), a.Hash()) || Equal(a.Hash(), b.Hash()) || Equal(a.Hash(), "") {
		t.Fatal("Equal is wrong")
	}
	var buf [64]byte
	h := a.AppendHash(buf[:0])
	if string(h) != a.Hash() || !Matches(h, a.Hash()) || Matches(h, b.Hash()) || Matches(h, "") || Matches(h[:63], a.Hash()[:63]+"x") {
		t.Fatal("AppendHash or Matches is wrong")
	}
	if !ScopeManage.Allows(ScopeInvoke) || ScopeInvoke.Allows(ScopeManage) || !ScopeInvoke.Allows(ScopeInvoke) {
		t.Fatal("scope lattice is wrong")
	}
	if _, err := ParseScope("root"); err == nil {
		t.Fatal("unknown scope accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(New().Reveal())
	f.Add("aiaas_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err == nil && k.Reveal() != s {
			t.Fatal("Parse changed the key")
		}
		// Parse accepts exactly what decodes as base32 (either case),
		// except that base32 skips '\r' and '\n', which a key never holds
		// (the old Parse, which decoded, let them through).
		decodes := len(s) == len(Prefix)+32 && strings.HasPrefix(s, Prefix)
		if decodes {
			_, derr := enc.DecodeString(strings.ToUpper(s[len(Prefix):]))
			decodes = derr == nil && !strings.ContainsAny(s, "\r\n")
		}
		if (err == nil) != decodes {
			t.Fatalf("Parse(%q): %v; base32 decodes it: %v", s, err, decodes)
		}
	})
}
