// Image decoding and preprocessing for the CLIP image tower.
//
// Decoding: JPEG and PNG (and the other stb_image formats) through Debian's libstb, always to
// 8-bit RGB. Resizing: straight to (size x size) without preserving the aspect ratio, as the
// reference's transforms.Resize((224, 224)), with stb_image_resize's triangle filter in linear
// space, which, like PIL's BILINEAR resize, widens its support when downsampling (antialiased);
// tests/data/image_test.cc measures the difference to PIL (scripts/reference/image_reference.py).
// Normalisation: (x / 255 - mean) / std per channel (THINGS statistics by default, METHOD.md).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cliphba::data {

struct ImageOptions {
  int64_t size = 224;  // output height = width (pixels)
  std::array<double, 3> mean = {0.52997664, 0.48070561, 0.41943838};  // THINGS, RGB
  std::array<double, 3> std = {0.27608301, 0.26593025, 0.28238822};
};

// "things" (the default above) or "openai" (OpenAI CLIP's mean 0.48145466, 0.4578275, 0.40821073,
// std 0.26862954, 0.26130258, 0.27577711) normalisation. Throws ConfigError for another name.
ImageOptions ImageOptionsFor(const std::string& normalization, int64_t size);

// Decodes `path` to RGB: (H, W, 3) uint8. Throws IoError if the file cannot be read, DataError
// naming the file and stb's reason if it is not a decodable image.
at::Tensor DecodeImage(const std::string& path);

// "" when the header of `path` is that of an image stb decodes (JPEG, PNG, ...), else the reason
// ("cannot open", stb's message). Reads the header only: cheap enough to check a whole folder
// before any work; a file whose data are corrupt past the header still fails in DecodeImage.
std::string ImageHeaderProblem(const std::string& path);

// Resizes RGB (H, W, 3) uint8 to (size, size, 3) uint8 (see above). REQUIRES: H, W >= 1.
at::Tensor ResizeImage(const at::Tensor& rgb, int64_t size);

// (H, W, 3) uint8 -> (3, H, W) float32 normalised with options.mean / options.std.
at::Tensor NormalizeImage(const at::Tensor& rgb, const ImageOptions& options);

// Decode + resize + normalise: (3, size, size) float32.
at::Tensor LoadImage(const std::string& path, const ImageOptions& options);

// Decodes and preprocesses a sequence of images on background threads, ahead of the consumer, so
// the model never waits on I/O. Pass the paths in the order they will be consumed (e.g. an epoch's
// shuffled order). Get(k) blocks until item k is ready and hands it over (the loader keeps no
// copy: memory is bounded by `prefetch` images); items are prepared in order, at most `prefetch`
// beyond the highest item requested. A missing or corrupt file makes Get(k) throw the original
// typed error (IoError / DataError naming the file). One consumer thread.
class ImageLoader {
 public:
  ImageLoader(std::vector<std::string> paths, ImageOptions options, int threads = 2,
              int64_t prefetch = 64);
  ~ImageLoader();  // stops and joins the workers
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  int64_t size() const { return int64_t(paths_.size()); }
  // (3, S, S) float32 item k. Throws the error of its decoding. Asking again for an item already
  // handed over decodes it again on the calling thread.
  at::Tensor Get(int64_t k);
  // (B, 3, S, S) float32 for the given indices.
  at::Tensor Batch(const std::vector<int64_t>& indices);

 private:
  void Work();
  std::vector<std::string> paths_;
  ImageOptions options_;
  int64_t prefetch_;
  std::vector<at::Tensor> ready_;
  std::vector<std::exception_ptr> errors_;
  std::vector<char> done_;
  int64_t next_ = 0;       // next index to hand to a worker
  int64_t requested_ = 0;  // highest index requested + 1
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::vector<std::thread> workers_;
};

}  // namespace cliphba::data
