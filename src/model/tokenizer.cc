// CLIP byte-level BPE tokenizer; see tokenizer.h for what of the reference is replicated.
//
// Reference: openai/CLIP clip/simple_tokenizer.py (SimpleTokenizer) and clip/clip.py (tokenize):
//   encode(text) = for each regex pre-token of
//                    whitespace_clean(basic_clean(text)).lower():
//                  bpe(byte-to-unicode(utf-8 bytes of token)) -> encoder ids
//   basic_clean = ftfy.fix_text, html.unescape(html.unescape(.)), strip
//   whitespace_clean = regex.sub(r'\s+', ' ', .), strip
// The cleaning and the code-point classes live in text_clean.cc; this file holds the CLIP
// pre-token split, the byte-to-unicode table, the merges file and the BPE.
#include "model/tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "model/text_clean.h"

namespace cliphba::model {
namespace {

// ---------------------------------------------------------------------------------------------
// Pre-tokenisation: the CLIP pattern, compiled with regex.IGNORECASE,
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// applied with findall (leftmost alternative wins; unmatched code points, i.e. \s, are skipped).
// ---------------------------------------------------------------------------------------------

// Case-insensitive match of an ASCII pattern char as the regex module does it (simple case
// folding): ASCII letters match both cases, and 's' also matches U+017F (long s).
bool CharMatchesCi(char32_t c, char p) {
  if (c == static_cast<char32_t>(p)) return true;
  if (p >= 'a' && p <= 'z' && c == static_cast<char32_t>(p - 32)) return true;
  return p == 's' && c == 0x017F;
}

// Length of the match of literal `pat` at s[pos], or 0.
size_t MatchLiteralCi(const std::u32string& s, size_t pos, std::string_view pat) {
  if (pos + pat.size() > s.size()) return 0;
  for (size_t k = 0; k < pat.size(); ++k) {
    if (!CharMatchesCi(s[pos + k], pat[k])) return 0;
  }
  return pat.size();
}

std::vector<std::u32string> PreTokenize(const std::u32string& s) {
  static constexpr std::string_view kLiterals[] = {
      "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  std::vector<std::u32string> tokens;
  size_t pos = 0;
  const size_t n = s.size();
  while (pos < n) {
    size_t len = 0;
    for (std::string_view lit : kLiterals) {
      len = MatchLiteralCi(s, pos, lit);
      if (len > 0) break;
    }
    if (len == 0) {
      const char32_t c = s[pos];
      if (IsLetter(c)) {
        len = 1;
        while (pos + len < n && IsLetter(s[pos + len])) ++len;
      } else if (IsNumber(c)) {
        len = 1;
      } else if (!IsRegexSpace(c)) {
        len = 1;
        while (pos + len < n && !IsRegexSpace(s[pos + len]) && !IsLetter(s[pos + len]) &&
               !IsNumber(s[pos + len])) {
          ++len;
        }
      }
    }
    if (len == 0) {
      ++pos;  // whitespace: not part of any token
    } else {
      tokens.emplace_back(s.substr(pos, len));
      pos += len;
    }
  }
  return tokens;
}

// openai bytes_to_unicode(): printable Latin-1 bytes map to themselves, the others to 256 + n.
// Returns the code points in the reference's dict order (bs order) with their bytes.
std::vector<std::pair<unsigned char, char32_t>> BytesToUnicode() {
  std::vector<std::pair<unsigned char, char32_t>> table;
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) table.emplace_back(static_cast<unsigned char>(b), static_cast<char32_t>(b));
  }
  char32_t n = 0;
  for (int b = 0; b < 256; ++b) {
    if (!printable(b)) table.emplace_back(static_cast<unsigned char>(b), 256 + n++);
  }
  return table;
}

// Reads a whole gzip file. IoError: cannot open/read; DataError: not gzip, a truncated or corrupt
// stream (invalid input data, exit 4, as every truncated input).
std::string ReadGzip(const std::string& path) {
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw IoError("ClipTokenizer: cannot open BPE merges file '" + path +
                  "': " + (errno != 0 ? std::strerror(errno) : "out of memory"));
  }
  std::string data;
  std::vector<char> buf(1 << 16);
  bool checked_direct = false;
  for (;;) {
    const int got = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (got > 0) data.append(buf.data(), static_cast<size_t>(got));
    if (!checked_direct && got >= 0) {
      checked_direct = true;
      if (gzdirect(f) == 1 && !data.empty()) {
        gzclose(f);
        throw DataError("ClipTokenizer: BPE merges file '" + path +
                        "' is not a gzip file (expected bpe_simple_vocab_16e6.txt.gz)");
      }
    }
    if (got <= 0) break;
  }
  int code = Z_OK;
  const char* msg = gzerror(f, &code);
  const std::string message = msg != nullptr ? msg : "";
  const int saved_errno = errno;
  gzclose(f);
  if (code == Z_OK || code == Z_STREAM_END) return data;
  if (code == Z_BUF_ERROR) {
    throw DataError("ClipTokenizer: BPE merges file '" + path +
                    "' is truncated (gzip stream ends early: " + message + ")");
  }
  if (code == Z_ERRNO) {
    throw IoError("ClipTokenizer: cannot read BPE merges file '" + path +
                  "': " + std::strerror(saved_errno));
  }
  throw DataError("ClipTokenizer: BPE merges file '" + path + "' is not a valid gzip stream (" +
                  message + ")");
}

constexpr size_t kNumMerges = 49152 - 256 - 2;  // 48894, as merges[1:49152-256-2+1]

}  // namespace

ClipTokenizer::ClipTokenizer(const std::string& bpe_gz_path) : path_(bpe_gz_path) {
  const std::string text = ReadGzip(path_);
  std::u32string check;
  if (!DecodeUtf8(text, &check)) {
    throw DataError("ClipTokenizer: BPE merges file '" + path_ + "' is not valid UTF-8");
  }

  // Byte-to-unicode table and the 512 byte symbols.
  const auto b2u = BytesToUnicode();
  byte_encoder_.assign(256, std::string());
  vocab_.reserve(kVocabSize);
  for (const auto& [byte, cp] : b2u) {
    std::string sym;
    AppendUtf8(cp, &sym);
    byte_encoder_[byte] = sym;
    vocab_.push_back(sym);
  }
  for (size_t i = 0; i < 256; ++i) vocab_.push_back(vocab_[i] + "</w>");

  // Merges: lines [1, 1 + kNumMerges) of text.split('\n'), each "first second".
  size_t line_no = 0, begin = 0;
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(kNumMerges);
  while (merges.size() < kNumMerges && begin <= text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + begin, end - begin);
    if (line_no >= 1) {
      std::vector<std::string_view> fields;
      size_t p = 0;
      while (p < line.size()) {
        while (p < line.size() && std::isspace(static_cast<unsigned char>(line[p]))) ++p;
        size_t q = p;
        while (q < line.size() && !std::isspace(static_cast<unsigned char>(line[q]))) ++q;
        if (q > p) fields.push_back(line.substr(p, q - p));
        p = q;
      }
      if (fields.size() != 2) {
        throw DataError("ClipTokenizer: BPE merges file '" + path_ + "', line " +
                        std::to_string(line_no + 1) + ": expected a merge \"first second\", got '" +
                        std::string(line) + "'");
      }
      merges.emplace_back(std::string(fields[0]), std::string(fields[1]));
    }
    ++line_no;
    begin = end + 1;
  }
  if (merges.size() < kNumMerges) {
    throw DataError("ClipTokenizer: BPE merges file '" + path_ + "' has " +
                    std::to_string(merges.size()) + " merge lines after the header; expected at " +
                    "least " + std::to_string(kNumMerges));
  }
  for (size_t r = 0; r < merges.size(); ++r) {
    bpe_ranks_[merges[r].first + " " + merges[r].second] = static_cast<int32_t>(r);
    vocab_.push_back(merges[r].first + merges[r].second);
  }
  vocab_.push_back("<|startoftext|>");
  vocab_.push_back("<|endoftext|>");
  for (size_t i = 0; i < vocab_.size(); ++i) encoder_[vocab_[i]] = static_cast<int64_t>(i);
  cache_["<|startoftext|>"] = {kSot};
  cache_["<|endoftext|>"] = {kEot};
}

const std::string& ClipTokenizer::Decoder(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(vocab_.size())) {
    throw DataError("ClipTokenizer::Decoder: id " + std::to_string(id) + " is outside [0, " +
                    std::to_string(vocab_.size()) + ")");
  }
  return vocab_[static_cast<size_t>(id)];
}

std::vector<int64_t> ClipTokenizer::Bpe(const std::string& token) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(token);
    if (it != cache_.end()) return it->second;
  }
  // Split the UTF-8 token into code points (symbols); the last one carries the word end.
  std::vector<std::string> word;
  for (size_t i = 0; i < token.size();) {
    size_t len = 1;
    while (i + len < token.size() && (static_cast<unsigned char>(token[i + len]) & 0xC0) == 0x80) {
      ++len;
    }
    word.emplace_back(token.substr(i, len));
    i += len;
  }
  std::vector<int64_t> ids;
  if (!word.empty()) {
    word.back() += "</w>";
    while (word.size() > 1) {
      int32_t best = std::numeric_limits<int32_t>::max();
      size_t best_i = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = bpe_ranks_.find(word[i] + " " + word[i + 1]);
        if (it != bpe_ranks_.end() && it->second < best) best = it->second, best_i = i;
      }
      if (best == std::numeric_limits<int32_t>::max()) break;
      const std::string first = word[best_i], second = word[best_i + 1];
      std::vector<std::string> merged;
      merged.reserve(word.size());
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(first + second);
          i += 2;
        } else {
          merged.push_back(word[i]);
          i += 1;
        }
      }
      word = std::move(merged);
    }
    ids.reserve(word.size());
    for (const std::string& sym : word) {
      auto it = encoder_.find(sym);
      if (it == encoder_.end()) {  // cannot happen with a consistent merges file
        throw DataError("ClipTokenizer: BPE symbol '" + sym + "' is not in the vocabulary of '" +
                        path_ + "'");
      }
      ids.push_back(it->second);
    }
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.emplace(token, ids);
  return ids;
}

std::string ClipTokenizer::Clean(const std::string& text) const {
  return ToUtf8(CleanCodepoints(text));
}

std::vector<int64_t> ClipTokenizer::Encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::u32string& tok : PreTokenize(CleanCodepoints(text))) {
    std::string mapped;
    for (unsigned char b : ToUtf8(tok)) mapped += byte_encoder_[b];
    const std::vector<int64_t> piece = Bpe(mapped);
    ids.insert(ids.end(), piece.begin(), piece.end());
  }
  return ids;
}

std::vector<int64_t> ClipTokenizer::Tokenize(const std::string& text, int64_t context_length,
                                             bool truncate) const {
  if (context_length < 1) {
    throw ConfigError("ClipTokenizer::Tokenize: context_length must be >= 1, got " +
                      std::to_string(context_length));
  }
  std::vector<int64_t> ids;
  ids.push_back(kSot);
  const std::vector<int64_t> body = Encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(kEot);
  const auto cl = static_cast<size_t>(context_length);
  if (ids.size() > cl) {
    if (!truncate) {
      throw DataError("ClipTokenizer: text '" + text + "' has " + std::to_string(ids.size()) +
                      " tokens including SOT/EOT, more than the context length " +
                      std::to_string(context_length) + " (shorten it or tokenize with truncate)");
    }
    ids.resize(cl);
    ids.back() = kEot;
  }
  ids.resize(cl, 0);
  return ids;
}

at::Tensor ClipTokenizer::TokenizeBatch(const std::vector<std::string>& texts,
                                        int64_t context_length, bool truncate) const {
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  for (const std::string& t : texts) rows.push_back(Tokenize(t, context_length, truncate));
  at::Tensor out = at::zeros({static_cast<int64_t>(texts.size()), context_length},
                             at::TensorOptions().dtype(at::kLong));
  if (!rows.empty()) {
    int64_t* p = out.data_ptr<int64_t>();
    for (const auto& row : rows) p = std::copy(row.begin(), row.end(), p);
  }
  return out;
}

at::Tensor RemapTinyVocab(const at::Tensor& ids) {
  at::Tensor out = at::remainder(ids, 4094);
  out = at::where(ids == ClipTokenizer::kSot, at::full_like(ids, 4094), out);
  out = at::where(ids == ClipTokenizer::kEot, at::full_like(ids, 4095), out);
  return out;
}

}  // namespace cliphba::model
