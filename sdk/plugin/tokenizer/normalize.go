package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// nrune is one character of normalized text and the bytes [start, end) of
// the input it came from, so that every token can point back into the
// caller's string (Encoding.Offsets).
type nrune struct {
	r          rune
	start, end int32
}

// A normStep rewrites normalized text; dst is reused scratch.
type normStep func(dst, src []nrune) []nrune

// toRunes decodes s (whose first byte is at offset base of the caller's
// text). Invalid UTF-8 becomes U+FFFD, one per bad byte.
func toRunes(dst []nrune, s string, base int) []nrune {
	for i := 0; i < len(s); {
		r, n := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		dst = append(dst, nrune{r, int32(base + i), int32(base + i + n)})
		i += n
	}
	return dst
}

// bertClean is BertNormalizer's clean_text: drop NUL, U+FFFD and control
// characters (categories Cc, Cf, Co, but not \t \n \r), turn white space
// into ' '.
func bertClean(dst, src []nrune) []nrune {
	for _, c := range src {
		switch r := c.r; {
		case r == 0 || r == utf8.RuneError || isControl(r):
		case r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r):
			c.r = ' '
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// isControl is BERT's "is control": Unicode's Other categories Cc, Cf and
// Co (the unicode_categories crate's is_other, which the Rust tokenizers
// use), except the three that count as white space.
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < 0x7f {
		return r < 0x20
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// bertChinese puts spaces around CJK ideographs (handle_chinese_chars).
func bertChinese(dst, src []nrune) []nrune {
	for _, c := range src {
		if isChinese(c.r) {
			sp := nrune{' ', c.start, c.start}
			dst = append(dst, sp, c, nrune{' ', c.end, c.end})
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// isChinese is the CJK Unified Ideographs test of BERT, with the ranges of
// Hugging Face's Rust tokenizers (which read 0x2B920, not 0x2B820, for the
// start of Extension E).
func isChinese(r rune) bool {
	switch {
	case r < 0x3400:
		return false
	case r >= 0x4E00 && r <= 0x9FFF, r >= 0x3400 && r <= 0x4DBF, r >= 0xF900 && r <= 0xFAFF:
		return true
	case r >= 0x20000 && r <= 0x2A6DF, r >= 0x2A700 && r <= 0x2B73F, r >= 0x2B740 && r <= 0x2B81F,
		r >= 0x2B920 && r <= 0x2CEAF, r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}

// nfd is Unicode canonical decomposition (Normalization Form D): full
// decomposition, then combining marks put in canonical order.
func nfd(dst, src []nrune) []nrune {
	var buf [4]rune
	for _, c := range src {
		if c.r < 0xC0 { // nothing below U+00C0 decomposes
			dst = append(dst, c)
			continue
		}
		for _, r := range decompose(c.r, buf[:0]) {
			dst = append(dst, nrune{r, c.start, c.end})
		}
	}
	reorder(dst)
	return dst
}

// decompose appends the full canonical decomposition of r (r itself if
// it has none).
func decompose(r rune, dst []rune) []rune {
	const sBase, sCount = 0xAC00, 11172
	if r >= sBase && r < sBase+sCount { // Hangul syllables: UAX #15
		const lBase, vBase, tBase, vCount, tCount = 0x1100, 0x1161, 0x11A7, 21, 28
		s := r - sBase
		dst = append(dst, lBase+s/(vCount*tCount), vBase+(s%(vCount*tCount))/tCount)
		if t := s % tCount; t != 0 {
			dst = append(dst, tBase+t)
		}
		return dst
	}
	lo, hi := 0, len(decompKeys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rune(decompKeys[m]>>32) < r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(decompKeys) && rune(decompKeys[lo]>>32) == r {
		k := decompKeys[lo]
		d := decompData[k>>8&0xFFFFFF : k>>8&0xFFFFFF+k&0xFF]
		for _, x := range d {
			dst = append(dst, x)
		}
		return dst
	}
	return append(dst, r)
}

// ccc is the canonical combining class of r.
func ccc(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	lo, hi := 0, len(cccSpans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rune(cccSpans[m]>>32) <= r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	s := cccSpans[lo-1]
	if r <= rune(s>>8&0xFFFFFF) {
		return uint8(s)
	}
	return 0
}

// reorder sorts every run of non-starters by combining class, stably (the
// Canonical Ordering Algorithm). Runs are short; insertion sort.
func reorder(s []nrune) {
	for i := 1; i < len(s); i++ {
		c := ccc(s[i].r)
		if c == 0 {
			continue
		}
		for j := i; j > 0; j-- {
			p := ccc(s[j-1].r)
			if p <= c {
				break
			}
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// stripMarks drops nonspacing marks (category Mn): StripAccents, after NFD.
func stripMarks(dst, src []nrune) []nrune {
	for _, c := range src {
		if c.r >= 0x300 && unicode.Is(unicode.Mn, c.r) {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// lowercase maps every character to its lowercase, character by
// character as Rust's char::to_lowercase does (no final-sigma context;
// İ becomes i + U+0307, the one unconditional multi-character mapping).
func lowercase(dst, src []nrune) []nrune {
	for _, c := range src {
		switch {
		case c.r < utf8.RuneSelf:
			if 'A' <= c.r && c.r <= 'Z' {
				c.r += 'a' - 'A'
			}
		case c.r == 0x130:
			c.r = 'i'
			dst = append(dst, c)
			c.r = 0x307
		default:
			c.r = unicode.ToLower(c.r)
		}
		dst = append(dst, c)
	}
	return dst
}

// stripSpace trims white space at either end (the Strip normalizer).
func stripSpace(left, right bool) normStep {
	return func(dst, src []nrune) []nrune {
		i, j := 0, len(src)
		for left && i < j && unicode.IsSpace(src[i].r) {
			i++
		}
		for right && j > i && unicode.IsSpace(src[j-1].r) {
			j--
		}
		return append(dst, src[i:j]...)
	}
}

// normCode names a normStep, so that a tokenizer can be saved
// (MarshalBinary).
type normCode uint8

const (
	ncClean normCode = iota + 1
	ncChinese
	ncNFD
	ncStrip
	ncLower
	ncStripL
	ncStripR
	ncStripLR
	ncEnd // not a code: one past the last
)

func (c normCode) step() normStep {
	switch c {
	case ncClean:
		return bertClean
	case ncChinese:
		return bertChinese
	case ncNFD:
		return nfd
	case ncStrip:
		return stripMarks
	case ncLower:
		return lowercase
	case ncStripL:
		return stripSpace(true, false)
	case ncStripR:
		return stripSpace(false, true)
	case ncStripLR:
		return stripSpace(true, true)
	}
	return nil
}

func (t *Tokenizer) addNorm(codes ...normCode) {
	for _, c := range codes {
		t.normCodes = append(t.normCodes, c)
		t.norm = append(t.norm, c.step())
	}
}

// normalize runs the steps over src, ping-ponging between two buffers.
func normalize(steps []normStep, src, scratch []nrune) (out, spare []nrune) {
	for _, f := range steps {
		src, scratch = f(scratch[:0], src), src
	}
	return src, scratch
}
