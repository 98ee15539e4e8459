// The batched MEG head against a straightforward per-timepoint loop (the reference's structure,
// written out here in float64), and the semantics of CONTRACTS "Head math": window clipping at the
// axis edges, noise taken at the timepoint (not a window mean), the weight normalisation, and the
// refusals of a training window outside the axis or a window wider than the axis.
#include "model/meg_head.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace cliphba::model {
namespace {

// Axis -20 .. 40 ms at 5 ms (13 points), training 0 .. 40 ms every 10 ms, window +-10 ms.
MegHeadOptions Opts() {
  MegHeadOptions o;
  o.axis_start_ms = -20;
  o.axis_step_ms = 5;
  o.axis_size = 13;
  o.train_start_ms = 0;
  o.train_end_ms = 40;
  o.train_step_ms = 10;
  o.window_ms = 10;
  return o;
}

struct Curves {
  at::Tensor richness, beta, noise;
};

Curves MakeCurves(int64_t n) {
  at::Tensor r = at::linspace(0.1, 1.0, n, at::kDouble);
  at::Tensor b = at::cos(at::arange(n, at::kDouble) * 0.3).abs() + 0.2;
  at::Tensor z = at::sin(at::arange(n, at::kDouble)) * 0.5 + 0.5;
  // Rounded through float32 (the head stores its curves as float32 parameters), so a head moved
  // to float64 holds exactly these values and the float64 loop can match it to 1e-12.
  auto f32 = [](const at::Tensor& x) { return x.to(at::kFloat).to(at::kDouble); };
  return {f32(r), f32(b), f32(z)};
}

// The per-timepoint loop, written independently of the batched code (float64).
at::Tensor LoopEmbeddings(const MegHeadOptions& o, const Curves& c, const at::Tensor& wfr,
                          const at::Tensor& block_cls, const at::Tensor& text_norm, double scale,
                          bool noise, const at::Tensor& n_draw, const at::Tensor& u_draw) {
  std::vector<at::Tensor> out;
  const int64_t w = int64_t(std::floor(o.window_ms / o.axis_step_ms));
  int64_t k = 0;
  for (double t = o.train_start_ms; t <= o.train_end_ms + 1e-9; t += o.train_step_ms, ++k) {
    const int64_t i = int64_t(std::floor((t - o.axis_start_ms) / o.axis_step_ms));
    const int64_t lo = std::max<int64_t>(0, i - w), hi = std::min<int64_t>(i + w + 1, o.axis_size);
    at::Tensor v = wfr.slice(0, lo, hi).mean(0);  // (L)
    v = (v - v.min()) / (v.max() - v.min() + 1e-10);
    v = at::relu(v / (v.sum() + 1e-10));
    const at::Tensor s = c.richness.slice(0, lo, hi).mean();
    const at::Tensor b = c.beta.slice(0, lo, hi).mean();
    const at::Tensor nl = c.noise[i];
    at::Tensor h = at::zeros_like(block_cls[0]);
    for (int64_t j = 0; j < block_cls.size(0); ++j) h = h + v[j] * s * block_cls[j];
    at::Tensor raw = at::relu(scale * at::mm(h, text_norm.t()));
    at::Tensor pre = raw;
    if (noise) pre = raw + n_draw[k] * raw.std(0, true, true) * nl;
    out.push_back(at::relu(b * pre) + (u_draw[k] * 1e-5 + 1e-6));
  }
  return at::stack(out);
}

TEST(MegHeadTest, BatchedEqualsPerTimepointLoop) {
  const MegHeadOptions o = Opts();
  const Curves c = MakeCurves(o.axis_size);
  MegHead head(o, 3, c.richness, c.beta, c.noise);
  ASSERT_EQ(head->timepoints(), 5);
  // A non-trivial Wfr (float64), so every block and the min-max matter.
  at::Tensor wfr = at::rand({o.axis_size, 3}, at::kDouble);
  head->to(at::kDouble);
  head->SetWfr(wfr);
  at::Tensor cls = at::randn({3, 6, 8}, at::kDouble);
  at::Tensor text = at::randn({4, 8}, at::kDouble);
  text = text / text.norm(2, {1}, true);
  for (bool noise : {false, true}) {
    at::Generator gen = at::detail::createCPUGenerator(77);
    at::Tensor got = head->Embeddings(cls, text, 14.3, noise, gen);
    at::Generator gen2 = at::detail::createCPUGenerator(77);
    at::Tensor nd, ud;
    if (noise) nd = at::randn({5, 6, 4}, gen2, at::kDouble);
    ud = at::rand({5, 6, 4}, gen2, at::kDouble);
    at::Tensor want = LoopEmbeddings(o, c, wfr, cls, text, 14.3, noise, nd, ud);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(at::allclose(got, want, 1e-12, 1e-12))
        << "noise " << noise << ": " << (got - want).abs().max().item<double>();
    if (noise) {  // the noise changes the result
      at::Tensor quiet =
          head->Embeddings(cls, text, 14.3, false, at::detail::createCPUGenerator(77));
      EXPECT_GT((quiet - got).abs().max().item<double>(), 1e-3);
    }
  }
  // Gradients reach Wfr and the block features.
  at::Tensor cls_g = cls.clone().set_requires_grad(true);
  head->Embeddings(cls_g, text, 14.3, true, at::detail::createCPUGenerator(3)).sum().backward();
  EXPECT_GT(head->wfr.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(cls_g.grad().abs().sum().item<double>(), 0);
}

TEST(MegHeadTest, RawAndFinishOverTimepointBlocksEqualForward) {
  const MegHeadOptions o = Opts();
  const Curves c = MakeCurves(o.axis_size);
  MegHead head(o, 3, c.richness, c.beta, c.noise);
  head->to(at::kDouble);
  head->SetWfr(at::rand({o.axis_size, 3}, at::kDouble));
  const at::Tensor cls = at::randn({3, 6, 8}, at::kDouble);
  at::Tensor text = at::randn({4, 8}, at::kDouble);
  text = text / text.norm(2, {1}, true);
  const at::Tensor nd = at::randn({5, 6, 4}, at::kDouble), ud = at::rand({5, 6, 4}, at::kDouble);
  const at::Tensor want = head->Forward(cls, text, 14.3, nd, ud).embedding;  // (5, 6, 4)
  for (int64_t t0 = 0; t0 < 5; t0 += 2) {  // blocks of 2, 2, 1 timepoints
    const int64_t count = std::min<int64_t>(2, 5 - t0);
    const at::Tensor raw = head->Raw(cls, text, 14.3, head->MixWeights().narrow(0, t0, count));
    const at::Tensor got =
        head->Finish(raw, t0, nd.slice(0, t0, t0 + count), ud.slice(0, t0, t0 + count));
    EXPECT_TRUE(at::allclose(got, want.slice(0, t0, t0 + count), 1e-12, 1e-12)) << "t0 " << t0;
  }
  EXPECT_THROW(head->Raw(cls, text, 14.3, at::ones({2, 5}, at::kDouble)), c10::Error);  // not L
}

TEST(MegHeadTest, WindowsClipAtTheAxisEdges) {
  MegHeadOptions o = Opts();
  o.train_start_ms = -20;  // index 0: window [0, 3)
  o.train_end_ms = 40;     // index 12: window [10, 13)
  o.train_step_ms = 30;    // -20, 10, 40
  MegWindows w = MegTrainWindows(o);
  ASSERT_EQ(w.index, (std::vector<int64_t>{0, 6, 12}));
  EXPECT_EQ(w.half_width, 2);
  at::Tensor a = w.averaging;
  EXPECT_NEAR(a[0].sum().item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(a[0][0].item<double>(), 1.0 / 3, 1e-12);
  EXPECT_EQ(a[0][3].item<double>(), 0.0);
  EXPECT_NEAR(a[1][4].item<double>(), 0.2, 1e-12);  // interior: 5 rows 4..8
  EXPECT_NEAR(a[1][8].item<double>(), 0.2, 1e-12);
  EXPECT_EQ(a[1][3].item<double>(), 0.0);
  EXPECT_EQ(a[1][9].item<double>(), 0.0);
  EXPECT_NEAR(a[2][12].item<double>(), 1.0 / 3, 1e-12);
  EXPECT_EQ(a[2][9].item<double>(), 0.0);
  // Python // semantics for a time between samples: -17 ms -> floor(0.6) = 0, 3 ms -> 4.
  o.train_start_ms = -17;
  o.train_end_ms = 3;
  o.train_step_ms = 20;
  EXPECT_EQ(MegTrainWindows(o).index, (std::vector<int64_t>{0, 4}));
}

TEST(MegHeadTest, NoiseIsTakenAtTheTimepointNotAveraged) {
  const MegHeadOptions o = Opts();
  Curves c = MakeCurves(o.axis_size);
  // A noise curve that is zero at every training index but large beside them: if the head took
  // a window mean, the Gaussian term would be non-zero.
  c.noise = at::full({o.axis_size}, 5.0, at::kDouble);
  for (int64_t i : MegTrainWindows(o).index) c.noise[i] = 0.0;
  at::Tensor cls = at::randn({2, 5, 8}, at::kDouble);
  at::Tensor text = at::randn({3, 8}, at::kDouble);
  auto clean = [&](const Curves& cv, bool noise) {
    MegHead head(o, 2, cv.richness, cv.beta, cv.noise);
    at::Tensor e = head->Embeddings(cls, text, 2.0, noise, at::detail::createCPUGenerator(9));
    at::Generator g = at::detail::createCPUGenerator(9);
    if (noise) at::randn({5, 5, 3}, g, at::kDouble);  // the N draw comes first
    return e - (at::rand({5, 5, 3}, g, at::kDouble) * 1e-5 + 1e-6);
  };
  EXPECT_TRUE(at::allclose(clean(c, true), clean(c, false), 0, 1e-12));
  // Control: noise at one training index does change the embeddings.
  c.noise[MegTrainWindows(o).index[2]] = 1.0;
  EXPECT_GT((clean(c, true) - clean(c, false)).abs().max().item<double>(), 1e-3);
}

TEST(MegHeadTest, InitialWeightsSelectTheLastBlock) {
  const MegHeadOptions o = Opts();
  const Curves c = MakeCurves(o.axis_size);
  MegHead head(o, 4, c.richness, c.beta, c.noise);
  at::Tensor w = head->BlockWeights();  // (T, L)
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{5, 4}));
  for (int64_t t = 0; t < 5; ++t) {
    EXPECT_NEAR(w[t][3].item<double>(), 1.0, 1e-6);
    EXPECT_NEAR(w[t].slice(0, 0, 3).abs().sum().item<double>(), 0.0, 1e-12);
  }
  // Min-max then sum normalisation: a row (1, 2, 3) becomes (0, 1/3, 2/3).
  MegHead three(o, 3, c.richness, c.beta, c.noise);
  three->to(at::kDouble);
  three->SetWfr(at::tensor({1.0, 2.0, 3.0}, at::kDouble).view({1, 3}).repeat({13, 1}));
  at::Tensor w3 = three->BlockWeights();
  EXPECT_NEAR(w3[2][0].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(w3[2][1].item<double>(), 1.0 / 3, 1e-9);
  EXPECT_NEAR(w3[2][2].item<double>(), 2.0 / 3, 1e-9);
}

TEST(MegHeadTest, OneHotInitialWfrTiesSendTheMinGradientToTheFirstColumn) {
  // The reference init (1 on the last block, 0 elsewhere): the zero weights sit at relu's kink,
  // but Wfr still gets a gradient through the sum normalisation, and torch.min(dim) (the
  // reference) gives the min's gradient to the first tied column alone. With L = 4 blocks and the
  // last one at 1, column j in {1, 2} gets +g and column 0 gets g - 3 g = -2 g (sum 0 over the
  // tied columns). amin/amax would split the min evenly and the gradient would cancel to 0.
  const MegHeadOptions o = Opts();
  const Curves c = MakeCurves(o.axis_size);
  MegHead head(o, 4, c.richness, c.beta, c.noise);
  at::Generator g = at::detail::createCPUGenerator(21);
  at::Tensor cls = at::randn({4, 6, 8}, g, at::kFloat);
  at::Tensor text = at::randn({5, 8}, g, at::kFloat);
  head->Embeddings(cls, text, 3.0, false, at::detail::createCPUGenerator(1)).pow(2).sum().backward();
  const at::Tensor gr = head->wfr.grad().to(at::kDouble);  // (T_full, L)
  const double scale = gr.abs().max().item<double>();
  EXPECT_GT(scale, 1e-3);
  EXPECT_TRUE(at::allclose(gr.select(1, 1), gr.select(1, 2), 1e-5, 1e-6 * scale));
  EXPECT_TRUE(at::allclose(gr.select(1, 0), -2 * gr.select(1, 1), 1e-5, 1e-6 * scale));
  EXPECT_GT(gr.select(1, 1).abs().max().item<double>(), 1e-3 * scale);
}

TEST(MegHeadTest, RampInitWeightsByDepthAndLearns) {
  // train.meg.wfr_init: ramp. Column j of Wfr holds j / (L - 1), so every timepoint's weights are
  // j / sum(j) = (0, 1/6, 2/6, 3/6) for L = 4; only block 0 sits at the row minimum (the relu kink)
  // and every other weight gets a gradient of normal size, unlike the reference's one-hot start.
  const MegHeadOptions o = Opts();
  const Curves c = MakeCurves(o.axis_size);
  MegHead head(o, 4, c.richness, c.beta, c.noise, MegHeadImpl::Init::kRamp);
  at::Tensor w = head->BlockWeights();
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t j = 0; j < 4; ++j) EXPECT_NEAR(w[t][j].item<double>(), double(j) / 6, 1e-6);
  at::Generator g = at::detail::createCPUGenerator(22);
  at::Tensor cls = at::randn({4, 6, 8}, g, at::kFloat);
  at::Tensor text = at::randn({5, 8}, g, at::kFloat);
  head->Embeddings(cls, text, 3.0, false, at::detail::createCPUGenerator(1)).pow(2).sum().backward();
  at::Tensor gr = head->wfr.grad();  // (T_full, L): rows inside some training window move
  EXPECT_GT(gr.slice(1, 1, 4).abs().max().item<double>(), 1e-3);
  // ResetWfr puts the start back in place (what phase 2 does when phase 1 saved nothing).
  {
    at::NoGradGuard no_grad;
    head->wfr.add_(1.0);
  }
  head->ResetWfr();
  EXPECT_TRUE(head->wfr.requires_grad());
  EXPECT_NEAR(head->wfr[7][2].item<double>(), 2.0 / 3, 1e-7);
  EXPECT_NEAR(head->wfr[0][0].item<double>(), 0.0, 0);
  // One block: the ramp degenerates to the single block.
  MegHead one(o, 1, c.richness, c.beta, c.noise, MegHeadImpl::Init::kRamp);
  EXPECT_EQ(one->wfr[0][0].item<float>(), 1.0f);
}

TEST(MegHeadTest, RefusesWindowsOutsideOrWiderThanTheAxis) {
  const Curves c = MakeCurves(13);
  MegHeadOptions o = Opts();
  o.train_end_ms = 50;  // 50 ms: index 14 of a 13-point axis
  EXPECT_THROW(MegHead(o, 2, c.richness, c.beta, c.noise), DataError);
  o = Opts();
  o.train_start_ms = -25;
  EXPECT_THROW(MegHead(o, 2, c.richness, c.beta, c.noise), DataError);
  o = Opts();
  o.window_ms = 35;  // 2 * 7 + 1 = 15 > 13
  EXPECT_THROW(MegHead(o, 2, c.richness, c.beta, c.noise), DataError);
  o = Opts();
  o.window_ms = 30;  // 13 rows: allowed
  EXPECT_NO_THROW(MegHead(o, 2, c.richness, c.beta, c.noise));
  o = Opts();
  o.train_step_ms = 0;
  EXPECT_THROW(MegHead(o, 2, c.richness, c.beta, c.noise), ConfigError);
  EXPECT_THROW(MegHead(Opts(), 2, c.richness.slice(0, 0, 12), c.beta, c.noise), DataError);
}

}  // namespace
}  // namespace cliphba::model
