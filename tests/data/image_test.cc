#include "data/image.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "fixture_cases.h"
#include "io/npy.h"

namespace cliphba::data {
namespace {

const std::string kRef = std::string(CLIPHBA_TEST_DATA_DIR) + "/image_reference/";

TEST(ImageTest, PngDecodesExactlyAndJpegClosely) {
  at::Tensor want = io::ReadNpy(kRef + "photo_rgb.npy");  // (61, 83, 3) uint8
  at::Tensor png = DecodeImage(kRef + "photo.png");
  EXPECT_TRUE(at::equal(png, want));
  at::Tensor jpg = DecodeImage(kRef + "photo.jpg");
  ASSERT_EQ(jpg.sizes(), want.sizes());
  double mean_abs = (jpg.to(at::kFloat) - want.to(at::kFloat)).abs().mean().item<double>();
  EXPECT_LT(mean_abs, 3.0);  // quality-95 JPEG
}

// Against PIL's resize((S, S), BILINEAR): both antialias when downsampling. Differences are
// rounding and PIL's fixed-point filter weights; reported as max |diff| in 8-bit levels.
TEST(ImageTest, ResizeIsCloseToPilBilinear) {
  at::Tensor rgb = io::ReadNpy(kRef + "photo_rgb.npy");
  for (int size : {32, 128}) {
    at::Tensor pil = io::ReadNpy(kRef + "pil_bilinear_" + std::to_string(size) + ".npy");
    at::Tensor ours = ResizeImage(rgb, size);
    at::Tensor diff = (ours.to(at::kInt) - pil.to(at::kInt)).abs();
    const int max_diff = diff.max().item<int>();
    const double mean_diff = diff.to(at::kFloat).mean().item<double>();
    std::printf("[ resize %3d ] max|cliphba - PIL| = %d levels, mean %.3f\n", size, max_diff,
                mean_diff);
    EXPECT_LE(mean_diff, 0.25);  // measured 0.105 (32 px) and 0.060 (128 px)
    EXPECT_LE(max_diff, 4);      // measured 3 and 1 levels
  }
}

TEST(ImageTest, NormalisesWithTheThingsStatistics) {
  at::Tensor rgb = at::full({2, 2, 3}, 255, at::kByte);
  ImageOptions o;
  at::Tensor x = NormalizeImage(rgb, o);  // (3, 2, 2)
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 2, 2}));
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(x[c][1][1].item<float>(), (1.0 - o.mean[c]) / o.std[c], 1e-6);
}

// The presets against sources outside this code: OpenAI's statistics must turn the fixture's raw
// pixels into the fixture's model input (the reference computed it, fixtures/clip/README.md), and
// THINGS' must be the numbers METHOD.md states.
TEST(ImageTest, OpenAiPresetReproducesTheReferenceModelInput) {
  const std::string dir = cliphba::testing::SharedDir() + "/fixtures/clip/model/";
  const at::Tensor raw = io::ReadNpy(dir + "images_raw01.npy").to(at::kDouble);  // (4, 3, 32, 32)
  const at::Tensor want = io::ReadNpy(dir + "images.npy");
  const ImageOptions o = ImageOptionsFor("openai", 32);
  at::Tensor got = raw.clone();
  for (int c = 0; c < 3; ++c) got.select(1, c).sub_(o.mean[size_t(c)]).div_(o.std[size_t(c)]);
  // The fixture's raw values were float64 before being stored as float32: one float32 ulp.
  const double err = (got.to(at::kFloat) - want).abs().max().item<double>();
  EXPECT_LE(err, 4e-7) << "OpenAI mean/std do not reproduce images.npy: " << err;
  EXPECT_EQ(ImageOptionsFor("openai", 224).size, 224);
  EXPECT_THROW(ImageOptionsFor("imagenet", 32), ConfigError);
}

TEST(ImageTest, ThingsPresetIsMethodMdsStatistics) {
  std::ifstream in(cliphba::testing::SharedDir() + "/docs/METHOD.md");
  ASSERT_TRUE(in) << "METHOD.md not found under " << cliphba::testing::SharedDir();
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  auto triple = [&](const std::string& word) {  // "<word> (a, b, c)" after "THINGS statistics"
    const size_t from = text.find(word, text.find("THINGS statistics"));
    EXPECT_NE(from, std::string::npos) << word;
    std::array<double, 3> v{};
    std::sscanf(text.c_str() + text.find('(', from), "(%lf, %lf, %lf)", &v[0], &v[1], &v[2]);
    return v;
  };
  const ImageOptions o = ImageOptionsFor("things", 32);
  EXPECT_EQ(o.mean, triple("mean"));
  EXPECT_EQ(o.std, triple("std"));
}

TEST(ImageTest, MissingAndCorruptFilesNameTheFile) {
  EXPECT_THROW(DecodeImage("/nonexistent/cat.jpg"), IoError);
  const std::string bad = std::string(CLIPHBA_TEST_OUT_DIR) + "/corrupt.jpg";
  std::ofstream(bad) << "\xff\xd8\xff not really a jpeg";
  try {
    DecodeImage(bad);
    FAIL() << "corrupt image accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt.jpg"), std::string::npos);
  }
}

TEST(ImageLoaderTest, BackgroundThreadsGiveTheSameImagesAndTypedErrors) {
  const std::string png = kRef + "photo.png", jpg = kRef + "photo.jpg";
  std::vector<std::string> paths = {png, jpg, png, "/nonexistent/x.png", jpg};
  ImageOptions o;
  o.size = 32;
  ImageLoader loader(paths, o, /*threads=*/2, /*prefetch=*/2);
  at::Tensor batch = loader.Batch({0, 1, 2});
  ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_TRUE(at::equal(batch[0], LoadImage(png, o)));
  EXPECT_TRUE(at::equal(batch[1], LoadImage(jpg, o)));
  EXPECT_THROW(loader.Get(3), IoError);
  EXPECT_TRUE(at::equal(loader.Get(4), LoadImage(jpg, o)));
  EXPECT_TRUE(at::equal(loader.Get(0), LoadImage(png, o)));  // again: decoded on demand
}

}  // namespace
}  // namespace cliphba::data
