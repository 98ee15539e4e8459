// The OpenAI CLIP byte-level BPE tokenizer (clip/simple_tokenizer.py + clip.tokenize), in C++.
//
// Equal to the reference for every string of shared/fixtures/clip/tokenizer_reference.json (exact
// ids). The reference's text cleaning is replicated as follows (see text_clean.cc for details):
//
//  * ftfy.fix_text: NOT available. cliphba replicates only the subset "uncurl_quotes":
//    U+02BC and U+2018..U+201B -> ', U+201C..U+201F -> " (ftfy 6, default settings). Everything
//    else ftfy does (mojibake repair, its own HTML unescape pass, NFC normalisation, ligature and
//    width fixes, control-character removal, ...) is NOT done; strings that need it tokenize
//    differently from the reference (none of the fixture strings do). As ftfy's own HTML pass is
//    not replicated, an escaped curly quote ("&#8217;") stays curly here (ftfy would uncurl it).
//  * html.unescape, twice: exact Python semantics for numeric references (&#NNN; &#xHH; with or
//    without ';', HTML5 remapping of invalid code points) and for the named entities of HTML 4
//    (252 names, incl. every legacy name accepted without ';') plus &apos; and the upper-case
//    legacy names AMP COPY GT LT QUOT REG. HTML5-only names
//    (e.g. &NewLine; &bigstar;) are left unchanged, where Python would decode them.
//  * str.strip, regex \s+ -> ' ', strip: exact (Python's isspace set for strip, the Unicode
//    White_Space set of the `regex` module for \s).
//  * str.lower: exact for all single-code-point mappings of Unicode 14.0 (Python 3.11) plus
//    U+0130 -> "i\u0307" and the final-sigma rule (Σ -> ς; Cased / Case_Ignorable tables from
//    the `regex` module). Code points assigned after Unicode 14.0 are not lower-cased.
//  * The CLIP regex split ('s 't 're 've 'm 'll 'd, \p{L}+, \p{N}, [^\s\p{L}\p{N}]+, the two
//    specials; IGNORECASE): hand-written over code points; \p{L} / \p{N} tables generated from the
//    Python `regex` module 2026.5.9.
//
// Thread-safety: Encode/Tokenize/TokenizeBatch are const and may be called concurrently; the BPE
// cache (one entry per distinct pre-token, never evicted) is guarded by a mutex. Tokenise once
// (TokenizeBatch) and keep the tensor: never per step.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace cliphba::model {

class ClipTokenizer {
 public:
  static constexpr int64_t kSot = 49406;  // <|startoftext|>
  static constexpr int64_t kEot = 49407;  // <|endoftext|>
  static constexpr int64_t kVocabSize = 49408;
  static constexpr int64_t kContextLength = 77;

  // Reads the gzip'ed merges file (bpe_simple_vocab_16e6.txt.gz): a version header line, then
  // at least 48894 merge lines "a b"; only the first 48894 are used, as in the reference.
  // Throws IoError if the file cannot be opened or its gzip stream is truncated, DataError if it is
  // not gzip, corrupt, not UTF-8, or has too few / malformed merge lines. Messages name the file.
  explicit ClipTokenizer(const std::string& bpe_gz_path);

  // BPE ids of the cleaned text, without SOT/EOT. `text` must be valid UTF-8 (else DataError
  // naming the text). A literal "<|startoftext|>" / "<|endoftext|>" maps to kSot / kEot.
  std::vector<int64_t> Encode(const std::string& text) const;

  // [kSot] + Encode(text) + [kEot], zero-padded to context_length (>= 1, else ConfigError).
  // Longer than context_length: DataError naming the text, unless truncate, in which case the
  // first context_length ids are kept and the last one is forced to kEot (as the reference).
  std::vector<int64_t> Tokenize(const std::string& text, int64_t context_length = kContextLength,
                                bool truncate = false) const;

  // (K x context_length) int64 CPU tensor, row k = Tokenize(texts[k], ...). K may be 0.
  at::Tensor TokenizeBatch(const std::vector<std::string>& texts,
                           int64_t context_length = kContextLength, bool truncate = false) const;

  // The text after ftfy-subset, html.unescape x2, strip, whitespace collapse and lower-casing
  // (the reference's "cleaned" text), as UTF-8. Exposed for tests and diagnostics.
  std::string Clean(const std::string& text) const;

  // Vocabulary string (byte-to-unicode alphabet, UTF-8) of an id in [0, kVocabSize).
  const std::string& Decoder(int64_t id) const;

 private:
  // BPE ids of one pre-token (already mapped through the byte-to-unicode table), memoised.
  std::vector<int64_t> Bpe(const std::string& token) const;

  std::string path_;
  std::vector<std::string> vocab_;                      // id -> symbol string
  std::unordered_map<std::string, int64_t> encoder_;    // symbol string -> id
  std::unordered_map<std::string, int32_t> bpe_ranks_;  // "first second" -> merge rank
  std::vector<std::string> byte_encoder_;               // byte -> UTF-8 of its unicode symbol
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

// The reduced-vocabulary remap of the tiny fixture models (../shared/fixtures/clip/README.md):
// SOT -> 4094, EOT -> 4095, any other id -> id % 4094, padding 0 stays 0. ids: int64, any shape.
// Only for checkpoints whose token_embedding has 4096 rows.
at::Tensor RemapTinyVocab(const at::Tensor& ids);

}  // namespace cliphba::model
