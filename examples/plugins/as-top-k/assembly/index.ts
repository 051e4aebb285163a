// The top-k postprocess plugin in AssemblyScript: the same behaviour as
// examples/plugins/top-k (Go), written against plugin ABI v1 directly to
// show that the ABI needs no Go and no WASI (docs/plugins.md).
//
// Input: safetensors bytes. The scores are the only tensor, or the one
// named by the "output" parameter, else the one named "output"; F32,
// shape [K] or [1,K]. Softmax (a host intrinsic) is applied unless the
// scores already sum to 1 ± 1e-3 with none negative. Parameters in
// "__metadata__": "k" (1–100, default 3) and "labels" (comma-separated).
// Output: application/json {"predictions":[{"label":…,"index":…,"score":…},…]}.
//
// Memory: no managed objects at all. Everything lives in one bump arena
// that aiaas_alloc resets, so a pooled instance's memory stays flat over
// any number of calls: it grows only to the largest single call. Every
// read of the input is bounds-checked against the input length, so
// malformed input ends in set_error, never in a trap.

// ---- host imports (module aiaas_v1) --------------------------------------

@external("aiaas_v1", "set_output")
declare function host_set_output(ptr: usize, len: i32): i32;
@external("aiaas_v1", "set_content_type")
declare function host_set_content_type(ptr: usize, len: i32): i32;
@external("aiaas_v1", "set_error")
declare function host_set_error(ptr: usize, len: i32): i32;
@external("aiaas_v1", "softmax_f32")
declare function host_softmax_f32(ptr: usize, n: i32): i32;
@external("aiaas_v1", "topk_f32")
declare function host_topk_f32(dst: usize, src: usize, n: i32, k: i32): i32;

const KIND_POSTPROCESS: i32 = 2;
const STATUS_OK: i32 = 0;
const STATUS_ERROR: i32 = 1;

const DEFAULT_K: i32 = 3;
const MAX_K: i32 = 100;
const MAX_CLASSES: i64 = 1 << 20;
const MAX_TENSORS: i32 = 256;
const MAX_RANK: i32 = 8;
const MAX_DEPTH: i32 = 32; // nesting of values we skip; recursion must not overflow the stack

// ---- the arena --------------------------------------------------------------

let arenaBase: usize = 0;
let arenaTop: usize = 0;

// alloc returns n bytes aligned to 8, growing memory as needed, or 0.
function alloc(n: usize): usize {
  if (arenaBase == 0) {
    arenaBase = (__heap_base + 15) & ~(15 as usize);
    arenaTop = arenaBase;
  }
  if (n > 0x7fff0000) return 0;
  const p = (arenaTop + 7) & ~(7 as usize);
  const end = p + n;
  if (end < p) return 0;
  const have = (<usize>memory.size()) << 16;
  if (end > have) {
    const pages = <i32>((end - have + 0xffff) >> 16);
    if (memory.grow(pages) < 0) return 0;
  }
  arenaTop = end;
  return p;
}

// ---- output and error buffers ----------------------------------------------

// A growable byte buffer in the arena.
let outPtr: usize = 0;
let outLen: i32 = 0;
let outCap: i32 = 0;
let outOOM = false;

function bufReset(capacity: i32): void {
  outPtr = alloc(<usize>capacity);
  outCap = outPtr == 0 ? 0 : capacity;
  outLen = 0;
  outOOM = outPtr == 0;
}

function putByte(b: i32): void {
  if (outOOM) return;
  if (outLen == outCap) {
    const ncap = outCap * 2 + 64;
    const np = alloc(<usize>ncap);
    if (np == 0) { outOOM = true; return; }
    memory.copy(np, outPtr, <usize>outLen);
    outPtr = np;
    outCap = ncap;
  }
  store<u8>(outPtr + <usize>outLen, <u8>b);
  outLen++;
}

// putStr appends an ASCII string literal (static data: no allocation).
function putStr(s: string): void {
  for (let i = 0; i < s.length; i++) putByte(s.charCodeAt(i));
}

function putInt(v: i64): void {
  if (v < 0) { putByte(0x2d); v = -v; }
  let digits = 1;
  let t = v;
  while (t >= 10) { t /= 10; digits++; }
  let d = 1 as i64;
  for (let i = 1; i < digits; i++) d *= 10;
  for (; d > 0; d /= 10) putByte(<i32>(0x30 + (v / d) % 10));
}

// putBytes appends raw bytes [p, p+n).
function putBytes(p: usize, n: i32): void {
  for (let i = 0; i < n; i++) putByte(load<u8>(p + <usize>i));
}

// fail reports the message now in the buffer and returns StatusError.
function fail(): i32 {
  if (outOOM) {
    // The arena is exhausted; report from a fresh small buffer.
    arenaTop = inputEnd;
    bufReset(64);
    putStr("top-k: out of memory");
  }
  host_set_error(outPtr, outLen);
  return STATUS_ERROR;
}

function failMsg(s: string): i32 {
  bufReset(256);
  putStr(s);
  return fail();
}

// ---- the ABI exports ------------------------------------------------------

let inputEnd: usize = 0;

export function aiaas_abi_v1(): i32 {
  return KIND_POSTPROCESS;
}

export function aiaas_alloc(size: i32): i32 {
  if (size < 0) return 0;
  arenaTop = arenaBase == 0 ? 0 : arenaBase; // a new call: drop the last one's data
  const p = alloc(<usize>size);
  inputEnd = arenaTop;
  return <i32>p;
}

// ---- a bounds-checked JSON scanner over the safetensors header --------------

let src: usize = 0; // header start
let pos: i32 = 0;
let lim: i32 = 0; // header length
let perr = false; // set on the first syntax error; the parse then unwinds
let perrWhat: string = "";
let perrAt: i32 = 0;

function syntax(what: string): void {
  if (!perr) { perr = true; perrWhat = what; perrAt = pos; }
}

function peek(): i32 {
  while (pos < lim) {
    const c = <i32>load<u8>(src + <usize>pos);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return c;
    pos++;
  }
  return -1;
}

function expect(c: i32, what: string): bool {
  if (peek() != c) { syntax(what); return false; }
  pos++;
  return true;
}

// A decoded string: UTF-8 bytes in the arena.
let strPtr: usize = 0;
let strLen: i32 = 0;

function hex4(at: i32): i32 {
  if (at + 4 > lim) return -1;
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const c = <i32>load<u8>(src + <usize>(at + i));
    let d: i32;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

function putRune(dst: usize, n: i32, r: i32): i32 {
  if (r < 0x80) { store<u8>(dst + <usize>n, <u8>r); return n + 1; }
  if (r < 0x800) {
    store<u8>(dst + <usize>n, <u8>(0xc0 | (r >> 6)));
    store<u8>(dst + <usize>n + 1, <u8>(0x80 | (r & 0x3f)));
    return n + 2;
  }
  if (r < 0x10000) {
    store<u8>(dst + <usize>n, <u8>(0xe0 | (r >> 12)));
    store<u8>(dst + <usize>n + 1, <u8>(0x80 | ((r >> 6) & 0x3f)));
    store<u8>(dst + <usize>n + 2, <u8>(0x80 | (r & 0x3f)));
    return n + 3;
  }
  store<u8>(dst + <usize>n, <u8>(0xf0 | (r >> 18)));
  store<u8>(dst + <usize>n + 1, <u8>(0x80 | ((r >> 12) & 0x3f)));
  store<u8>(dst + <usize>n + 2, <u8>(0x80 | ((r >> 6) & 0x3f)));
  store<u8>(dst + <usize>n + 3, <u8>(0x80 | (r & 0x3f)));
  return n + 4;
}

// str parses a JSON string into strPtr/strLen. An escape never decodes
// to more bytes than its source text, so the source length bounds the
// destination.
function str(what: string): bool {
  if (!expect(0x22, what)) return false;
  const start = pos;
  let end = -1;
  for (let i = pos; i < lim; i++) {
    const c = <i32>load<u8>(src + <usize>i);
    if (c == 0x5c) { i++; continue; }
    if (c == 0x22) { end = i; break; }
  }
  if (end < 0) { syntax("an unterminated string"); return false; }
  const dst = alloc(<usize>(end - start));
  if (dst == 0) { syntax("a string (out of memory)"); return false; }
  let n = 0;
  let i = start;
  while (i < end) {
    const c = <i32>load<u8>(src + <usize>i);
    if (c < 0x20) { pos = i; syntax("a string without control characters"); return false; }
    if (c != 0x5c) { store<u8>(dst + <usize>n, <u8>c); n++; i++; continue; }
    if (i + 1 >= end) { pos = i; syntax("a valid escape"); return false; }
    const e = <i32>load<u8>(src + <usize>(i + 1));
    i += 2;
    let r = -1;
    if (e == 0x22 || e == 0x5c || e == 0x2f) r = e;
    else if (e == 0x62) r = 0x08;
    else if (e == 0x66) r = 0x0c;
    else if (e == 0x6e) r = 0x0a;
    else if (e == 0x72) r = 0x0d;
    else if (e == 0x74) r = 0x09;
    else if (e == 0x75) {
      r = i + 4 <= end ? hex4(i) : -1;
      if (r < 0) { pos = i; syntax("four hex digits after \\u"); return false; }
      i += 4;
      if (r >= 0xd800 && r < 0xdc00 && i + 6 <= end &&
          load<u8>(src + <usize>i) == 0x5c && load<u8>(src + <usize>(i + 1)) == 0x75) {
        const lo = hex4(i + 2);
        if (lo >= 0xdc00 && lo < 0xe000) {
          r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
      }
      if (r >= 0xd800 && r < 0xe000) r = 0xfffd; // a lone surrogate
    }
    if (r < 0) { pos = i - 1; syntax("a valid escape"); return false; }
    n = putRune(dst, n, r);
  }
  pos = end + 1;
  strPtr = dst;
  strLen = n;
  return true;
}

function isStr(p: usize, n: i32, s: string): bool {
  if (n != s.length) return false;
  for (let i = 0; i < n; i++) if (<i32>load<u8>(p + <usize>i) != s.charCodeAt(i)) return false;
  return true;
}

// uint parses a non-negative JSON integer below 2^53.
function uint(what: string): i64 {
  const c = peek();
  if (c < 0x30 || c > 0x39) { syntax(what); return -1; }
  let v: i64 = 0;
  let digits = 0;
  while (pos < lim) {
    const d = <i32>load<u8>(src + <usize>pos);
    if (d < 0x30 || d > 0x39) break;
    v = v * 10 + <i64>(d - 0x30);
    digits++;
    pos++;
    if (v >= (1 << 53)) { syntax("an integer below 2^53"); return -1; }
  }
  if (digits > 1 && c == 0x30) { syntax("an integer without leading zeros"); return -1; }
  return v;
}

// skip skips any JSON value, to a bounded depth.
function skip(depth: i32): void {
  if (depth > MAX_DEPTH) { syntax("a value nested at most 32 deep"); return; }
  const c = peek();
  if (c == 0x22) { str("a string"); return; }
  if (c == 0x7b || c == 0x5b) {
    const close = c == 0x7b ? 0x7d : 0x5d;
    pos++;
    if (peek() == close) { pos++; return; }
    while (!perr) {
      if (c == 0x7b) {
        if (!str("a key")) return;
        if (!expect(0x3a, "':'")) return;
      }
      skip(depth + 1);
      if (perr) return;
      const d = peek();
      if (d == 0x2c) { pos++; continue; }
      if (d == close) { pos++; return; }
      syntax(close == 0x7d ? "',' or '}'" : "',' or ']'");
    }
    return;
  }
  // A number or a literal: consume its characters.
  const start = pos;
  while (pos < lim) {
    const d = <i32>load<u8>(src + <usize>pos);
    if ((d >= 0x30 && d <= 0x39) || (d >= 0x61 && d <= 0x7a) || d == 0x2d || d == 0x2b || d == 0x2e || d == 0x45) pos++;
    else break;
  }
  if (pos == start) syntax("a value");
}

// ---- the header's content ---------------------------------------------------

// Per tensor, in arena arrays: name (ptr, len), F32 or not, rank, dims,
// data offsets.
let nTensors: i32 = 0;
let tName: usize = 0; // usize[MAX_TENSORS]
let tNameLen: usize = 0; // i32[MAX_TENSORS]
let tDtypeF32: usize = 0; // i32[MAX_TENSORS]: 1 F32, 0 other, -1 missing
let tRank: usize = 0; // i32[MAX_TENSORS]
let tShape: usize = 0; // i64[MAX_TENSORS*MAX_RANK]
let tBegin: usize = 0; // i64[MAX_TENSORS]
let tEnd: usize = 0; // i64[MAX_TENSORS]
let tDtypePtr: usize = 0;
let tDtypeLen: usize = 0;

// Parameters: pointers to decoded strings, -1 length if absent.
let kPtr: usize = 0;
let kLen: i32 = -1;
let labelsPtr: usize = 0;
let labelsLen: i32 = -1;
let outNamePtr: usize = 0;
let outNameLen: i32 = -1;

function parseMetadata(): void {
  if (!expect(0x7b, "'{' opening __metadata__")) return;
  if (peek() == 0x7d) { pos++; return; }
  while (!perr) {
    if (!str("a metadata key")) return;
    const kp = strPtr; const kl = strLen;
    if (!expect(0x3a, "':'")) return;
    if (!str("a string metadata value")) return;
    if (isStr(kp, kl, "k")) { kPtr = strPtr; kLen = strLen; }
    else if (isStr(kp, kl, "labels")) { labelsPtr = strPtr; labelsLen = strLen; }
    else if (isStr(kp, kl, "output")) { outNamePtr = strPtr; outNameLen = strLen; }
    const d = peek();
    if (d == 0x2c) { pos++; continue; }
    if (d == 0x7d) { pos++; return; }
    syntax("',' or '}' in __metadata__");
  }
}

function parseEntry(t: i32): void {
  store<i32>(tDtypeF32 + <usize>(t * 4), -1);
  store<i32>(tRank + <usize>(t * 4), -1);
  store<i64>(tBegin + <usize>(t * 8), -1);
  store<i64>(tEnd + <usize>(t * 8), -1);
  if (!expect(0x7b, "'{' opening a tensor")) return;
  if (peek() == 0x7d) { pos++; return; }
  while (!perr) {
    if (!str("a tensor field")) return;
    const fp = strPtr; const fl = strLen;
    if (!expect(0x3a, "':'")) return;
    if (isStr(fp, fl, "dtype")) {
      if (!str("a dtype string")) return;
      store<i32>(tDtypeF32 + <usize>(t * 4), isStr(strPtr, strLen, "F32") ? 1 : 0);
      store<usize>(tDtypePtr + <usize>(t * sizeof<usize>()), strPtr);
      store<i32>(tDtypeLen + <usize>(t * 4), strLen);
    } else if (isStr(fp, fl, "shape")) {
      if (!expect(0x5b, "'[' opening shape")) return;
      let rank = 0;
      if (peek() == 0x5d) pos++;
      else {
        while (!perr) {
          if (rank == MAX_RANK) { syntax("a shape of rank at most 8"); return; }
          const v = uint("a dimension");
          if (perr) return;
          store<i64>(tShape + <usize>((t * MAX_RANK + rank) * 8), v);
          rank++;
          const d = peek();
          if (d == 0x2c) { pos++; continue; }
          if (d == 0x5d) { pos++; break; }
          syntax("',' or ']' in shape");
        }
      }
      store<i32>(tRank + <usize>(t * 4), rank);
    } else if (isStr(fp, fl, "data_offsets")) {
      if (!expect(0x5b, "'[' opening data_offsets")) return;
      const b = uint("an offset");
      if (perr || !expect(0x2c, "',' in data_offsets")) return;
      const e = uint("an offset");
      if (perr || !expect(0x5d, "']' closing data_offsets")) return;
      store<i64>(tBegin + <usize>(t * 8), b);
      store<i64>(tEnd + <usize>(t * 8), e);
    } else {
      skip(1);
    }
    if (perr) return;
    const d = peek();
    if (d == 0x2c) { pos++; continue; }
    if (d == 0x7d) { pos++; return; }
    syntax("',' or '}' in a tensor");
  }
}

function parseHeader(): void {
  if (!expect(0x7b, "'{' opening the header")) return;
  if (peek() == 0x7d) { pos++; }
  else {
    while (!perr) {
      if (!str("a tensor name")) return;
      const np = strPtr; const nl = strLen;
      if (!expect(0x3a, "':'")) return;
      if (isStr(np, nl, "__metadata__")) parseMetadata();
      else {
        if (nTensors == MAX_TENSORS) { syntax("at most 256 tensors"); return; }
        store<usize>(tName + <usize>(nTensors * sizeof<usize>()), np);
        store<i32>(tNameLen + <usize>(nTensors * 4), nl);
        parseEntry(nTensors);
        nTensors++;
      }
      if (perr) return;
      const d = peek();
      if (d == 0x2c) { pos++; continue; }
      if (d == 0x7d) { pos++; break; }
      syntax("',' or '}' after a header entry");
    }
  }
  if (!perr && peek() != -1) syntax("the end of the header");
}

// ---- scores formatting (Go's strconv.FormatFloat(v, 'g', 6, 32)) ----------

const digitBuf = memory.data(24);

function putScore(v: f64): void {
  if (isNaN(v) || !isFinite(v)) v = 0; // JSON has no NaN
  if (v == 0) { putByte(0x30); return; }
  if (v < 0) { putByte(0x2d); v = -v; }
  // Six significant digits: m in [1e5, 1e6), v ≈ m × 10^(e-5).
  let e = <i32>Math.floor(Math.log10(v));
  let m = Math.round(v * Math.pow(10, <f64>(5 - e)));
  if (m >= 1e6) { e++; m = Math.round(v * Math.pow(10, <f64>(5 - e))); }
  else if (m < 1e5) { e--; m = Math.round(v * Math.pow(10, <f64>(5 - e))); }
  if (m >= 1e6) { e++; m = 1e5; }
  let mi = <i64>m;
  let nd = 6;
  for (let i = 5; i >= 0; i--) { store<u8>(digitBuf + <usize>i, <u8>(0x30 + mi % 10)); mi /= 10; }
  while (nd > 1 && load<u8>(digitBuf + <usize>(nd - 1)) == 0x30) nd--;
  const dp = e + 1; // the decimal point's position in the digits
  let eprec = 6;
  if (eprec > nd && nd >= dp) eprec = nd;
  if (e < -4 || e >= eprec) {
    putByte(load<u8>(digitBuf));
    if (nd > 1) { putByte(0x2e); putBytes(digitBuf + 1, nd - 1); }
    putByte(0x65);
    let x = e;
    if (x < 0) { putByte(0x2d); x = -x; } else putByte(0x2b);
    if (x < 10) putByte(0x30);
    putInt(x);
    return;
  }
  if (dp <= 0) {
    putByte(0x30); putByte(0x2e);
    for (let i = 0; i < -dp; i++) putByte(0x30);
    putBytes(digitBuf, nd);
    return;
  }
  for (let i = 0; i < dp; i++) putByte(i < nd ? <i32>load<u8>(digitBuf + <usize>i) : 0x30);
  if (nd > dp) { putByte(0x2e); putBytes(digitBuf + <usize>dp, nd - dp); }
}

// putJSONString writes bytes [p, p+n) as a JSON string: invalid UTF-8
// becomes one U+FFFD per run, quotes, backslashes and controls are escaped.
function putJSONString(p: usize, n: i32): void {
  putByte(0x22);
  let i = 0;
  let bad = false;
  while (i < n) {
    const c = <i32>load<u8>(p + <usize>i);
    if (c < 0x80) {
      bad = false;
      if (c == 0x22 || c == 0x5c) { putByte(0x5c); putByte(c); }
      else if (c < 0x20) {
        putStr("\\u00");
        putByte(c >> 4 < 10 ? 0x30 + (c >> 4) : 0x57 + (c >> 4));
        putByte((c & 15) < 10 ? 0x30 + (c & 15) : 0x57 + (c & 15));
      } else putByte(c);
      i++;
      continue;
    }
    const size = utf8Size(p, i, n);
    if (size == 0) {
      if (!bad) { putByte(0xef); putByte(0xbf); putByte(0xbd); }
      bad = true;
      i++;
      continue;
    }
    bad = false;
    putBytes(p + <usize>i, size);
    i += size;
  }
  putByte(0x22);
}

// utf8Size returns the length of the valid multi-byte sequence at i, or 0.
function utf8Size(p: usize, i: i32, n: i32): i32 {
  const c = <i32>load<u8>(p + <usize>i);
  let size = 0;
  let lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) size = 2;
  else if (c >= 0xe0 && c <= 0xef) { size = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
  else if (c >= 0xf0 && c <= 0xf4) { size = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
  else return 0;
  if (i + size > n) return 0;
  for (let j = 1; j < size; j++) {
    const b = <i32>load<u8>(p + <usize>(i + j));
    if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
  }
  return size;
}

function isSpace(c: i32): bool {
  return c == 0x20 || (c >= 0x09 && c <= 0x0d);
}

// ---- the call ----------------------------------------------------------------

function putQuoted(p: usize, n: i32): void {
  // %q-like: enough for an error message.
  putJSONString(p, n < 64 ? n : 64);
}

export function aiaas_postprocess(ptr: i32, len: i32): i32 {
  const base = <usize>ptr;
  if (ptr <= 0 || len < 0 || base + <usize>len > ((<usize>memory.size()) << 16)) {
    return failMsg("top-k: input buffer outside memory");
  }
  if (len < 8) return failMsg("top-k: safetensors: input shorter than the 8-byte header length");
  const hlen = load<u64>(base);
  if (hlen > <u64>(len - 8)) return failMsg("top-k: safetensors: header length exceeds the input");
  if (hlen < 2) return failMsg("top-k: safetensors: header too short");

  // Reset the parse state (instances are reused across calls).
  src = base + 8; pos = 0; lim = <i32>hlen; perr = false;
  nTensors = 0;
  kLen = -1; labelsLen = -1; outNameLen = -1;
  tName = alloc(MAX_TENSORS * sizeof<usize>());
  tNameLen = alloc(MAX_TENSORS * 4);
  tDtypeF32 = alloc(MAX_TENSORS * 4);
  tRank = alloc(MAX_TENSORS * 4);
  tShape = alloc(MAX_TENSORS * MAX_RANK * 8);
  tBegin = alloc(MAX_TENSORS * 8);
  tEnd = alloc(MAX_TENSORS * 8);
  tDtypePtr = alloc(MAX_TENSORS * sizeof<usize>());
  tDtypeLen = alloc(MAX_TENSORS * 4);
  if (tDtypeLen == 0) return failMsg("top-k: out of memory");

  parseHeader();
  if (perr) {
    bufReset(256);
    putStr("top-k: safetensors: malformed header at byte ");
    putInt(perrAt);
    putStr(": want ");
    putStr(perrWhat);
    return fail();
  }
  const dataLen = <i64>len - 8 - <i64>hlen;
  const data = src + <usize>hlen;

  // Pick the tensor, as the Go plugin does.
  let t = -1;
  if (outNameLen <= 0 && nTensors == 1) t = 0; // an empty "output" is no name, as in Go
  else {
    let np = outNamePtr; let nl = outNameLen;
    if (nl <= 0) { np = changetype<usize>(0); nl = -1; }
    for (let i = 0; i < nTensors; i++) {
      const p = load<usize>(tName + <usize>(i * sizeof<usize>()));
      const l = load<i32>(tNameLen + <usize>(i * 4));
      if (nl < 0 ? isStr(p, l, "output") : (l == nl && memory.compare(p, np, <usize>l) == 0)) { t = i; break; }
    }
    if (t < 0) {
      bufReset(128);
      putStr("top-k: no tensor named ");
      if (nl < 0) putStr("\"output\""); else putQuoted(np, nl);
      putStr(" among ");
      putInt(nTensors);
      return fail();
    }
  }
  const namePtr = load<usize>(tName + <usize>(t * sizeof<usize>()));
  const nameLen = load<i32>(tNameLen + <usize>(t * 4));
  const rank = load<i32>(tRank + <usize>(t * 4));
  const dtype = load<i32>(tDtypeF32 + <usize>(t * 4));
  const begin = load<i64>(tBegin + <usize>(t * 8));
  const end = load<i64>(tEnd + <usize>(t * 8));
  if (rank < 0 || dtype < 0 || begin < 0) {
    bufReset(128);
    putStr("top-k: safetensors: tensor ");
    putQuoted(namePtr, nameLen);
    putStr(" lacks dtype, shape or data_offsets");
    return fail();
  }
  const d0 = rank > 0 ? load<i64>(tShape + <usize>(t * MAX_RANK * 8)) : 0;
  if (rank == 0 || rank > 2 || (rank == 2 && d0 != 1)) {
    bufReset(128);
    putStr("top-k: tensor ");
    putQuoted(namePtr, nameLen);
    putStr(" has shape [");
    for (let i = 0; i < rank; i++) {
      if (i > 0) putByte(0x20);
      putInt(load<i64>(tShape + <usize>((t * MAX_RANK + i) * 8)));
    }
    putStr("]; want [K] or [1,K]");
    return fail();
  }
  const n64 = load<i64>(tShape + <usize>((t * MAX_RANK + rank - 1) * 8));
  if (n64 > MAX_CLASSES) {
    bufReset(128);
    putStr("top-k: "); putInt(n64); putStr(" classes; at most "); putInt(MAX_CLASSES);
    return fail();
  }
  if (dtype != 1) {
    bufReset(128);
    putStr("top-k: tensor ");
    putQuoted(namePtr, nameLen);
    putStr(" is ");
    putQuoted(load<usize>(tDtypePtr + <usize>(t * sizeof<usize>())), load<i32>(tDtypeLen + <usize>(t * 4)));
    putStr("; want F32");
    return fail();
  }
  if (end < begin || end > dataLen || end - begin != n64 * 4) {
    bufReset(128);
    putStr("top-k: safetensors: data_offsets [");
    putInt(begin); putByte(0x2c); putInt(end);
    putStr("] do not hold ");
    putInt(n64);
    putStr(" F32 values within the ");
    putInt(dataLen);
    putStr(" data bytes");
    return fail();
  }
  const n = <i32>n64;
  if (n == 0) return failMsg("top-k: no scores");

  let k = DEFAULT_K;
  if (kLen >= 0) {
    k = parseK(kPtr, kLen);
    if (k < 1 || k > MAX_K) {
      bufReset(128);
      putStr("top-k: parameter k=");
      putQuoted(kPtr, kLen);
      putStr("; want an integer in 1..100");
      return fail();
    }
  }

  // Copy the scores to an aligned buffer (the data section need not be
  // 4-byte aligned; the intrinsics require it).
  const scores = alloc(<usize>n * 4);
  const kk = k < n ? k : n;
  const idx = alloc(<usize>kk * 4);
  if (scores == 0 || idx == 0) return failMsg("top-k: out of memory");
  memory.copy(scores, data + <usize>begin, <usize>n * 4);

  let sum: f64 = 0;
  let dist = true;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(scores + <usize>(i * 4));
    if (v < 0 || v != v) { dist = false; break; }
    sum += <f64>v;
  }
  if (dist && Math.abs(sum - 1) > 1e-3) dist = false;
  if (!dist && host_softmax_f32(scores, n) < 0) return failMsg("top-k: softmax_f32 failed");
  const got = host_topk_f32(idx, scores, n, k);
  if (got < 0) return failMsg("top-k: topk_f32 failed");

  bufReset(64 * got + 32);
  putStr("{\"predictions\":[");
  for (let j = 0; j < got; j++) {
    const i = load<i32>(idx + <usize>(j * 4));
    if (i < 0 || i >= n) return failMsg("top-k: topk_f32 returned an index out of range");
    if (j > 0) putByte(0x2c);
    putStr("{\"label\":");
    if (!putLabel(i)) { putByte(0x22); putInt(i); putByte(0x22); }
    putStr(",\"index\":");
    putInt(i);
    putStr(",\"score\":");
    putScore(<f64>load<f32>(scores + <usize>(i * 4)));
    putByte(0x7d);
  }
  putStr("]}");
  if (outOOM) return fail();
  const body = outPtr; const bodyLen = outLen;
  const ct = "application/json";
  bufReset(32);
  putStr(ct);
  if (outOOM) return fail();
  host_set_content_type(outPtr, outLen);
  if (host_set_output(body, bodyLen) < 0) return failMsg("top-k: set_output refused the response");
  return STATUS_OK;
}

// parseK is strconv.Atoi for small values: an optional sign and decimal
// digits; anything else (or a value out of range) returns 0.
function parseK(p: usize, n: i32): i32 {
  let i = 0;
  let neg = false;
  if (n > 0) {
    const c = <i32>load<u8>(p);
    if (c == 0x2b || c == 0x2d) { neg = c == 0x2d; i = 1; }
  }
  if (i == n) return 0;
  let v = 0;
  for (; i < n; i++) {
    const c = <i32>load<u8>(p + <usize>i);
    if (c < 0x30 || c > 0x39) return 0;
    v = v * 10 + (c - 0x30);
    if (v > 1000) v = 1000; // saturate: out of range either way
  }
  return neg ? -v : v;
}

// putLabel writes the i-th comma-separated label, trimmed, if there is
// one; false means use the index.
function putLabel(i: i32): bool {
  if (labelsLen <= 0) return false;
  let start = 0;
  let field = 0;
  for (let j = 0; j <= labelsLen; j++) {
    if (j == labelsLen || load<u8>(labelsPtr + <usize>j) == 0x2c) {
      if (field == i) {
        let s = start, e = j;
        while (s < e && isSpace(<i32>load<u8>(labelsPtr + <usize>s))) s++;
        while (e > s && isSpace(<i32>load<u8>(labelsPtr + <usize>(e - 1)))) e--;
        putJSONString(labelsPtr + <usize>s, e - s);
        return true;
      }
      field++;
      start = j + 1;
    }
  }
  return false;
}
