// Embedding CSV and name-list reading/writing. Line-based: a record never spans lines (quoted
// fields may contain commas and doubled quotes, but not newlines). Line numbers in messages are
// 1-based physical lines of the file; column numbers are 1-based fields.
#include "io/csv.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/text_file.h"

namespace cliphba::io {
namespace {

struct Line {
  int64_t number;  // 1-based line number in the file
  std::string text;
};

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Reads `path` as lines with '\r' stripped and a UTF-8 byte-order mark removed; trailing blank
// lines are dropped. Throws IoError when the file cannot be read.
std::vector<Line> ReadLines(const std::string& path) {
  std::string all = ReadTextFile(path);
  if (all.compare(0, 3, "\xEF\xBB\xBF") == 0) all.erase(0, 3);

  std::vector<Line> lines;
  size_t start = 0;
  int64_t number = 1;
  while (start < all.size()) {
    size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    std::string text = all.substr(start, end - start);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    lines.push_back({number++, std::move(text)});
    start = end + 1;
  }
  while (!lines.empty() && Trim(lines.back().text).empty()) lines.pop_back();
  return lines;
}

// Splits one CSV record on commas. A field that starts with '"' (after optional spaces) is quoted:
// it runs to the matching '"', with "" standing for one quote. Fields are returned untrimmed
// except for quoted ones, which are returned verbatim (without quotes).
std::vector<std::string> SplitCsv(const std::string& path, const Line& line) {
  std::vector<std::string> fields;
  const std::string& s = line.text;
  size_t i = 0;
  while (true) {
    size_t j = i;
    while (j < s.size() && s[j] == ' ') ++j;
    std::string field;
    if (j < s.size() && s[j] == '"') {
      ++j;
      while (true) {
        if (j >= s.size()) {
          throw DataError(path + ":" + std::to_string(line.number) + ": field " +
                          std::to_string(fields.size() + 1) +
                          " has an opening '\"' without a closing one (expected a quoted field "
                          "on one line)");
        }
        if (s[j] == '"') {
          if (j + 1 < s.size() && s[j + 1] == '"') {
            field.push_back('"');
            j += 2;
            continue;
          }
          ++j;
          break;
        }
        field.push_back(s[j++]);
      }
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && s[j] != ',') {
        throw DataError(path + ":" + std::to_string(line.number) + ": field " +
                        std::to_string(fields.size() + 1) +
                        " has text after its closing '\"' (expected ',' or the end of the line)");
      }
    } else {
      size_t k = s.find(',', i);
      if (k == std::string::npos) k = s.size();
      field = s.substr(i, k - i);
      j = k;
    }
    fields.push_back(std::move(field));
    if (j >= s.size()) break;
    i = j + 1;  // past the ','
  }
  return fields;
}

// The fields of a data row, which must have as many fields as the header.
std::vector<std::string> SplitRow(const std::string& path, const Line& line, size_t n_header) {
  std::vector<std::string> fields = SplitCsv(path, line);
  if (fields.size() != n_header) {
    throw DataError(path + ":" + std::to_string(line.number) + ": expected " +
                    std::to_string(n_header) + " fields (as in the header), found " +
                    std::to_string(fields.size()));
  }
  return fields;
}

std::string Where(const std::string& path, int64_t line, size_t column,
                  const std::string& header_name) {
  return path + ":" + std::to_string(line) + ": column " + std::to_string(column + 1) + " ('" +
         header_name + "')";
}

// Parses a whole cell as a finite double; throws DataError naming file, line and column otherwise.
double ParseNumber(const std::string& path, int64_t line, size_t column,
                   const std::string& header_name, const std::string& raw) {
  const std::string cell = Trim(raw);
  if (cell.empty()) {
    throw DataError(Where(path, line, column, header_name) + " is empty; expected a number");
  }
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  if (end != cell.c_str() + cell.size() || end == cell.c_str()) {
    throw DataError(Where(path, line, column, header_name) + " is '" + cell +
                    "'; expected a number");
  }
  if (!std::isfinite(v)) {
    throw DataError(Where(path, line, column, header_name) + " is '" + cell +
                    "': non-finite value; expected a finite number (NaN/Inf are never repaired)");
  }
  return v;
}

// Records `name` from `line`; throws DataError if it was seen before.
void CheckUnique(const std::string& path, std::unordered_map<std::string, int64_t>* seen,
                 const std::string& name, int64_t line) {
  auto [it, inserted] = seen->emplace(name, line);
  if (!inserted) {
    throw DataError(path + ": duplicate image name '" + name + "' on lines " +
                    std::to_string(it->second) + " and " + std::to_string(line) +
                    " (expected every name once)");
  }
}

bool EndsWithCsv(const std::string& path) {
  if (path.size() < 4) return false;
  std::string ext = path.substr(path.size() - 4);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".csv";
}

// Quotes a CSV field if it needs it (commas, quotes, surrounding spaces).
std::string CsvField(const std::string& s) {
  const bool needs = s.find_first_of(",\"") != std::string::npos ||
                     (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!needs) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

void CheckWritableName(const std::string& path, const std::string& name, size_t row) {
  if (name.empty() || name.find_first_of("\r\n") != std::string::npos || Trim(name) != name) {
    throw DataError(path + ": cannot write name #" + std::to_string(row) + " '" + name +
                    "': names must be non-empty, on one line, without surrounding whitespace");
  }
}

}  // namespace

EmbeddingTable ReadEmbeddingCsv(const std::string& path) {
  const std::vector<Line> lines = ReadLines(path);
  if (lines.empty()) {
    throw DataError(path +
                    ": empty file; expected a header row ',image_name,0,1,...' and data rows");
  }
  std::vector<std::string> header = SplitCsv(path, lines[0]);
  for (std::string& h : header) h = Trim(h);
  size_t name_col = header.size();
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "image_name") {
      name_col = c;
      break;
    }
  }
  if (name_col == header.size()) {
    throw DataError(path + ":" + std::to_string(lines[0].number) +
                    ": header has no 'image_name' column (header: '" + lines[0].text +
                    "'; expected ',image_name,0,1,...')");
  }
  if (name_col > 1) {
    throw DataError(path + ":" + std::to_string(lines[0].number) +
                    ": header has 'image_name' as column " + std::to_string(name_col + 1) +
                    "; expected it first or second (after an index column)");
  }
  const size_t first_value = name_col + 1;
  const size_t d = header.size() - first_value;
  if (d == 0) {
    throw DataError(path + ":" + std::to_string(lines[0].number) +
                    ": header has no numeric columns after 'image_name'");
  }
  if (lines.size() < 2) {
    throw DataError(path + ": empty table: a header but no data rows");
  }

  EmbeddingTable table;
  std::vector<double> values;
  values.reserve((lines.size() - 1) * d);
  std::unordered_map<std::string, int64_t> seen;
  for (size_t r = 1; r < lines.size(); ++r) {
    const Line& line = lines[r];
    const std::vector<std::string> fields = SplitRow(path, line, header.size());
    if (name_col == 1) ParseNumber(path, line.number, 0, header[0], fields[0]);  // index column
    std::string name = Trim(fields[name_col]);
    if (name.empty()) {
      throw DataError(Where(path, line.number, name_col, "image_name") +
                      " is empty; expected an image name");
    }
    CheckUnique(path, &seen, name, line.number);
    table.names.push_back(std::move(name));
    for (size_t c = first_value; c < fields.size(); ++c) {
      values.push_back(ParseNumber(path, line.number, c, header[c], fields[c]));
    }
  }
  const int64_t n = static_cast<int64_t>(table.names.size());
  table.values = at::empty({n, static_cast<int64_t>(d)}, at::kDouble);
  std::memcpy(table.values.data_ptr<double>(), values.data(), values.size() * sizeof(double));
  return table;
}

void WriteEmbeddingCsv(const std::string& path, const EmbeddingTable& table) {
  if (!table.values.defined() || table.values.dim() != 2 ||
      table.values.size(0) != static_cast<int64_t>(table.names.size())) {
    throw DataError(path + ": cannot write embedding: values must be (n, d) with n = " +
                    std::to_string(table.names.size()) + " names");
  }
  const at::Tensor v = table.values.to(at::kCPU, at::kDouble).contiguous();
  const int64_t n = v.size(0), d = v.size(1);
  const double* p = v.data_ptr<double>();
  std::string out = ",image_name";
  for (int64_t c = 0; c < d; ++c) out += "," + std::to_string(c);
  out += "\n";
  char buf[64];
  for (int64_t r = 0; r < n; ++r) {
    CheckWritableName(path, table.names[r], r);
    out += std::to_string(r) + "," + CsvField(table.names[r]);
    for (int64_t c = 0; c < d; ++c) {
      const double x = p[r * d + c];
      if (!std::isfinite(x)) {
        throw DataError(path + ": cannot write non-finite value at row " + std::to_string(r) +
                        " ('" + table.names[r] + "'), column " + std::to_string(c));
      }
      std::snprintf(buf, sizeof(buf), ",%.17g", x);
      out += buf;
    }
    out += "\n";
  }
  WriteTextFileAtomically(path, out);
}

std::vector<std::string> ReadNameList(const std::string& path) {
  const std::vector<Line> lines = ReadLines(path);
  if (lines.empty()) throw DataError(path + ": empty file; expected a list of names");
  std::vector<std::string> names;
  std::unordered_map<std::string, int64_t> seen;

  if (!EndsWithCsv(path)) {  // one name per line
    for (const Line& line : lines) {
      std::string name = Trim(line.text);
      if (name.empty()) {
        throw DataError(path + ":" + std::to_string(line.number) +
                        ": blank line inside the list; expected one name per line");
      }
      CheckUnique(path, &seen, name, line.number);
      names.push_back(std::move(name));
    }
    return names;
  }

  std::vector<std::string> header = SplitCsv(path, lines[0]);
  for (std::string& h : header) h = Trim(h);
  size_t col = header.size();
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "image_name") col = c;
  }
  if (col == header.size()) {
    if (header.size() != 1) {
      throw DataError(path + ":" + std::to_string(lines[0].number) +
                      ": header has no 'image_name' column (header: '" + lines[0].text +
                      "'; expected 'image_name' or a single column)");
    }
    col = 0;
  }
  if (lines.size() < 2) throw DataError(path + ": empty list: a header but no names");
  for (size_t r = 1; r < lines.size(); ++r) {
    const Line& line = lines[r];
    const std::vector<std::string> fields = SplitRow(path, line, header.size());
    std::string name = Trim(fields[col]);
    if (name.empty()) {
      throw DataError(Where(path, line.number, col, header[col]) + " is empty; expected a name");
    }
    CheckUnique(path, &seen, name, line.number);
    names.push_back(std::move(name));
  }
  return names;
}

// A ".csv" path gets an `image_name` header row so that ReadNameList reads the names back.
void WriteNameList(const std::string& path, const std::vector<std::string>& names) {
  const bool csv = EndsWithCsv(path);
  std::string out = csv ? "image_name\n" : "";
  for (size_t r = 0; r < names.size(); ++r) {
    CheckWritableName(path, names[r], r);
    out += (csv ? CsvField(names[r]) : names[r]) + "\n";
  }
  WriteTextFileAtomically(path, out);
}

}  // namespace cliphba::io
