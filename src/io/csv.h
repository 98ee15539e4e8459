// Text inputs: the THINGS embedding CSV and object/image name lists.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace cliphba::io {

// An embedding table: one row per object, named.
struct EmbeddingTable {
  std::vector<std::string> names;  // (n) image names, unique, in file order
  at::Tensor values;               // (n, d) float64
};

// Reads a THINGS-style embedding CSV: header `,image_name,0,1,...,d-1` (an unnamed or named index
// column first, then `image_name`, then d numeric columns). The index column is optional; the
// `image_name` column is required; every other column must be numeric in every row.
// Throws IoError (missing file) or DataError naming the file, line and column for: missing
// `image_name` header, a row with too few/too many fields, a non-numeric or non-finite cell,
// a duplicate image name, an empty table.
EmbeddingTable ReadEmbeddingCsv(const std::string& path);

// Writes `table` in the same layout (index column, image_name, 0..d-1) with 17 significant digits.
// Atomic (".partial" then rename). REQUIRES: values is (n, d) with n == names.size().
void WriteEmbeddingCsv(const std::string& path, const EmbeddingTable& table);

// Reads a list of names: either one name per line (.txt), or a CSV with a header row that has an
// `image_name` column (other columns such as `index` are ignored); a one-column CSV uses its only
// column. Blank trailing lines are ignored; surrounding whitespace and '\r' are stripped.
// Throws IoError / DataError (empty list, duplicate name, missing column) naming the file and line.
std::vector<std::string> ReadNameList(const std::string& path);

// Writes one name per line, atomically.
void WriteNameList(const std::string& path, const std::vector<std::string>& names);

}  // namespace cliphba::io
