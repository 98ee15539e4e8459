// safetensors: the validating reader (LoadSafetensors) and the writer (SaveSafetensors), both
// declared in model/checkpoint.h.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "model/checkpoint_detail.h"

namespace cliphba::model {

namespace {

constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;  // the reference implementation's limit

}  // namespace

using detail::OpenForRead;
using detail::ShapeStr;

StateDict LoadSafetensors(const std::string& path) {
  uint64_t size = 0;
  std::ifstream in = OpenForRead(path, &size);
  // A truncated or corrupt file is invalid input data (exit 4), whatever its format, as NPY's.
  if (size < 8) throw DataError(path + ": safetensors file is truncated (shorter than 8 bytes)");
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  if (header_len > size - 8)
    throw DataError(path + ": safetensors header length " + std::to_string(header_len) +
                    " exceeds the file size (" + std::to_string(size) +
                    " bytes): truncated or not a safetensors file");
  if (header_len > kMaxSafetensorsHeader)
    throw DataError(path + ": safetensors header length " + std::to_string(header_len) +
                    " exceeds the 100 MiB limit");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len)))
    throw IoError(path + ": cannot read the safetensors header");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw DataError(path + ": safetensors header is not a JSON object");

  struct Item {
    std::string name;
    at::ScalarType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  std::vector<Item> items;
  StateDict sd;
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) throw DataError(path + ": safetensors __metadata__ is not an object");
      for (const auto& [key, value] : v.items()) {
        if (!value.is_string())
          throw DataError(path + ": safetensors __metadata__ '" + key + "' is not a string");
        sd.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": safetensors tensor '" + name + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets") || !v["dtype"].is_string() || !v["shape"].is_array() ||
        !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      throw DataError(where +
                      ": expected {\"dtype\": str, \"shape\": [int...], "
                      "\"data_offsets\": [begin, end]}");
    Item it;
    it.name = name;
    const std::string dt = v["dtype"].get<std::string>();
    size_t itemsize = 0;
    if (dt == "F32") {
      it.dtype = at::kFloat, itemsize = 4;
    } else if (dt == "F16") {
      it.dtype = at::kHalf, itemsize = 2;
    } else if (dt == "BF16") {
      it.dtype = at::kBFloat16, itemsize = 2;
    } else if (dt == "I64") {
      it.dtype = at::kLong, itemsize = 8;
    } else {
      throw DataError(where + ": unsupported dtype '" + dt + "' (expected F32, F16, BF16 or I64)");
    }
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        throw DataError(where + ": shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > std::numeric_limits<int64_t>::max() / dim)
        throw DataError(where + ": shape is too large");
      numel *= dim;
      it.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : v["data_offsets"])
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
        throw DataError(where + ": data_offsets must be non-negative integers");
    it.begin = v["data_offsets"][0].get<uint64_t>();
    it.end = v["data_offsets"][1].get<uint64_t>();
    if (it.end < it.begin)
      throw DataError(where + ": data_offsets end " + std::to_string(it.end) + " < begin " +
                      std::to_string(it.begin));
    if (it.end - it.begin != numel * itemsize)
      throw DataError(where + ": data_offsets span " + std::to_string(it.end - it.begin) +
                      " bytes but dtype " + dt + " and shape " + ShapeStr(it.shape) + " need " +
                      std::to_string(numel * itemsize));
    items.push_back(std::move(it));
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (const Item& it : items)  // the first tensor, in file order, that the file cuts off
    if (it.end > data_size)
      throw DataError(path + ": safetensors tensor '" + it.name + "': data_offsets end " +
                      std::to_string(it.end) + " lies beyond the data section (" +
                      std::to_string(data_size) + " bytes): file truncated");
  uint64_t covered = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    if (it.begin < covered)
      throw DataError(path + ": safetensors tensor '" + it.name + "' (bytes " +
                      std::to_string(it.begin) + ".." + std::to_string(it.end) +
                      ") overlaps tensor '" + items[i - 1].name + "'");
    if (it.begin > covered)
      throw DataError(path + ": safetensors data section has a gap of " +
                      std::to_string(it.begin - covered) + " bytes before tensor '" + it.name +
                      "'");
    covered = it.end;
  }
  if (covered != data_size)
    throw DataError(path + ": safetensors data section has " + std::to_string(data_size - covered) +
                    " trailing bytes not covered by any tensor");

  for (const Item& it : items) {
    at::Tensor t = at::empty(it.shape, at::TensorOptions().dtype(it.dtype));
    in.seekg(static_cast<std::streamoff>(data_start + it.begin));
    if (!in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(it.end - it.begin)))
      throw IoError(path + ": cannot read the data of tensor '" + it.name + "'");
    if (it.dtype == at::kHalf || it.dtype == at::kBFloat16) t = t.to(at::kFloat);
    sd.entries.emplace_back(it.name, std::move(t));
  }
  return sd;
}

void SaveSafetensors(const std::string& path, const StateDict& sd,
                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const auto& [name, t] : sd.entries) {
    if (name == "__metadata__" || !seen.insert(name).second)
      throw DataError(path + ": cannot save tensor name '" + name +
                      "' (duplicate or reserved name)");
    const char* dt = t.scalar_type() == at::kFloat  ? "F32"
                     : t.scalar_type() == at::kLong ? "I64"
                                                    : nullptr;
    if (!dt)
      throw DataError(path + ": cannot save tensor '" + name + "' of dtype " +
                      std::string(c10::toString(t.scalar_type())) + " (only float32 and int64)");
    at::Tensor c = t.detach().cpu().contiguous();
    const uint64_t nbytes = c.numel() * c.element_size();
    header[name] = {{"dtype", dt},
                    {"shape", std::vector<int64_t>(c.sizes().begin(), c.sizes().end())},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(std::move(c));
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  const uint64_t hlen = h.size();

  AtomicFile out(path, "safetensors file");
  out.Write(&hlen, 8);
  out.Write(h);
  for (const at::Tensor& c : data) out.Write(c.data_ptr(), c.numel() * c.element_size());
  out.Commit();
}

}  // namespace cliphba::model
