#include "model/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoint readers assume a little-endian host (as safetensors and torch.save do)");

namespace cliphba::model {

namespace {

constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;  // the reference implementation's limit
constexpr const char* kModulePrefix = "module.";

std::string ShapeStr(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Size of `path` in bytes; IoError if it cannot be opened.
std::ifstream OpenForRead(const std::string& path, uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open checkpoint file: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end < 0) throw IoError(path + ": cannot determine the file size");
  in.seekg(0, std::ios::beg);
  *size = static_cast<uint64_t>(end);
  return in;
}

// The contract's dtype policy: floating -> float32, integral -> int64, contiguous, own memory.
at::Tensor Normalize(const at::Tensor& t, const std::string& path, const std::string& name) {
  at::Tensor c = t.detach();
  if (c.device().type() != at::kCPU) c = c.cpu();
  if (at::isFloatingType(c.scalar_type())) {
    c = c.to(at::kFloat);
  } else if (at::isIntegralType(c.scalar_type(), /*includeBool=*/false)) {
    c = c.to(at::kLong);
  } else {
    throw DataError(path + ": tensor '" + name + "' has unsupported dtype " +
                    std::string(c10::toString(c.scalar_type())) +
                    " (expected a floating-point or integer tensor)");
  }
  return c.clone(at::MemoryFormat::Contiguous);
}

// ---------------------------------------------------------------------------------------------
// Restricted unpickler for torch.save's data.pkl.

enum class Kind {
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,
  kTuple,
  kList,
  kDict,
  kCallable,     // an allowed global function/class (name in `s`)
  kStorageType,  // torch.<T>Storage (dtype in `dtype`)
  kStorage,      // a loaded storage (flat tensor in `tensor`)
  kTensor,
};

struct PyObj;
using Obj = std::shared_ptr<PyObj>;

struct PyObj {
  Kind kind = Kind::kNone;
  int64_t i = 0;                             // kBool, kInt
  double f = 0;                              // kFloat
  std::string s;                             // kStr, kCallable
  std::vector<Obj> items;                    // kTuple, kList
  std::vector<std::pair<Obj, Obj>> entries;  // kDict (insertion order)
  at::ScalarType dtype = at::kFloat;         // kStorageType
  at::Tensor tensor;                         // kStorage, kTensor
};

Obj Make(Kind k) {
  auto o = std::make_shared<PyObj>();
  o->kind = k;
  return o;
}

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kCallable:
      return "global";
    case Kind::kStorageType:
      return "storage type";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

// The complete allow-list. Anything else named by GLOBAL/STACK_GLOBAL is refused.
Obj ResolveGlobal(const std::string& qualified, const std::string& path) {
  static const std::map<std::string, at::ScalarType> kStorages = {
      {"torch.FloatStorage", at::kFloat},       {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.DoubleStorage", at::kDouble},
      {"torch.LongStorage", at::kLong},         {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},
  };
  if (qualified == kOrderedDict || qualified == kRebuildTensorV2 ||
      qualified == kRebuildParameter) {
    Obj o = Make(Kind::kCallable);
    o->s = qualified;
    return o;
  }
  auto it = kStorages.find(qualified);
  if (it != kStorages.end()) {
    Obj o = Make(Kind::kStorageType);
    o->s = qualified;
    o->dtype = it->second;
    return o;
  }
  throw DataError(path + ": data.pkl references the forbidden global '" + qualified +
                  "'; only collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
                  "torch._utils._rebuild_parameter and torch.<Type>Storage are allowed "
                  "(loading a checkpoint never executes code)");
}

class Unpickler {
 public:
  // load_storage(key, dtype, numel) returns the flat storage tensor of record data/<key>.
  using StorageLoader = std::function<at::Tensor(const std::string&, at::ScalarType, int64_t)>;

  Unpickler(const uint8_t* data, size_t size, std::string path, StorageLoader loader)
      : p_(data), n_(size), path_(std::move(path)), loader_(std::move(loader)) {}

  Obj Run() {
    while (true) {
      const size_t op_pos = pos_;
      const uint8_t op = U8();
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = U8();
          if (v > 5) Fail(op_pos, "unsupported pickle protocol " + std::to_string(v));
          break;
        }
        case 0x95:
          Need(8);
          pos_ += 8;
          break;     // FRAME (protocol 4): length is advisory
        case '.': {  // STOP
          if (stack_.size() != 1 || !marks_.empty()) Fail(op_pos, "malformed stack at STOP");
          return stack_.back();
        }
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case ')':
          Push(Make(Kind::kTuple));
          break;  // EMPTY_TUPLE
        case '}':
          Push(Make(Kind::kDict));
          break;  // EMPTY_DICT
        case ']':
          Push(Make(Kind::kList));
          break;     // EMPTY_LIST
        case 't': {  // TUPLE
          Obj t = Make(Kind::kTuple);
          t->items = PopToMark(op_pos);
          Push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const size_t k = op - 0x84;
          if (stack_.size() < k + Floor())
            Fail(op_pos, "stack underflow in TUPLE" + std::to_string(k));
          Obj t = Make(Kind::kTuple);
          t->items.assign(stack_.end() - k, stack_.end());
          stack_.resize(stack_.size() - k);
          Push(t);
          break;
        }
        case 'l': {  // LIST
          Obj l = Make(Kind::kList);
          l->items = PopToMark(op_pos);
          Push(l);
          break;
        }
        case 'd': {  // DICT
          std::vector<Obj> kv = PopToMark(op_pos);
          if (kv.size() % 2) Fail(op_pos, "odd number of items in DICT");
          Obj d = Make(Kind::kDict);
          for (size_t i = 0; i < kv.size(); i += 2) d->entries.emplace_back(kv[i], kv[i + 1]);
          Push(d);
          break;
        }
        case 'X':
          PushStr(U32());
          break;  // BINUNICODE
        case 0x8c:
          PushStr(U8());
          break;  // SHORT_BINUNICODE
        case 0x8d:
          PushStr(U64());
          break;  // BINUNICODE8
        case 'U':
          PushStr(U8());
          break;  // SHORT_BINSTRING
        case 'C':
          PushStr(U8());
          break;  // SHORT_BINBYTES
        case 'B':
          PushStr(U32());
          break;     // BINBYTES
        case 'T': {  // BINSTRING (signed 4-byte length)
          const int32_t len = static_cast<int32_t>(U32());
          if (len < 0) Fail(op_pos, "negative BINSTRING length");
          PushStr(static_cast<uint64_t>(len));
          break;
        }
        case 'q':
          Memo(U8(), op_pos);
          break;  // BINPUT
        case 'r':
          Memo(U32(), op_pos);
          break;  // LONG_BINPUT
        case 0x94:
          Memo(memo_.size(), op_pos);
          break;  // MEMOIZE
        case 'h':
          Push(Get(U8(), op_pos));
          break;  // BINGET
        case 'j':
          Push(Get(U32(), op_pos));
          break;  // LONG_BINGET
        case 'K':
          PushInt(U8());
          break;  // BININT1
        case 'M':
          PushInt(U16());
          break;  // BININT2
        case 'J':
          PushInt(static_cast<int32_t>(U32()));
          break;      // BININT
        case 0x8a: {  // LONG1
          const uint8_t len = U8();
          if (len > 8) Fail(op_pos, "LONG1 integer wider than 64 bits");
          Need(len);
          uint64_t v = 0;
          for (uint8_t b = 0; b < len; ++b) v |= static_cast<uint64_t>(p_[pos_ + b]) << (8 * b);
          if (len > 0 && len < 8 && (p_[pos_ + len - 1] & 0x80)) v |= ~0ull << (8 * len);
          pos_ += len;
          PushInt(static_cast<int64_t>(v));
          break;
        }
        case 'G': {  // BINFLOAT (big-endian)
          Need(8);
          uint64_t bits = 0;
          for (int b = 0; b < 8; ++b) bits = (bits << 8) | p_[pos_ + b];
          pos_ += 8;
          Obj o = Make(Kind::kFloat);
          std::memcpy(&o->f, &bits, 8);
          Push(o);
          break;
        }
        case 0x88:
        case 0x89: {  // NEWTRUE / NEWFALSE
          Obj o = Make(Kind::kBool);
          o->i = op == 0x88;
          Push(o);
          break;
        }
        case 'N':
          Push(Make(Kind::kNone));
          break;     // NONE
        case 'c': {  // GLOBAL
          const std::string module = Line(op_pos);
          const std::string name = Line(op_pos);
          Push(ResolveGlobal(module + "." + name, path_));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Obj name = Pop(op_pos), module = Pop(op_pos);
          if (name->kind != Kind::kStr || module->kind != Kind::kStr)
            Fail(op_pos, "STACK_GLOBAL needs two strings");
          Push(ResolveGlobal(module->s + "." + name->s, path_));
          break;
        }
        case 'Q':
          Push(PersistentLoad(Pop(op_pos), op_pos));
          break;     // BINPERSID
        case 'R': {  // REDUCE
          Obj args = Pop(op_pos), callable = Pop(op_pos);
          Push(Reduce(callable, args, op_pos));
          break;
        }
        case 's': {  // SETITEM
          Obj v = Pop(op_pos), k = Pop(op_pos);
          DictTop(op_pos)->entries.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<Obj> kv = PopToMark(op_pos);
          if (kv.size() % 2) Fail(op_pos, "odd number of items in SETITEMS");
          PyObj* d = DictTop(op_pos);
          for (size_t i = 0; i < kv.size(); i += 2) d->entries.emplace_back(kv[i], kv[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          Obj v = Pop(op_pos);
          ListTop(op_pos)->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          std::vector<Obj> vs = PopToMark(op_pos);
          PyObj* l = ListTop(op_pos);
          l->items.insert(l->items.end(), vs.begin(), vs.end());
          break;
        }
        case 'b': {  // BUILD: only OrderedDict's attribute state ({'_metadata': ...}) is accepted
          Obj state = Pop(op_pos);
          if (stack_.size() <= Floor() || stack_.back()->kind != Kind::kDict)
            Fail(op_pos, "BUILD is only accepted on a dict (OrderedDict state)");
          (void)state;  // ignored: torch's _metadata (module versions) is not needed
          break;
        }
        case '0':
          Pop(op_pos);
          break;  // POP
        case '1':
          PopToMark(op_pos);
          break;     // POP_MARK
        case '2': {  // DUP
          if (stack_.size() <= Floor()) Fail(op_pos, "stack underflow in DUP");
          Push(stack_.back());
          break;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          Fail(op_pos,
               std::string("unsupported pickle opcode ") + hex +
                   " (only the opcodes torch.save emits for tensors and dicts are allowed)");
        }
      }
    }
  }

 private:
  [[noreturn]] void Fail(size_t at, const std::string& what) const {
    throw DataError(path_ + ": data.pkl: " + what + " (at byte " + std::to_string(at) + ")");
  }
  void Need(uint64_t k) const {
    if (k > n_ - pos_) Fail(pos_, "pickle ends unexpectedly");
  }
  uint8_t U8() {
    Need(1);
    return p_[pos_++];
  }
  uint16_t U16() {
    Need(2);
    uint16_t v = p_[pos_] | (p_[pos_ + 1] << 8);
    pos_ += 2;
    return v;
  }
  uint32_t U32() {
    Need(4);
    uint32_t v;
    std::memcpy(&v, p_ + pos_, 4);
    pos_ += 4;
    return v;
  }
  uint64_t U64() {
    Need(8);
    uint64_t v;
    std::memcpy(&v, p_ + pos_, 8);
    pos_ += 8;
    return v;
  }
  std::string Line(size_t op_pos) {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (!nl) Fail(op_pos, "unterminated GLOBAL name");
    const size_t end = static_cast<const uint8_t*>(nl) - p_;
    std::string s(reinterpret_cast<const char*>(p_ + pos_), end - pos_);
    pos_ = end + 1;
    return s;
  }
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void Push(Obj o) { stack_.push_back(std::move(o)); }
  void PushStr(uint64_t len) {
    Need(len);
    Obj o = Make(Kind::kStr);
    o->s.assign(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    Push(o);
  }
  void PushInt(int64_t v) {
    Obj o = Make(Kind::kInt);
    o->i = v;
    Push(o);
  }
  Obj Pop(size_t op_pos) {
    if (stack_.size() <= Floor()) Fail(op_pos, "stack underflow");
    Obj o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  std::vector<Obj> PopToMark(size_t op_pos) {
    if (marks_.empty()) Fail(op_pos, "no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Obj> out(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return out;
  }
  PyObj* DictTop(size_t op_pos) {
    if (stack_.size() <= Floor() || stack_.back()->kind != Kind::kDict)
      Fail(op_pos, "SETITEM(S) target is not a dict");
    return stack_.back().get();
  }
  PyObj* ListTop(size_t op_pos) {
    if (stack_.size() <= Floor() || stack_.back()->kind != Kind::kList)
      Fail(op_pos, "APPEND(S) target is not a list");
    return stack_.back().get();
  }
  void Memo(uint64_t idx, size_t op_pos) {
    if (stack_.size() <= Floor()) Fail(op_pos, "memoizing an empty stack");
    memo_[idx] = stack_.back();
  }
  Obj Get(uint64_t idx, size_t op_pos) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) Fail(op_pos, "memo key " + std::to_string(idx) + " not defined");
    return it->second;
  }
  int64_t AsInt(const Obj& o, size_t op_pos, const char* what) const {
    if (o->kind != Kind::kInt) Fail(op_pos, std::string(what) + " must be an int");
    return o->i;
  }
  std::vector<int64_t> AsInts(const Obj& o, size_t op_pos, const char* what) const {
    if (o->kind != Kind::kTuple) Fail(op_pos, std::string(what) + " must be a tuple of ints");
    std::vector<int64_t> v;
    for (const Obj& x : o->items) v.push_back(AsInt(x, op_pos, what));
    return v;
  }

  // pid = ('storage', storage_type, key, location, numel); storages are shared between views.
  Obj PersistentLoad(const Obj& pid, size_t op_pos) {
    if (pid->kind != Kind::kTuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::kStr ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != Kind::kStorageType ||
        pid->items[2]->kind != Kind::kStr || pid->items[3]->kind != Kind::kStr)
      Fail(op_pos, "persistent id is not ('storage', <Type>Storage, key, location, numel)");
    const std::string& key = pid->items[2]->s;
    const int64_t numel = AsInt(pid->items[4], op_pos, "storage numel");
    if (numel < 0) Fail(op_pos, "negative storage size for record data/" + key);
    auto it = storages_.find(key);
    if (it != storages_.end()) return it->second;
    Obj st = Make(Kind::kStorage);
    st->tensor = loader_(key, pid->items[1]->dtype, numel);
    storages_[key] = st;
    return st;
  }

  Obj Reduce(const Obj& callable, const Obj& args, size_t op_pos) {
    if (callable->kind != Kind::kCallable) Fail(op_pos, "REDUCE on a non-callable");
    if (args->kind != Kind::kTuple) Fail(op_pos, "REDUCE arguments are not a tuple");
    const auto& a = args->items;
    if (callable->s == kOrderedDict) {
      if (!a.empty()) Fail(op_pos, "OrderedDict() with arguments");
      return Make(Kind::kDict);
    }
    if (callable->s == kRebuildParameter) {  // (data, requires_grad, backward_hooks)
      if (a.size() != 3 || a[0]->kind != Kind::kTensor)
        Fail(op_pos, "malformed _rebuild_parameter arguments");
      return a[0];
    }
    // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
    if (a.size() < 6 || a.size() > 7 || a[0]->kind != Kind::kStorage)
      Fail(op_pos, "malformed _rebuild_tensor_v2 arguments");
    const at::Tensor& storage = a[0]->tensor;
    const int64_t offset = AsInt(a[1], op_pos, "tensor storage offset");
    const std::vector<int64_t> size = AsInts(a[2], op_pos, "tensor size");
    const std::vector<int64_t> stride = AsInts(a[3], op_pos, "tensor stride");
    if (size.size() != stride.size()) Fail(op_pos, "tensor size and stride differ in length");
    int64_t last = offset, numel = 1;
    if (offset < 0) Fail(op_pos, "negative tensor storage offset");
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) Fail(op_pos, "negative tensor size or stride");
      int64_t span = 0;
      if (__builtin_mul_overflow(numel, size[d], &numel) ||
          (size[d] > 0 && (__builtin_mul_overflow(size[d] - 1, stride[d], &span) ||
                           __builtin_add_overflow(last, span, &last))))
        Fail(op_pos, "tensor size or stride overflows");
    }
    // A state dict never needs more elements than its storage holds (no stride-0 expansions);
    // refusing them bounds the memory a crafted file can make us allocate.
    if (numel > storage.numel())
      Fail(op_pos, "tensor view " + ShapeStr(size) + " has more elements than its storage (" +
                       std::to_string(storage.numel()) + ")");
    if (numel > 0 && last >= storage.numel())
      Fail(op_pos, "tensor view " + ShapeStr(size) + " at offset " + std::to_string(offset) +
                       " exceeds its storage of " + std::to_string(storage.numel()) + " elements");
    Obj t = Make(Kind::kTensor);
    t->tensor = numel == 0
                    ? at::empty(size, storage.options())
                    : storage.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous);
    return t;
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string path_;
  StorageLoader loader_;
  std::vector<Obj> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Obj> memo_;
  std::map<std::string, Obj> storages_;
};

std::unique_ptr<caffe2::serialize::PyTorchStreamReader> OpenZip(const std::string& path) {
  uint64_t size = 0;
  OpenForRead(path, &size);  // IoError if missing/unreadable
  try {
    return std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    msg = msg.substr(0, msg.find('\n'));
    throw IoError(path + ": cannot read the zip archive (truncated or corrupt?): " + msg);
  }
}

std::vector<std::string> ZipRecords(caffe2::serialize::PyTorchStreamReader& reader,
                                    const std::string& path) {
  try {
    return reader.getAllRecords();
  } catch (const c10::Error& e) {
    throw DataError(path +
                    ": malformed PyTorch zip archive: " + std::string(e.what_without_backtrace()));
  }
}

std::pair<at::DataPtr, size_t> ReadRecord(caffe2::serialize::PyTorchStreamReader& reader,
                                          const std::string& path, const std::string& name) {
  if (!reader.hasRecord(name)) throw DataError(path + ": zip archive has no record '" + name + "'");
  try {
    auto [ptr, size] = reader.getRecord(name);
    return {std::move(ptr), size};
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    throw IoError(path + ": cannot read record '" + name +
                  "' (truncated or corrupt?): " + msg.substr(0, msg.find('\n')));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

const at::Tensor* StateDict::Find(const std::string& name) const {
  for (const auto& [k, v] : entries)
    if (k == name) return &v;
  return nullptr;
}

const char* FormatName(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::kSafetensors:
      return "safetensors";
    case CheckpointFormat::kTorchZip:
      return "torch.save zip";
    case CheckpointFormat::kTorchScript:
      return "TorchScript archive";
  }
  return "?";
}

CheckpointFormat DetectFormat(const std::string& path) {
  uint64_t size = 0;
  std::ifstream in = OpenForRead(path, &size);
  unsigned char head[9] = {};
  in.read(reinterpret_cast<char*>(head), std::min<uint64_t>(size, 9));
  if (size >= 9 && head[8] == '{') return CheckpointFormat::kSafetensors;
  if (size >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) {
    auto reader = OpenZip(path);
    bool has_code = false, has_data_pkl = false;
    for (const std::string& r : ZipRecords(*reader, path)) {
      if (r.rfind("code/", 0) == 0 || r == "constants.pkl") has_code = true;
      if (r == "data.pkl") has_data_pkl = true;
    }
    if (has_code) return CheckpointFormat::kTorchScript;
    if (has_data_pkl) return CheckpointFormat::kTorchZip;
    throw DataError(path +
                    ": zip archive is neither a torch.save archive (data.pkl) nor a "
                    "TorchScript archive (code/, constants.pkl)");
  }
  if (size >= 1 && head[0] == 0x80)
    throw DataError(path +
                    ": legacy (pre-1.6, non-zip) torch.save format is not supported; "
                    "re-save it with a current torch.save or convert it to safetensors");
  throw DataError(path +
                  ": unrecognized checkpoint format (expected safetensors, a torch.save "
                  "zip archive or a TorchScript archive)");
}

StateDict LoadCheckpoint(const std::string& path) {
  StateDict raw;
  switch (DetectFormat(path)) {
    case CheckpointFormat::kSafetensors:
      raw = LoadSafetensors(path);
      break;
    case CheckpointFormat::kTorchZip:
      raw = LoadTorchZip(path);
      break;
    case CheckpointFormat::kTorchScript:
      raw = LoadTorchScript(path);
      break;
  }
  StateDict out;
  out.code_bearing = raw.code_bearing;
  std::set<std::string> seen;
  for (auto& [name, t] : raw.entries) {
    std::string key = name;
    if (key.rfind(kModulePrefix, 0) == 0) key = key.substr(std::strlen(kModulePrefix));
    if (!seen.insert(key).second)
      throw DataError(path + ": duplicate tensor name '" + key + "' (after stripping 'module.')");
    out.entries.emplace_back(std::move(key), std::move(t));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// safetensors

StateDict LoadSafetensors(const std::string& path) {
  uint64_t size = 0;
  std::ifstream in = OpenForRead(path, &size);
  if (size < 8) throw IoError(path + ": safetensors file is truncated (shorter than 8 bytes)");
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  if (header_len > size - 8)
    throw IoError(path + ": safetensors header length " + std::to_string(header_len) +
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
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") continue;
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
      throw IoError(path + ": safetensors tensor '" + it.name + "': data_offsets end " +
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

  StateDict sd;
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

  const std::string tmp = path + ".partial";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw IoError(tmp + ": cannot create file: " + std::strerror(errno));
  bool ok = std::fwrite(&hlen, 8, 1, f) == 1 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (const at::Tensor& c : data) {
    const size_t nbytes = c.numel() * c.element_size();
    if (ok && nbytes) ok = std::fwrite(c.data_ptr(), 1, nbytes, f) == nbytes;
  }
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(fileno(f)) == 0 && ok;
  const int saved_errno = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    throw IoError(tmp + ": cannot write safetensors file: " + std::strerror(saved_errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw IoError(path + ": cannot rename " + tmp + " into place: " + std::strerror(e));
  }
}

// ---------------------------------------------------------------------------------------------
// torch.save zip

StateDict LoadTorchZip(const std::string& path) {
  auto reader = OpenZip(path);
  if (reader->hasRecord("byteorder")) {
    auto [ptr, n] = ReadRecord(*reader, path, "byteorder");
    const std::string order(static_cast<const char*>(ptr.get()), n);
    if (order != "little")
      throw DataError(path + ": byteorder record is '" + order + "' (only little-endian)");
  }
  auto [pkl, pkl_size] = ReadRecord(*reader, path, "data.pkl");
  auto loader = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    const std::string rec = "data/" + key;
    auto [ptr, n] = ReadRecord(*reader, path, rec);
    const size_t es = c10::elementSize(dtype);
    if (n % es != 0 || n / es != static_cast<uint64_t>(numel))
      throw DataError(path + ": record '" + rec + "' has " + std::to_string(n) +
                      " bytes, but its storage of " + std::to_string(numel) + " " +
                      c10::toString(dtype) + " elements needs " +
                      std::to_string(static_cast<uint64_t>(numel) * es));
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (n) std::memcpy(t.data_ptr(), ptr.get(), n);
    return t;
  };
  Unpickler up(static_cast<const uint8_t*>(pkl.get()), pkl_size, path, loader);
  Obj root = up.Run();
  if (root->kind != Kind::kDict)
    throw DataError(path + ": data.pkl holds a " + std::string(KindName(root->kind)) +
                    ", expected a dict of tensor name -> tensor (a state_dict)");
  StateDict sd;
  std::set<std::string> seen;
  for (const auto& [k, v] : root->entries) {
    if (k->kind != Kind::kStr)
      throw DataError(path + ": state dict key is a " + std::string(KindName(k->kind)) +
                      ", expected str");
    if (v->kind != Kind::kTensor)
      throw DataError(path + ": state dict entry '" + k->s + "' is a " + KindName(v->kind) +
                      ", expected a tensor (nested training checkpoints are not supported; save "
                      "model.state_dict() itself)");
    if (!seen.insert(k->s).second) throw DataError(path + ": duplicate key '" + k->s + "'");
    sd.entries.emplace_back(k->s, Normalize(v->tensor, path, k->s));
  }
  return sd;
}

// ---------------------------------------------------------------------------------------------

bool IsIgnoredScalarBuffer(const std::string& name) {
  return name == "input_resolution" || name == "context_length" || name == "vocab_size";
}

void CheckKeys(const StateDict& sd,
               const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
               const std::string& source) {
  std::map<std::string, std::vector<int64_t>> want;
  for (const auto& [name, shape] : expected)
    if (!IsIgnoredScalarBuffer(name)) want[name] = shape;
  std::vector<std::string> unexpected, misshaped, missing;
  std::set<std::string> have;
  for (const auto& [name, t] : sd.entries) {
    if (IsIgnoredScalarBuffer(name)) continue;
    have.insert(name);
    auto it = want.find(name);
    if (it == want.end()) {
      unexpected.push_back(name);
    } else if (t.sizes() != at::IntArrayRef(it->second)) {
      misshaped.push_back(name + " (expected " + ShapeStr(it->second) + ", got " +
                          ShapeStr(t.sizes()) + ")");
    }
  }
  for (const auto& [name, shape] : expected)
    if (!IsIgnoredScalarBuffer(name) && !have.count(name)) missing.push_back(name);
  if (unexpected.empty() && misshaped.empty() && missing.empty()) return;
  auto list = [](const char* label, const std::vector<std::string>& v) {
    if (v.empty()) return std::string();
    std::string s = std::string("\n  ") + std::to_string(v.size()) + " " + label + ":";
    for (const std::string& x : v) s += " " + x + ";";
    s.pop_back();
    return s;
  };
  throw DataError(source + ": checkpoint does not match the model" + list("missing", missing) +
                  list("unexpected", unexpected) + list("mis-shaped", misshaped));
}

namespace internal {
at::Tensor NormalizeLoadedTensor(const at::Tensor& t, const std::string& path,
                                 const std::string& name) {
  return Normalize(t, path, name);
}
}  // namespace internal

}  // namespace cliphba::model
