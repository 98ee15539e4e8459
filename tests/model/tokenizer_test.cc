// ClipTokenizer against the reference clip.tokenize fixtures (shared/fixtures/clip/, README §2).
#include "fixture_cases.h"
#include "model/tokenizer.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace cliphba::model {
namespace {

const std::string kShared = cliphba::testing::SharedDir();
const std::string kMergesPath = kShared + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
const std::string kFixtures = kShared + "/fixtures/clip";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open " + path);
  return nlohmann::json::parse(in);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void WriteGzip(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  gzclose(f);
}

class ClipTokenizerTest : public ::testing::Test {
 protected:
  // Built in SetUp: a failure there fails the test (a failing SetUpTestSuite shows as "skipped").
  void SetUp() override {
    if (!tok_) tok_ = std::make_unique<ClipTokenizer>(kMergesPath);
  }
  static void TearDownTestSuite() { tok_.reset(); }
  static std::unique_ptr<ClipTokenizer> tok_;
};
std::unique_ptr<ClipTokenizer> ClipTokenizerTest::tok_;

TEST_F(ClipTokenizerTest, VocabularyLayout) {
  EXPECT_EQ(tok_->Decoder(0), "!");
  EXPECT_EQ(tok_->Decoder(256), "!</w>");
  EXPECT_EQ(tok_->Decoder(ClipTokenizer::kSot), "<|startoftext|>");
  EXPECT_EQ(tok_->Decoder(ClipTokenizer::kEot), "<|endoftext|>");
  EXPECT_THROW(tok_->Decoder(ClipTokenizer::kVocabSize), DataError);
}

// Every string of tokenizer_reference.json gives exactly the reference ids. The only
// ftfy-sensitive string ('‘curly’ “quotes”') is covered by the replicated ftfy subset
// (uncurl_quotes), so no exception is needed.
TEST_F(ClipTokenizerTest, AllReferenceStringsExact) {
  const nlohmann::json ref = ReadJson(kFixtures + "/tokenizer_reference.json");
  ASSERT_EQ(ref.size(), 86u);
  size_t exact = 0;
  for (const auto& [text, ids] : ref.items()) {
    const std::vector<int64_t> want = ids.get<std::vector<int64_t>>();
    const std::vector<int64_t> got = tok_->Tokenize(text);
    if (got == want) {
      ++exact;
    } else {
      ADD_FAILURE() << "ids differ for '" << text << "'";
    }
  }
  std::cout << "[ tokenizer ] " << exact << "/" << ref.size() << " reference strings exact\n";
  EXPECT_EQ(exact, ref.size());
}

// tokenizer_details.json: the cleaned text and the BPE vocabulary strings match too.
TEST_F(ClipTokenizerTest, DetailsCleanedTextAndBpeTokens) {
  const nlohmann::json details = ReadJson(kFixtures + "/tokenizer_details.json");
  ASSERT_EQ(details.at("sot").get<int64_t>(), ClipTokenizer::kSot);
  ASSERT_EQ(details.at("eot").get<int64_t>(), ClipTokenizer::kEot);
  for (const auto& e : details.at("entries")) {
    const std::string text = e.at("text").get<std::string>();
    SCOPED_TRACE(text);
    EXPECT_EQ(tok_->Clean(text), e.at("cleaned").get<std::string>());
    std::vector<std::string> bpe;
    for (int64_t id : tok_->Encode(text)) bpe.push_back(tok_->Decoder(id));
    EXPECT_EQ(bpe, e.at("bpe_tokens").get<std::vector<std::string>>());
    EXPECT_EQ(tok_->Tokenize(text), e.at("ids").get<std::vector<int64_t>>());
    EXPECT_EQ(static_cast<int64_t>(bpe.size()) + 2, e.at("n_tokens_with_sot_eot").get<int64_t>());
  }
}

TEST_F(ClipTokenizerTest, TruncationCase) {
  const nlohmann::json t = ReadJson(kFixtures + "/tokenizer_details.json").at("truncation_case");
  const std::string text = t.at("text").get<std::string>();
  ASSERT_TRUE(t.at("truncate").get<bool>());
  EXPECT_EQ(tok_->Tokenize(text, 77, true), t.at("ids").get<std::vector<int64_t>>());
  EXPECT_EQ(static_cast<int64_t>(tok_->Encode(text).size()) + 2,
            t.at("untruncated_length_with_sot_eot").get<int64_t>());
  try {
    tok_->Tokenize(text);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("a photo of a red car"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("77"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tok_->TokenizeBatch({"ok", text}), DataError);
  EXPECT_THROW(tok_->Tokenize("x", 0), ConfigError);
}

TEST_F(ClipTokenizerTest, Prompts66AsBatchEqualReferenceRows) {
  const auto prompts = ReadJson(kFixtures + "/prompts66.json").get<std::vector<std::string>>();
  const nlohmann::json ref = ReadJson(kFixtures + "/tokenizer_reference.json");
  ASSERT_EQ(prompts.size(), 66u);
  const at::Tensor batch = tok_->TokenizeBatch(prompts);
  ASSERT_EQ(batch.dim(), 2);
  ASSERT_EQ(batch.size(0), 66);
  ASSERT_EQ(batch.size(1), 77);
  ASSERT_EQ(batch.scalar_type(), at::kLong);
  const at::Tensor argmax = batch.argmax(-1);
  for (size_t k = 0; k < prompts.size(); ++k) {
    SCOPED_TRACE(prompts[k]);
    const auto want = ref.at(prompts[k]).get<std::vector<int64_t>>();
    const at::Tensor row = batch[static_cast<int64_t>(k)].contiguous();
    const std::vector<int64_t> got(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + 77);
    EXPECT_EQ(got, want);
    // The EOT id is the largest, so argmax picks the EOT position (as CLIP's text pooling does).
    const auto eot = std::find(want.begin(), want.end(), ClipTokenizer::kEot) - want.begin();
    EXPECT_EQ(argmax[static_cast<int64_t>(k)].item<int64_t>(), eot);
  }
  EXPECT_EQ(tok_->TokenizeBatch({}).size(0), 0);
}

// Expectations below were computed with the reference algorithm (CLIP simple_tokenizer with the
// `regex` module) for strings on which ftfy.fix_text is the identity.
TEST_F(ClipTokenizerTest, CleaningEdgeCases) {
  EXPECT_EQ(tok_->Tokenize(""), [] {
    std::vector<int64_t> v(77, 0);
    v[0] = ClipTokenizer::kSot;
    v[1] = ClipTokenizer::kEot;
    return v;
  }());
  EXPECT_EQ(tok_->Clean("&amp;lt;b&amp;gt; &#65;&#x42;&#X43 &copy &ampx &unknown; &#0;"),
            "<b> abc © &x &unknown; \xEF\xBF\xBD");
  EXPECT_EQ(tok_->Clean("  A\xC2\xA0\xE3\x80\x80"
                        "B\t\n "),
            "a b");
  EXPECT_EQ(tok_->Clean("\xC3\x89T\xC3\x89 \xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"),  // ÉTÉ ΟΔΟΣ
            "\xC3\xA9t\xC3\xA9 \xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");              // été οδος
  EXPECT_EQ(tok_->Clean("\xCA\xBC"
                        "a\xE2\x80\x9B"),
            "'a'");  // ʼa‛ (ftfy uncurl_quotes)
  EXPECT_EQ(tok_->Encode("<|endoftext|>a"), (std::vector<int64_t>{ClipTokenizer::kEot, 320}));
  EXPECT_EQ(tok_->Encode("it's"), tok_->Encode("IT'S"));
  EXPECT_THROW(tok_->Encode("bad \xFF utf8"), DataError);
}

TEST_F(ClipTokenizerTest, ConcurrentCallsAgree) {
  const auto prompts = ReadJson(kFixtures + "/prompts66.json").get<std::vector<std::string>>();
  const ClipTokenizer fresh(kMergesPath);  // empty cache: threads race on filling it
  std::vector<std::vector<std::vector<int64_t>>> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (const auto& p : prompts) results[t].push_back(fresh.Tokenize(p));
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 1; t < results.size(); ++t) EXPECT_EQ(results[t], results[0]);
  for (size_t k = 0; k < prompts.size(); ++k) EXPECT_EQ(results[0][k], tok_->Tokenize(prompts[k]));
}

// ---------------------------------------------------------------------------------------------
// Broken merges files: typed errors naming the file.
// ---------------------------------------------------------------------------------------------

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "cliphba_" + name; }

template <typename E>
void ExpectErrorNaming(const std::string& path) {
  try {
    ClipTokenizer tok(path);
    FAIL() << "expected an error for " << path;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    FAIL() << "wrong exception type: " << e.what();
  }
}

TEST(ClipTokenizerErrors, MissingFileIsIoError) {
  ExpectErrorNaming<IoError>(TempPath("does_not_exist.txt.gz"));
}

TEST(ClipTokenizerErrors, NotGzipIsDataError) {
  const std::string path = TempPath("not_gzip.txt.gz");
  WriteBytes(path, "this is plain text, not gzip\nab cd\n");
  ExpectErrorNaming<DataError>(path);
}

TEST(ClipTokenizerErrors, TruncatedGzipIsDataError) {
  const std::string bytes = ReadBytes(kMergesPath);
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = TempPath("truncated.txt.gz");
  WriteBytes(path, bytes.substr(0, bytes.size() / 2));
  ExpectErrorNaming<DataError>(path);  // exit 4, as a truncated NPY
}

TEST(ClipTokenizerErrors, CorruptGzipIsDataError) {
  std::string bytes = ReadBytes(kMergesPath);
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t i = 100; i < 400; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  const std::string path = TempPath("corrupt.txt.gz");
  WriteBytes(path, bytes);
  ExpectErrorNaming<DataError>(path);
}

TEST(ClipTokenizerErrors, TooFewMergesIsDataError) {
  const std::string path = TempPath("few_merges.txt.gz");
  WriteGzip(path, "#version: 0.2\ni n\nt h\n");
  ExpectErrorNaming<DataError>(path);
}

TEST(ClipTokenizerErrors, MalformedMergeLineIsDataError) {
  const std::string path = TempPath("bad_line.txt.gz");
  WriteGzip(path, "#version: 0.2\ni n\nthree fields here\n");
  ExpectErrorNaming<DataError>(path);
}

}  // namespace
}  // namespace cliphba::model
