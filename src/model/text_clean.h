// Internal to model/: the text cleaning of the CLIP tokenizer (ftfy subset, html.unescape x2,
// strip, whitespace collapse, str.lower), UTF-8 conversion and the code-point classes of the
// CLIP pre-token pattern. What of the Python reference is replicated: see tokenizer.h.
#pragma once

#include <string>
#include <string_view>

namespace cliphba::model {

// Appends the UTF-8 encoding of code point c (REQUIRES: c <= 0x10FFFF) to *out.
void AppendUtf8(char32_t c, std::string* out);

// UTF-8 encoding of s.
std::string ToUtf8(std::u32string_view s);

// Strict UTF-8 decoding (no overlong forms, surrogates or values above U+10FFFF) of s into *out
// (cleared first). Returns false on invalid input (*out is then unspecified).
bool DecodeUtf8(std::string_view s, std::u32string* out);

// regex \p{L} (Unicode data of the `regex` module, see unicode_tables.inc).
bool IsLetter(char32_t c);

// regex \p{N}.
bool IsNumber(char32_t c);

// \s of the `regex` module on str patterns: the Unicode White_Space property.
bool IsRegexSpace(char32_t c);

// The reference's cleaning of `text` (UTF-8) as code points:
//   PyLower(strip(whitespace_clean(strip(html.unescape(html.unescape(ftfy_subset(text))))))).
// Throws DataError naming the text if it is not valid UTF-8.
std::u32string CleanCodepoints(const std::string& text);

}  // namespace cliphba::model
