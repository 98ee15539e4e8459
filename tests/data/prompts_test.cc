// The prompts reader (src/data/prompts.h): every bad file is refused naming the file and entry.
#include "data/prompts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"

namespace cliphba::data {
namespace {

std::string Write(const std::string& name, const std::string& text) {
  const std::string dir = std::string(CLIPHBA_TEST_OUT_DIR) + "/prompts";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

template <typename E>
void ExpectRefused(const std::string& path, const std::vector<std::string>& needles) {
  try {
    ReadPrompts(path, "train.meg.prompts");
    ADD_FAILURE() << path << " was accepted";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
}

TEST(PromptsTest, ReadsTheListInOrder) {
  const std::string path = Write("good.json", R"(["a photo of food", "animal-related"])");
  EXPECT_EQ(ReadPrompts(path, "--prompts"),
            (std::vector<std::string>{"a photo of food", "animal-related"}));
}

TEST(PromptsTest, RefusesEmptyAndMalformedFiles) {
  ExpectRefused<DataError>(Write("blank.json", R"(["food", "  ", "tool"])"),
                           {"blank.json", "entry 1", "empty prompt", "train.meg.prompts"});
  ExpectRefused<DataError>(Write("empty_string.json", R"(["", "tool"])"), {"entry 0", "empty"});
  ExpectRefused<DataError>(Write("number.json", R"(["food", 3])"), {"entry 1", "not a string"});
  ExpectRefused<DataError>(Write("empty_list.json", "[]"), {"empty_list.json", "non-empty"});
  ExpectRefused<DataError>(Write("object.json", R"({"a": "b"})"), {"object.json", "list"});
  ExpectRefused<DataError>(Write("bad.json", "[\"food\""), {"bad.json", "not valid JSON"});
  ExpectRefused<IoError>(std::string(CLIPHBA_TEST_OUT_DIR) + "/prompts/missing.json",
                         {"missing.json"});
}

}  // namespace
}  // namespace cliphba::data
