// torch.save zip archives (PyTorch >= 1.6): a restricted unpickler for data.pkl that understands
// only the opcodes torch.save emits and resolves only an allow-list of globals, the zip record
// helpers, and LoadTorchZip (declared in model/checkpoint.h).
#include "model/unpickler.h"

#include <caffe2/serialize/inline_container.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/checkpoint_detail.h"

namespace cliphba::model {

namespace {

using detail::OpenForRead;
using detail::ShapeStr;

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
    throw DataError(path + ": cannot read the zip archive (truncated or corrupt?): " + msg);
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
    throw DataError(path + ": cannot read record '" + name +
                    "' (truncated or corrupt?): " + msg.substr(0, msg.find('\n')));
  }
}

}  // namespace

namespace detail {

std::vector<std::string> TorchZipRecordNames(const std::string& path) {
  auto reader = OpenZip(path);
  return ZipRecords(*reader, path);
}

}  // namespace detail

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
    sd.entries.emplace_back(k->s, internal::NormalizeLoadedTensor(v->tensor, path, k->s));
  }
  return sd;
}

}  // namespace cliphba::model
