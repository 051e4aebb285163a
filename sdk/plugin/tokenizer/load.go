package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
)

func newTokenizer() *Tokenizer {
	return &Tokenizer{MaxTextBytes: DefaultMaxTextBytes, PadID: -1, unk: -1, maxChars: 100}
}

// Load reads a Hugging Face tokenizer.json. Supported:
//
//   - model WordPiece, with normalizer BertNormalizer (clean_text,
//     handle_chinese_chars, strip_accents — null follows lowercase —,
//     lowercase), or a Sequence of NFD, Lowercase, StripAccents and Strip,
//     or none; pre-tokenizer BertPreTokenizer or WhitespaceSplit;
//     decoder WordPiece;
//   - model BPE with the ByteLevel pre-tokenizer and decoder (GPT-2,
//     RoBERTa and their descendants), no normalizer;
//   - post-processor TemplateProcessing, BertProcessing,
//     RobertaProcessing, ByteLevel, or a Sequence of those;
//   - added tokens (matched in the raw text, longest first, with lstrip,
//     rstrip and single_word);
//   - padding's pad_id and truncation's max_length (as defaults).
//
// Anything else is an error naming what is not supported, rather than a
// tokenizer that silently differs from the reference.
func Load(tokenizerJSON []byte) (*Tokenizer, error) {
	if len(tokenizerJSON) > MaxJSONBytes {
		return nil, fmt.Errorf("tokenizer: tokenizer.json is %d bytes; at most %d", len(tokenizerJSON), MaxJSONBytes)
	}
	s := &scanner{b: tokenizerJSON}
	top := map[string]*jval{}
	var model jval
	var vb vocabBuilder
	var mb mergesBuilder
	haveVocab := false
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "model":
			model = jval{kind: jObj}
			return s.object(func(key []byte) error {
				switch string(key) {
				case "vocab":
					if s.peek() != '{' {
						return s.fail("model.vocab is not an object (a Unigram model?)")
					}
					haveVocab = true
					return readVocab(s, &vb)
				case "merges":
					return readMerges(s, &mb)
				}
				k := string(key)
				v, err := s.value()
				model.keys, model.elems = append(model.keys, k), append(model.elems, v)
				return err
			})
		default:
			k := string(key)
			v, err := s.value()
			top[k] = &v
			return err
		}
	})
	if err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	if !haveVocab {
		return nil, fmt.Errorf("tokenizer: no model.vocab")
	}
	t := newTokenizer()
	typ, _ := model.get("type").str()
	switch typ {
	case "WordPiece":
		if err := t.loadWordPiece(&model, &vb, top); err != nil {
			return nil, err
		}
	case "BPE":
		if err := t.loadBPE(&model, &vb, &mb, top); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("tokenizer: model type %q is not supported (WordPiece, BPE)", typ)
	}
	if err := t.loadAdded(top["added_tokens"]); err != nil {
		return nil, err
	}
	if err := t.loadPost(top["post_processor"]); err != nil {
		return nil, err
	}
	if p := top["padding"]; !p.isNull() {
		if id, ok := p.get("pad_id").integer(0, maxVocab); ok {
			t.PadID = int64(id)
		}
	}
	if t.PadID < 0 {
		for _, name := range []string{"[PAD]", "<pad>"} {
			if id, ok := t.TokenToID(name); ok {
				t.PadID = id
				break
			}
		}
	}
	if tr := top["truncation"]; !tr.isNull() {
		t.MaxLength, _ = tr.get("max_length").integer(0, 1<<30)
	}
	return t, nil
}

// readVocab streams a {"token": id, …} object into vb.
func readVocab(s *scanner, vb *vocabBuilder) error {
	return s.object(func(key []byte) error {
		if len(vb.ents) >= maxVocab {
			return s.fail("more than %d tokens", maxVocab)
		}
		if len(key) > maxTokenBytes {
			return s.fail("a token of %d bytes", len(key))
		}
		vb.ents = append(vb.ents, vent{uint32(len(vb.arena)), uint32(len(key)), 0})
		vb.arena = append(vb.arena, key...)
		id, err := s.int(0, maxVocab-1)
		if err != nil {
			return err
		}
		vb.ents[len(vb.ents)-1].id = int32(id)
		vb.maxID = max(vb.maxID, int32(id))
		return nil
	})
}

// readMerges streams ["a b", …] or [["a", "b"], …] into mb.
func readMerges(s *scanner, mb *mergesBuilder) error {
	var a, b []byte
	return s.array(func() error {
		var err error
		if s.peek() == '[' {
			n := 0
			err = s.array(func() error {
				var err error
				switch n++; n {
				case 1:
					a, err = s.str(a[:0])
				case 2:
					b, err = s.str(b[:0])
				default:
					return s.fail("a merge of more than two tokens")
				}
				return err
			})
			if err == nil && n != 2 {
				return s.fail("a merge of %d tokens", n)
			}
			if err != nil {
				return err
			}
			return mb.add(a, b)
		}
		if a, err = s.str(a[:0]); err != nil {
			return err
		}
		return mb.addLine(a)
	})
}

func (t *Tokenizer) loadWordPiece(model *jval, vb *vocabBuilder, top map[string]*jval) error {
	t.kind = modelWordPiece
	v, err := vb.build()
	if err != nil {
		return err
	}
	t.vocab = v
	unk, _ := model.get("unk_token").str()
	if unk == "" {
		unk = "[UNK]"
	}
	if t.unk = lookup(v, unk); t.unk < 0 {
		return fmt.Errorf("tokenizer: unk_token %q is not in the vocabulary", unk)
	}
	t.prefix = "##"
	if p, ok := model.get("continuing_subword_prefix").str(); ok {
		t.prefix = p
	}
	if n, ok := model.get("max_input_chars_per_word").integer(1, 1<<20); ok {
		t.maxChars = n
	}
	t.asciiOK = true
	if err := t.loadNormalizer(top["normalizer"]); err != nil {
		return err
	}
	t.chunkable = true
	for _, st := range t.normNames {
		if st == "Strip" {
			t.chunkable = false // trimming is about the ends of the whole text
		}
	}
	switch pt := top["pre_tokenizer"]; {
	case pt.isNull():
		t.pre, t.chunkable, t.asciiOK = preNone, false, false
	default:
		switch typ, _ := pt.get("type").str(); typ {
		case "BertPreTokenizer":
			t.pre = preBert
		case "WhitespaceSplit":
			t.pre = preWhitespaceSplit
		default:
			return fmt.Errorf("tokenizer: pre_tokenizer %q is not supported with WordPiece (BertPreTokenizer, WhitespaceSplit)", typ)
		}
	}
	switch d := top["decoder"]; {
	case d.isNull():
		t.dec = decNone
	default:
		switch typ, _ := d.get("type").str(); typ {
		case "WordPiece":
			t.dec = decWordPiece
			t.decPrefix = "##"
			if p, ok := d.get("prefix").str(); ok {
				t.decPrefix = p
			}
			t.decCleanup = d.get("cleanup").boolean(true)
		default:
			return fmt.Errorf("tokenizer: decoder %q is not supported with WordPiece", typ)
		}
	}
	return nil
}

func (t *Tokenizer) loadNormalizer(n *jval) error {
	if n.isNull() {
		return nil
	}
	typ, _ := n.get("type").str()
	switch typ {
	case "BertNormalizer":
		t.normNames = append(t.normNames, typ)
		if n.get("clean_text").boolean(true) {
			t.addNorm(ncClean)
			t.asciiClean = true
		}
		if n.get("handle_chinese_chars").boolean(true) {
			t.addNorm(ncChinese)
		}
		lower := n.get("lowercase").boolean(true)
		if n.get("strip_accents").boolean(lower) {
			t.addNorm(ncNFD, ncStrip)
		}
		if lower {
			t.addNorm(ncLower)
			t.asciiLower = true
		}
	case "Sequence":
		ns := n.get("normalizers")
		if ns == nil || ns.kind != jArr {
			return fmt.Errorf("tokenizer: normalizer Sequence without normalizers")
		}
		for i := range ns.elems {
			if err := t.loadNormalizer(&ns.elems[i]); err != nil {
				return err
			}
		}
	case "NFD":
		t.addNorm(ncNFD)
	case "Lowercase":
		t.addNorm(ncLower)
		t.asciiLower = true
	case "StripAccents":
		t.addNorm(ncStrip)
	case "Strip":
		t.normNames = append(t.normNames, typ)
		t.asciiOK = false
		l, r := n.get("strip_left").boolean(true), n.get("strip_right").boolean(true)
		switch {
		case l && r:
			t.addNorm(ncStripLR)
		case l:
			t.addNorm(ncStripL)
		case r:
			t.addNorm(ncStripR)
		}
	default:
		return fmt.Errorf("tokenizer: normalizer %q is not supported (BertNormalizer, NFD, Lowercase, StripAccents, Strip, Sequence)", typ)
	}
	return nil
}

func (t *Tokenizer) loadBPE(model *jval, vb *vocabBuilder, mb *mergesBuilder, top map[string]*jval) error {
	t.kind = modelBPE
	if d := model.get("dropout"); !d.isNull() {
		if f, err := strconv.ParseFloat(d.s, 64); d.kind != jNum || err != nil || f != 0 {
			return fmt.Errorf("tokenizer: BPE dropout is not supported")
		}
	}
	for _, k := range []string{"continuing_subword_prefix", "end_of_word_suffix"} {
		if v, _ := model.get(k).str(); v != "" {
			return fmt.Errorf("tokenizer: BPE %s is not supported", k)
		}
	}
	if model.get("byte_fallback").boolean(false) {
		return fmt.Errorf("tokenizer: BPE byte_fallback is not supported")
	}
	t.ignoreMerges = model.get("ignore_merges").boolean(false)
	var unk *string
	if u, ok := model.get("unk_token").str(); ok {
		unk = &u
	}
	if !top["normalizer"].isNull() {
		return fmt.Errorf("tokenizer: a normalizer with BPE is not supported")
	}
	pt := top["pre_tokenizer"]
	if typ, _ := pt.get("type").str(); typ != "ByteLevel" {
		return fmt.Errorf("tokenizer: BPE needs the ByteLevel pre-tokenizer, not %q", typ)
	}
	t.pre = preByteLevel
	t.addPrefix = pt.get("add_prefix_space").boolean(true)
	t.useRegex = pt.get("use_regex").boolean(true)
	t.chunkable = t.useRegex
	if d := top["decoder"]; !d.isNull() {
		if typ, _ := d.get("type").str(); typ != "ByteLevel" {
			return fmt.Errorf("tokenizer: BPE needs the ByteLevel decoder, not %q", typ)
		}
	}
	t.dec = decByteLevel
	return t.finishBPE(vb, mb, unk)
}

func (t *Tokenizer) loadAdded(v *jval) error {
	if v.isNull() {
		return nil
	}
	if v.kind != jArr || len(v.elems) > maxAdded {
		return fmt.Errorf("tokenizer: added_tokens is not an array of at most %d", maxAdded)
	}
	var added []addedToken
	for i := range v.elems {
		e := &v.elems[i]
		content, ok := e.get("content").str()
		id, ok2 := e.get("id").integer(0, maxVocab-1)
		if !ok || !ok2 {
			return fmt.Errorf("tokenizer: added token %d lacks content or id", i)
		}
		added = append(added, addedToken{content: content, id: int32(id), special: e.get("special").boolean(false),
			lstrip: e.get("lstrip").boolean(false), rstrip: e.get("rstrip").boolean(false),
			single: e.get("single_word").boolean(false), normal: e.get("normalized").boolean(true)})
	}
	t.setAdded(added)
	return nil
}

// loadPost reads the post-processor into the single and pair templates.
func (t *Tokenizer) loadPost(p *jval) error {
	if p.isNull() {
		return nil
	}
	typ, _ := p.get("type").str()
	idOf := func(v *jval) ([]int32, error) { // ["[CLS]", 101]
		if v == nil || v.kind != jArr || len(v.elems) != 2 {
			return nil, fmt.Errorf("tokenizer: %s: want [token, id]", typ)
		}
		id, ok := v.elems[1].integer(0, maxVocab-1)
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: bad id", typ)
		}
		return []int32{int32(id)}, nil
	}
	switch typ {
	case "ByteLevel":
		return nil
	case "Sequence":
		ps := p.get("processors")
		if ps == nil || ps.kind != jArr {
			return fmt.Errorf("tokenizer: post_processor Sequence without processors")
		}
		for i := range ps.elems {
			if err := t.loadPost(&ps.elems[i]); err != nil {
				return err
			}
		}
		return nil
	case "BertProcessing", "RobertaProcessing":
		cls, err := idOf(p.get("cls"))
		if err != nil {
			return err
		}
		sep, err := idOf(p.get("sep"))
		if err != nil {
			return err
		}
		t.single = []tmplItem{{ids: cls}, {seq: 0}, {ids: sep}}
		if typ == "BertProcessing" {
			t.pair = []tmplItem{{ids: cls}, {seq: 0}, {ids: sep}, {seq: 1, typeID: 1}, {ids: sep, typeID: 1}}
		} else {
			t.pair = []tmplItem{{ids: cls}, {seq: 0}, {ids: sep}, {ids: sep}, {seq: 1}, {ids: sep}}
		}
		return nil
	case "TemplateProcessing":
		specials := map[string][]int32{}
		if st := p.get("special_tokens"); st != nil && st.kind == jObj {
			for i, k := range st.keys {
				ids := st.elems[i].get("ids")
				if ids == nil || ids.kind != jArr {
					return fmt.Errorf("tokenizer: TemplateProcessing: special token %q has no ids", k)
				}
				for j := range ids.elems {
					id, ok := ids.elems[j].integer(0, maxVocab-1)
					if !ok {
						return fmt.Errorf("tokenizer: TemplateProcessing: special token %q: bad id", k)
					}
					specials[k] = append(specials[k], int32(id))
				}
			}
		}
		var err error
		if t.single, err = template(p.get("single"), specials); err != nil {
			return err
		}
		t.pair, err = template(p.get("pair"), specials)
		return err
	}
	return fmt.Errorf("tokenizer: post_processor %q is not supported (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)", typ)
}

func template(v *jval, specials map[string][]int32) ([]tmplItem, error) {
	if v == nil || v.kind != jArr {
		return nil, fmt.Errorf("tokenizer: TemplateProcessing: a template is not an array")
	}
	out := []tmplItem{}
	for i := range v.elems {
		e := &v.elems[i]
		if sp := e.get("SpecialToken"); sp != nil {
			name, _ := sp.get("id").str()
			ids, ok := specials[name]
			if !ok {
				return nil, fmt.Errorf("tokenizer: TemplateProcessing: unknown special token %q", name)
			}
			typeID, _ := sp.get("type_id").integer(0, 1<<20)
			out = append(out, tmplItem{ids: ids, typeID: int64(typeID)})
			continue
		}
		if sq := e.get("Sequence"); sq != nil {
			name, _ := sq.get("id").str()
			seq := strings.Index("AB", name)
			if seq < 0 || len(name) != 1 {
				return nil, fmt.Errorf("tokenizer: TemplateProcessing: sequence %q (want A or B)", name)
			}
			typeID, _ := sq.get("type_id").integer(0, 1<<20)
			out = append(out, tmplItem{seq: seq, typeID: int64(typeID)})
			continue
		}
		return nil, fmt.Errorf("tokenizer: TemplateProcessing: an item is neither SpecialToken nor Sequence")
	}
	return out, nil
}
