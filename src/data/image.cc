#include "data/image.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace cliphba::data {

ImageOptions ImageOptionsFor(const std::string& normalization, int64_t size) {
  ImageOptions o;
  o.size = size;
  if (normalization == "openai") {
    o.mean = {0.48145466, 0.4578275, 0.40821073};
    o.std = {0.26862954, 0.26130258, 0.27577711};
  } else if (normalization != "things") {
    throw ConfigError("image normalisation '" + normalization +
                      "' is unknown; expected things or openai");
  }
  return o;
}

at::Tensor DecodeImage(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw IoError(path + ": cannot open the image file");
  int w = 0, h = 0, channels = 0;
  unsigned char* pixels = stbi_load_from_file(f, &w, &h, &channels, /*desired_channels=*/3);
  std::fclose(f);
  if (pixels == nullptr) {
    const char* why = stbi_failure_reason();
    throw DataError(path + ": not a decodable image (" + std::string(why ? why : "unknown") +
                    "); expected a JPEG or PNG file");
  }
  at::Tensor out = at::empty({h, w, 3}, at::kByte);
  std::memcpy(out.data_ptr<uint8_t>(), pixels, size_t(w) * size_t(h) * 3);
  stbi_image_free(pixels);
  return out;
}

std::string ImageHeaderProblem(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "cannot open the file";
  int w = 0, h = 0, channels = 0;
  const int ok = stbi_info_from_file(f, &w, &h, &channels);
  std::fclose(f);
  if (ok == 0) {
    const char* why = stbi_failure_reason();
    return "not a decodable image (" + std::string(why ? why : "unknown") + ")";
  }
  if (w < 1 || h < 1) return "an empty image";
  return "";
}

at::Tensor ResizeImage(const at::Tensor& rgb, int64_t size) {
  TORCH_CHECK(rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == at::kByte,
              "ResizeImage expects (H, W, 3) uint8");
  at::Tensor in = rgb.contiguous();
  const int h = int(in.size(0)), w = int(in.size(1));
  if (h == size && w == size) return in.clone();
  at::Tensor out = at::empty({size, size, 3}, at::kByte);
  int ok = stbir_resize_uint8_generic(in.data_ptr<uint8_t>(), w, h, w * 3, out.data_ptr<uint8_t>(),
                                      int(size), int(size), int(size) * 3, 3,
                                      STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                      STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
  TORCH_CHECK(ok, "stb_image_resize failed");
  return out;
}

at::Tensor NormalizeImage(const at::Tensor& rgb, const ImageOptions& o) {
  at::Tensor x = rgb.permute({2, 0, 1}).to(at::kFloat).div_(255.0);  // (3, H, W) in [0, 1]
  at::Tensor mean = at::tensor({o.mean[0], o.mean[1], o.mean[2]}, at::kFloat).view({3, 1, 1});
  at::Tensor std = at::tensor({o.std[0], o.std[1], o.std[2]}, at::kFloat).view({3, 1, 1});
  return ((x - mean) / std).contiguous();
}

at::Tensor LoadImage(const std::string& path, const ImageOptions& options) {
  return NormalizeImage(ResizeImage(DecodeImage(path), options.size), options);
}

ImageLoader::ImageLoader(std::vector<std::string> paths, ImageOptions options, int threads,
                         int64_t prefetch)
    : paths_(std::move(paths)),
      options_(options),
      prefetch_(std::max<int64_t>(1, prefetch)),
      ready_(paths_.size()),
      errors_(paths_.size()),
      done_(paths_.size(), 0) {
  for (int i = 0; i < std::max(1, threads); ++i) workers_.emplace_back([this] { Work(); });
}

ImageLoader::~ImageLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ImageLoader::Work() {
  for (;;) {
    int64_t i;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock,
                    [&] { return stop_ || (next_ < size() && next_ < requested_ + prefetch_); });
      if (stop_) return;
      i = next_++;
    }
    at::Tensor img;
    std::exception_ptr error;
    try {
      img = LoadImage(paths_[i], options_);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_[i] = img;
      errors_[i] = error;
      done_[i] = 1;
    }
    cv_done_.notify_all();
  }
}

at::Tensor ImageLoader::Get(int64_t k) {
  TORCH_CHECK(k >= 0 && k < size(), "image index out of range");
  std::unique_lock<std::mutex> lock(mu_);
  if (k + 1 > requested_) {
    requested_ = k + 1;
    cv_work_.notify_all();
  }
  if (done_[k] == 2 || (!done_[k] && next_ <= k)) {
    // Already handed over, or far beyond the window: decode here (typed errors propagate).
    lock.unlock();
    return LoadImage(paths_[k], options_);
  }
  cv_done_.wait(lock, [&] { return done_[k] != 0; });
  done_[k] = 2;  // handed over
  if (errors_[k]) std::rethrow_exception(errors_[k]);
  at::Tensor out = std::move(ready_[k]);
  ready_[k] = at::Tensor();
  return out;
}

at::Tensor ImageLoader::Batch(const std::vector<int64_t>& indices) {
  std::vector<at::Tensor> images;
  images.reserve(indices.size());
  for (int64_t i : indices) images.push_back(Get(i));
  return at::stack(images);  // (B, 3, S, S)
}

}  // namespace cliphba::data
