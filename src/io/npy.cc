// NPY reading and writing. Format reference: numpy/lib/format.py (NEP 1).
//
// Layout: magic "\x93NUMPY", major, minor, header length (uint16 LE for 1.0, uint32 LE for 2.0 and
// 3.0), then a Python dict literal padded with spaces and ended by '\n', then the raw data.
#include "io/npy.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace cliphba::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr int64_t kMagicLen = 6;
constexpr int kMaxDims = 4;

// The raw byte copies below assume a little-endian host; '<' and '=' then mean the same.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "cliphba's NPY reader assumes little-endian");

std::string ErrnoText() { return std::strerror(errno); }

// Closes a FILE* on scope exit (read side; write side checks fclose explicitly).
struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr OpenForRead(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) throw IoError(path + ": cannot open NPY file for reading: " + ErrnoText());
  return f;
}

int64_t FileSize(const std::string& path, std::FILE* f) {
  struct stat st;
  if (fstat(fileno(f), &st) != 0) throw IoError(path + ": cannot stat NPY file: " + ErrnoText());
  if (!S_ISREG(st.st_mode)) throw IoError(path + ": not a regular file");
  return static_cast<int64_t>(st.st_size);
}

// ---- A small parser for the Python literal subset numpy writes in NPY headers ----
//
// Grammar: value := dict | tuple | list | string | int | True | False | None.
// Integers may carry a Python 2 'L' suffix (old numpy wrote "(3L, 4L)").

struct PyValue {
  enum Kind { kDict, kTuple, kList, kStr, kInt, kBool, kNone } kind = kNone;
  std::string str;
  int64_t i = 0;
  bool b = false;
  std::vector<PyValue> items;                         // tuple / list elements
  std::vector<std::pair<std::string, PyValue>> dict;  // dict entries, file order
};

const char* KindName(PyValue::Kind k) {
  switch (k) {
    case PyValue::kDict:
      return "a dict";
    case PyValue::kTuple:
      return "a tuple";
    case PyValue::kList:
      return "a list";
    case PyValue::kStr:
      return "a string";
    case PyValue::kInt:
      return "an integer";
    case PyValue::kBool:
      return "a boolean";
    case PyValue::kNone:
      return "None";
  }
  return "?";
}

class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : path_(path), text_(text) {}

  // Parses the whole header: exactly one dict literal, then only whitespace.
  PyValue ParseTop() {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != '{') {
      Fail("expected the header to be a Python dict literal starting with '{'");
    }
    PyValue v = ParseValue(0);
    SkipSpace();
    if (pos_ != text_.size()) Fail("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    std::string snippet = text_.substr(0, 120);
    for (char& c : snippet) {
      if (c == '\n') c = ' ';
    }
    while (!snippet.empty() && snippet.back() == ' ') snippet.pop_back();
    throw DataError(path_ + ": malformed NPY header at character " + std::to_string(pos_) + ": " +
                    what + " (header: \"" + snippet + (text_.size() > 120 ? "..." : "") + "\")");
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  PyValue ParseValue(int depth) {
    if (depth > 16) Fail("nesting too deep");
    SkipSpace();
    if (pos_ >= text_.size()) Fail("unexpected end of header");
    const char c = text_[pos_];
    if (c == '{') return ParseDict(depth);
    if (c == '(') return ParseSeq(depth, ')', PyValue::kTuple);
    if (c == '[') return ParseSeq(depth, ']', PyValue::kList);
    if (c == '\'' || c == '"') return ParseString();
    if (c == '-' || c == '+' || (c >= '0' && c <= '9')) return ParseInt();
    return ParseWord();
  }

  PyValue ParseDict(int depth) {
    PyValue v;
    v.kind = PyValue::kDict;
    ++pos_;  // '{'
    while (true) {
      if (Consume('}')) return v;
      SkipSpace();
      if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
        Fail("expected a quoted dict key or '}'");
      }
      std::string key = ParseString().str;
      if (!Consume(':')) Fail("expected ':' after dict key '" + key + "'");
      PyValue val = ParseValue(depth + 1);
      for (const auto& kv : v.dict) {
        if (kv.first == key) Fail("duplicate dict key '" + key + "'");
      }
      v.dict.emplace_back(std::move(key), std::move(val));
      if (Consume(',')) continue;
      if (Consume('}')) return v;
      Fail("expected ',' or '}' in dict");
    }
  }

  PyValue ParseSeq(int depth, char close, PyValue::Kind kind) {
    PyValue v;
    v.kind = kind;
    ++pos_;  // '(' or '['
    while (true) {
      if (Consume(close)) return v;
      v.items.push_back(ParseValue(depth + 1));
      if (Consume(',')) continue;
      if (Consume(close)) {
        // Python: "(5)" is the integer 5, not a tuple; numpy always writes "(5,)".
        if (kind == PyValue::kTuple && v.items.size() == 1) {
          Fail("a 1-tuple needs a trailing comma, as in (5,)");
        }
        return v;
      }
      Fail(std::string("expected ',' or '") + close + "'");
    }
  }

  PyValue ParseString() {
    PyValue v;
    v.kind = PyValue::kStr;
    const char quote = text_[pos_++];
    while (true) {
      if (pos_ >= text_.size()) Fail("unterminated string");
      char c = text_[pos_++];
      if (c == quote) return v;
      if (c == '\\') {
        if (pos_ >= text_.size()) Fail("unterminated string");
        c = text_[pos_++];
      }
      v.str.push_back(c);
    }
  }

  PyValue ParseInt() {
    PyValue v;
    v.kind = PyValue::kInt;
    const size_t start = pos_;
    bool neg = false;
    if (text_[pos_] == '+' || text_[pos_] == '-') neg = text_[pos_++] == '-';
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') Fail("expected digits");
    uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<uint64_t>(text_[pos_++] - '0');
      if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        pos_ = start;
        Fail("integer too large");
      }
    }
    if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;
    v.i = neg ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
    return v;
  }

  PyValue ParseWord() {
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      ++pos_;
    }
    const std::string word = text_.substr(start, pos_ - start);
    PyValue v;
    if (word == "True" || word == "False") {
      v.kind = PyValue::kBool;
      v.b = word == "True";
    } else if (word == "None") {
      v.kind = PyValue::kNone;
    } else {
      pos_ = start;
      Fail("unexpected token '" + (word.empty() ? text_.substr(pos_, 1) : word) + "'");
    }
    return v;
  }

  const std::string& path_;
  const std::string& text_;
  size_t pos_ = 0;
};

// ---- dtypes ----

struct DtypeInfo {
  char kind;  // numpy kind character: 'f', 'i', 'u'
  int64_t itemsize;
  at::ScalarType type;
};

constexpr DtypeInfo kDtypes[] = {
    {'f', 4, at::kFloat}, {'f', 8, at::kDouble}, {'i', 8, at::kLong},
    {'i', 4, at::kInt},   {'i', 1, at::kChar},   {'u', 1, at::kByte},
};

const char* kSupported = "'<f4', '<f8', '<i8', '<i4', '|i1', '|u1'";

at::ScalarType DescrToType(const std::string& path, const std::string& descr) {
  const std::string field = path + ": NPY header field 'descr' is '" + descr + "'; ";
  if (descr.size() < 2) {
    throw DataError(field + "expected a byte order and a type code such as '<f8' (supported: " +
                    kSupported + ")");
  }
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '=' && order != '|') {
    throw DataError(field +
                    "expected a byte-order prefix '<', '|' or '=' (supported: " + kSupported + ")");
  }
  const std::string code = descr.substr(1);
  if (code[0] == 'O') {
    throw DataError(field +
                    "object arrays (pickled Python objects) are not supported; save a numeric "
                    "array (supported: " +
                    std::string(kSupported) + ")");
  }
  for (const DtypeInfo& d : kDtypes) {
    if (code == std::string(1, d.kind) + std::to_string(d.itemsize)) {
      if (d.itemsize > 1 && order == '>') {
        throw DataError(field +
                        "big-endian data are not supported; re-save as little-endian with "
                        "arr.astype(arr.dtype.newbyteorder('<'))");
      }
      if (d.itemsize > 1 && order == '|') {
        throw DataError(field + "a multi-byte type needs an explicit byte order '<'");
      }
      return d.type;
    }
  }
  throw DataError(field + "unsupported dtype (supported: " + kSupported + ")");
}

int64_t ItemSize(at::ScalarType t) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.type == t) return d.itemsize;
  }
  return 0;
}

const PyValue* FindKey(const PyValue& dict, const std::string& key) {
  for (const auto& kv : dict.dict) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

// Parses and validates the header; fortran_order is reported, refused unless allowed.
NpyHeader ParseHeader(const std::string& path, std::FILE* f, int64_t file_size,
                      bool allow_fortran_order) {
  unsigned char pre[kMagicLen + 2];
  if (file_size < kMagicLen + 2 || std::fread(pre, 1, sizeof(pre), f) != sizeof(pre)) {
    throw DataError(path + ": not an NPY file: only " + std::to_string(file_size) +
                    " bytes, shorter than the NPY magic and version");
  }
  if (std::memcmp(pre, kMagic, kMagicLen) != 0) {
    throw DataError(path +
                    ": not an NPY file: bad magic (expected the bytes \\x93NUMPY at the start; "
                    "was the file written with np.save?)");
  }
  const int major = pre[kMagicLen], minor = pre[kMagicLen + 1];
  if (minor != 0 || major < 1 || major > 3) {
    throw DataError(path + ": unsupported NPY format version " + std::to_string(major) + "." +
                    std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
  }
  const int64_t len_bytes = major == 1 ? 2 : 4;
  unsigned char len_buf[4] = {0, 0, 0, 0};
  if (std::fread(len_buf, 1, len_bytes, f) != static_cast<size_t>(len_bytes)) {
    throw DataError(path + ": truncated NPY file: it ends inside the header length field");
  }
  int64_t header_len = 0;
  for (int64_t k = len_bytes - 1; k >= 0; --k) header_len = (header_len << 8) | len_buf[k];
  const int64_t data_offset = kMagicLen + 2 + len_bytes + header_len;
  if (data_offset > file_size) {
    throw DataError(path + ": truncated NPY file: header length field promises " +
                    std::to_string(header_len) + " header bytes, the file has only " +
                    std::to_string(file_size - (kMagicLen + 2 + len_bytes)) + " after it");
  }
  std::string text(static_cast<size_t>(header_len), '\0');
  if (header_len > 0 && std::fread(&text[0], 1, text.size(), f) != text.size()) {
    throw IoError(path + ": short read in the NPY header: " + ErrnoText());
  }

  const PyValue dict = HeaderParser(path, text).ParseTop();
  for (const auto& kv : dict.dict) {
    if (kv.first != "descr" && kv.first != "fortran_order" && kv.first != "shape") {
      throw DataError(path + ": NPY header has an unexpected key '" + kv.first +
                      "' (expected exactly 'descr', 'fortran_order', 'shape')");
    }
  }
  for (const char* key : {"descr", "fortran_order", "shape"}) {
    if (!FindKey(dict, key)) {
      throw DataError(path + ": NPY header is missing the key '" + key +
                      "' (expected 'descr', 'fortran_order', 'shape')");
    }
  }

  NpyHeader h;
  const PyValue& descr = *FindKey(dict, "descr");
  if (descr.kind == PyValue::kList) {
    throw DataError(path +
                    ": NPY header field 'descr' is a list: structured (record) dtypes are not "
                    "supported; save each field as its own plain numeric array");
  }
  if (descr.kind != PyValue::kStr) {
    throw DataError(path + ": NPY header field 'descr' is " + KindName(descr.kind) +
                    "; expected a dtype string such as '<f8'");
  }
  h.descr = descr.str;
  h.dtype = DescrToType(path, h.descr);

  const PyValue& fortran = *FindKey(dict, "fortran_order");
  if (fortran.kind != PyValue::kBool) {
    throw DataError(path + ": NPY header field 'fortran_order' is " + KindName(fortran.kind) +
                    "; expected True or False");
  }
  h.fortran_order = fortran.b;
  if (h.fortran_order && !allow_fortran_order) {
    throw DataError(path +
                    ": NPY header field 'fortran_order' is True; this reader takes C-order arrays "
                    "only (re-save with np.save(path, np.ascontiguousarray(arr)))");
  }

  const PyValue& shape = *FindKey(dict, "shape");
  if (shape.kind != PyValue::kTuple) {
    throw DataError(path + ": NPY header field 'shape' is " + KindName(shape.kind) +
                    "; expected a tuple of non-negative integers such as (48, 48)");
  }
  if (shape.items.size() > kMaxDims) {
    throw DataError(path + ": NPY header field 'shape' has " + std::to_string(shape.items.size()) +
                    " dimensions; cliphba supports at most " + std::to_string(kMaxDims));
  }
  int64_t numel = 1;
  for (const PyValue& d : shape.items) {
    if (d.kind != PyValue::kInt || d.i < 0) {
      throw DataError(path +
                      ": NPY header field 'shape' has an entry that is not a non-negative "
                      "integer; expected e.g. (48, 48)");
    }
    if (d.i > 0 && numel > std::numeric_limits<int64_t>::max() / d.i) {
      throw DataError(path + ": NPY header field 'shape' describes an impossibly large array");
    }
    numel *= d.i;
    h.shape.push_back(d.i);
  }
  const int64_t itemsize = ItemSize(h.dtype);
  if (numel > std::numeric_limits<int64_t>::max() / itemsize) {
    throw DataError(path + ": NPY header field 'shape' describes an impossibly large array");
  }
  h.data_offset = data_offset;
  h.data_bytes = numel * itemsize;

  const int64_t have = file_size - data_offset;
  if (have < h.data_bytes) {
    throw DataError(path + ": truncated: header promises " + std::to_string(h.data_bytes) +
                    " bytes of data, file has " + std::to_string(have));
  }
  if (have > h.data_bytes) {
    throw DataError(path + ": file has " + std::to_string(have - h.data_bytes) +
                    " bytes after the data the header describes (" + std::to_string(h.data_bytes) +
                    " bytes for shape and descr '" + h.descr +
                    "'): the header lies about the size, or the file was appended to");
  }
  return h;
}

// Reinterprets bytes laid out in Fortran order as a C-order tensor of `shape`.
at::Tensor FortranToC(const at::Tensor& reversed) {
  std::vector<int64_t> perm;
  for (int64_t d = reversed.dim() - 1; d >= 0; --d) perm.push_back(d);
  return reversed.permute(perm).contiguous();
}

// ---- writing ----

std::string ShapeLiteral(at::IntArrayRef sizes) {
  std::string s = "(";
  for (size_t k = 0; k < sizes.size(); ++k) {
    if (k > 0) s += ", ";
    s += std::to_string(sizes[k]);
  }
  if (sizes.size() == 1) s += ",";
  return s + ")";
}

std::string DescrOf(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "<f4";
    case at::kDouble:
      return "<f8";
    case at::kLong:
      return "<i8";
    case at::kInt:
      return "<i4";
    case at::kChar:
      return "|i1";
    case at::kByte:
      return "|u1";
    default:
      return "";
  }
}

}  // namespace

NpyHeader ReadNpyHeader(const std::string& path, bool allow_fortran_order) {
  FilePtr f = OpenForRead(path);
  return ParseHeader(path, f.get(), FileSize(path, f.get()), allow_fortran_order);
}

at::Tensor ReadNpy(const std::string& path, const NpyReadOptions& options) {
  FilePtr f = OpenForRead(path);
  const int64_t file_size = FileSize(path, f.get());
  const NpyHeader h = ParseHeader(path, f.get(), file_size, options.allow_fortran_order);

  std::vector<int64_t> shape = h.shape;
  if (h.fortran_order) shape.assign(h.shape.rbegin(), h.shape.rend());
  const auto topts = at::TensorOptions().dtype(h.dtype);

  // Mapping needs an element-aligned data offset (numpy pads to 64 bytes; crafted files may not).
  const bool mmap_ok = h.data_bytes > 0 && h.data_bytes >= options.mmap_threshold_bytes &&
                       h.data_offset % ItemSize(h.dtype) == 0 && !h.fortran_order;
  if (mmap_ok) {
    // Map the whole file (mmap offsets must be page-aligned) and point past the header.
    void* base =
        mmap(nullptr, static_cast<size_t>(file_size), PROT_READ, MAP_PRIVATE, fileno(f.get()), 0);
    if (base == MAP_FAILED) throw IoError(path + ": cannot memory-map NPY file: " + ErrnoText());
    const size_t map_len = static_cast<size_t>(file_size);
    return at::from_blob(
        static_cast<char*>(base) + h.data_offset, shape,
        [base, map_len](void*) { munmap(base, map_len); }, topts);
  }

  at::Tensor t = at::empty(shape, topts);
  if (h.data_bytes > 0) {
    const size_t got = std::fread(t.data_ptr(), 1, static_cast<size_t>(h.data_bytes), f.get());
    if (got != static_cast<size_t>(h.data_bytes)) {
      throw IoError(path + ": short read: expected " + std::to_string(h.data_bytes) +
                    " bytes of data, got " + std::to_string(got) +
                    (std::ferror(f.get()) ? ": " + ErrnoText() : std::string(" (file shrank?)")));
    }
  }
  return h.fortran_order ? FortranToC(t) : t;
}

at::Tensor ReadNpyRows(const std::string& path, const NpyHeader& h, int64_t first, int64_t count) {
  if (h.shape.empty())
    throw DataError(path + ": row-wise reading needs an array with at least one dimension");
  if (first < 0 || count < 0 || first + count > h.shape[0])
    throw DataError(path + ": rows [" + std::to_string(first) + ", " +
                    std::to_string(first + count) + ") are outside the array's " +
                    std::to_string(h.shape[0]) + " rows");
  std::vector<int64_t> shape = h.shape;
  shape[0] = count;
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(h.dtype));
  FilePtr f = OpenForRead(path);
  const int fd = fileno(f.get());
  // Reads `bytes` at `offset` into dst, whole.
  auto read_at = [&](char* dst, int64_t bytes, int64_t offset) {
    int64_t done = 0;
    while (done < bytes) {
      ssize_t got = pread(fd, dst + done, static_cast<size_t>(bytes - done), offset + done);
      if (got <= 0)
        throw IoError(path + ": short read at byte " + std::to_string(offset + done) +
                      (got < 0 ? ": " + ErrnoText() : std::string(": unexpected end of file")));
      done += got;
    }
  };
  if (!h.fortran_order) {  // the rows are one contiguous run
    const int64_t row_bytes = h.shape[0] > 0 ? h.data_bytes / h.shape[0] : 0;
    read_at(static_cast<char*>(t.data_ptr()), row_bytes * count, h.data_offset + row_bytes * first);
    return t;
  }
  // Fortran order: dimension 0 varies fastest, so the rows' elements of each of the `rest` index
  // tuples of the other dimensions are one run of `count` elements; gather the runs, then lay them
  // out in C order.
  const int64_t item = ItemSize(h.dtype);
  const int64_t rest = count > 0 ? t.numel() / count : 0;
  at::Tensor runs = at::empty({rest, count}, at::TensorOptions().dtype(h.dtype));
  char* dst = static_cast<char*>(runs.data_ptr());
  for (int64_t c = 0; c < rest; ++c)
    read_at(dst + c * count * item, count * item, h.data_offset + (c * h.shape[0] + first) * item);
  // runs[c] holds column c, whose index tuple over dims 1.. is in Fortran order too: reverse dims.
  std::vector<int64_t> rev(shape.rbegin(), shape.rend() - 1);  // dims k..1
  rev.push_back(count);
  return FortranToC(runs.reshape(rev));
}

void WriteNpy(const std::string& path, const at::Tensor& tensor) {
  if (!tensor.defined()) throw DataError(path + ": cannot write an undefined tensor as NPY");
  const std::string descr = DescrOf(tensor.scalar_type());
  if (descr.empty()) {
    throw DataError(path + ": cannot write dtype " +
                    std::string(at::toString(tensor.scalar_type())) +
                    " as NPY (supported: float32, float64, int64, int32, int8, uint8)");
  }
  if (tensor.dim() > kMaxDims) {
    throw DataError(path + ": cannot write a " + std::to_string(tensor.dim()) +
                    "-D tensor as NPY; cliphba supports at most " + std::to_string(kMaxDims) +
                    " dimensions");
  }
  const at::Tensor t = tensor.to(at::kCPU).contiguous();

  // NPY 1.0: magic(6) + version(2) + uint16 length + dict, padded with spaces so that the data
  // start on a multiple of 64 bytes, the last header byte being '\n' (as numpy writes it).
  std::string dict = "{'descr': '" + descr +
                     "', 'fortran_order': False, 'shape': " + ShapeLiteral(t.sizes()) + ", }";
  const size_t prefix = kMagicLen + 2 + 2;
  const size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string head(kMagic, kMagicLen);
  head.push_back('\x01');
  head.push_back('\x00');
  head.push_back(static_cast<char>(dict.size() & 0xff));
  head.push_back(static_cast<char>((dict.size() >> 8) & 0xff));
  head += dict;

  const size_t nbytes = static_cast<size_t>(t.numel()) * static_cast<size_t>(t.element_size());
  AtomicFile out(path, "NPY file");
  out.Write(head);
  out.Write(t.data_ptr(), nbytes);
  out.Commit();
}

}  // namespace cliphba::io
