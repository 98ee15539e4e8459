#include "io/csv.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/npy.h"

namespace cliphba::io {
namespace {

const std::string kThings = std::string(CLIPHBA_SHARED_DIR) + "/data/things/";

// Scratch files are prefixed so that tests of other modules sharing the folder never collide.
std::string Out(const std::string& name) {
  return std::string(CLIPHBA_TEST_OUT_DIR) + "/csv_" + name;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string WriteText(const std::string& name, const std::string& text) {
  const std::string path = Out(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  EXPECT_TRUE(out.good()) << path;
  return path;
}

template <typename E, typename Fn>
void ExpectError(Fn fn, std::initializer_list<std::string> phrases) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing '" << *phrases.begin() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : phrases) {
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(CsvRealData, Embedding48Val) {
  const EmbeddingTable t = ReadEmbeddingCsv(kThings + "spose_embedding66d_rescaled_48val.csv");
  ASSERT_EQ(t.names.size(), 48u);
  ASSERT_EQ(t.values.scalar_type(), at::kDouble);
  ASSERT_EQ(t.values.sizes(), (std::vector<int64_t>{48, 66}));
  EXPECT_EQ(t.names.front(), "bag_01b.jpg");
  EXPECT_EQ(t.names.back(), "washcloth_01b.jpg");
  // strtod is correctly rounded, so the decimal text gives the exact double.
  EXPECT_EQ(t.values[0][0].item<double>(), 19.739507557914187);
  EXPECT_EQ(t.values[0][65].item<double>(), 1.1461842145837011);
  EXPECT_EQ(t.values[47][10].item<double>(), 0.9749385562529116);
  EXPECT_GE(t.values.min().item<double>(), 0.0);
}

TEST(CsvRealData, TripletIndexAlignsFullEmbeddingWithRdmNames) {
  const EmbeddingTable all = ReadEmbeddingCsv(kThings + "spose_embedding66d_rescaled.csv");
  ASSERT_EQ(all.names.size(), 1854u);
  ASSERT_EQ(all.values.size(1), 66);
  const std::vector<std::string> rdm_names = ReadNameList(kThings + "RDM48_image_names.txt");
  const at::Tensor idx = ReadNpy(kThings + "triplet48_index.npy");
  ASSERT_EQ(idx.numel(), 48);
  for (int64_t k = 0; k < 48; ++k) {
    EXPECT_EQ(all.names[idx[k].item<int64_t>()], rdm_names[k]) << "row " << k;
  }
}

TEST(CsvRealData, NameLists) {
  const std::vector<std::string> rdm = ReadNameList(kThings + "RDM48_image_names.txt");
  ASSERT_EQ(rdm.size(), 48u);
  EXPECT_EQ(rdm[0], "pizza_01b.jpg");
  EXPECT_EQ(rdm[1], "beaver_01b.jpg");

  const std::vector<std::string> things48 = ReadNameList(kThings + "things48_image_names.csv");
  ASSERT_EQ(things48.size(), 48u);
  EXPECT_EQ(things48[0], "bag_01b.jpg");
  EXPECT_EQ(std::set<std::string>(rdm.begin(), rdm.end()),
            std::set<std::string>(things48.begin(), things48.end()));

  const std::vector<std::string> cichy = ReadNameList(kThings + "cichy118_image_names.csv");
  ASSERT_EQ(cichy.size(), 118u);
  EXPECT_EQ(cichy.front(), "stimulus001.png");
  EXPECT_EQ(cichy.back(), "stimulus118.png");

  const std::vector<std::string> objects = ReadNameList(kThings + "Hebart1854Objects_Name.csv");
  ASSERT_EQ(objects.size(), 1854u);
  EXPECT_EQ(objects[0], "aardvark");
}

TEST(CsvParsing, QuotesCrlfBomAndNoIndexColumn) {
  const std::string path = WriteText("quoted.csv",
                                     "\xEF\xBB\xBF,image_name,0,1\r\n"
                                     "0,\"a, b.jpg\",1.5,-2e-3\r\n"
                                     "1, \"say \"\"hi\"\"\" , 3 ,4\r\n"
                                     "\r\n");
  const EmbeddingTable t = ReadEmbeddingCsv(path);
  ASSERT_EQ(t.names, (std::vector<std::string>{"a, b.jpg", "say \"hi\""}));
  EXPECT_EQ(t.values[0][1].item<double>(), -2e-3);
  EXPECT_EQ(t.values[1][0].item<double>(), 3.0);

  const EmbeddingTable u = ReadEmbeddingCsv(WriteText("noindex.csv", "image_name,x\nq.jpg,7\n"));
  ASSERT_EQ(u.values.sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(u.values[0][0].item<double>(), 7.0);

  ExpectError<DataError>(
      [&] { ReadEmbeddingCsv(WriteText("unterminated.csv", ",image_name,0\n0,\"a.jpg,1\n")); },
      {"unterminated.csv:2", "closing"});
}

TEST(CsvErrors, EmbeddingBadInputs) {
  ExpectError<IoError>([] { ReadEmbeddingCsv(Out("no_such.csv")); },
                       {"no_such.csv", "cannot open"});
  ExpectError<DataError>([] { ReadEmbeddingCsv(WriteText("empty.csv", "")); },
                         {"empty.csv", "empty file"});
  ExpectError<DataError>([] { ReadEmbeddingCsv(WriteText("header_only.csv", ",image_name,0\n")); },
                         {"header_only.csv", "no data rows"});
  ExpectError<DataError>([] { ReadEmbeddingCsv(WriteText("no_name.csv", ",name,0\n0,a.jpg,1\n")); },
                         {"no_name.csv:1", "no 'image_name' column"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("short.csv", ",image_name,0,1\n0,a.jpg,1,2\n1,b.jpg,3\n")); },
      {"short.csv:3", "expected 4 fields", "found 3"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("long.csv", ",image_name,0\n0,a.jpg,1,2\n")); },
      {"long.csv:2", "expected 3 fields", "found 4"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("text.csv", ",image_name,0,1\n0,a.jpg,1,x1\n")); },
      {"text.csv:2", "column 4 ('1')", "'x1'", "expected a number"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("partial_num.csv", ",image_name,0\n0,a.jpg,1.5e\n")); },
      {"partial_num.csv:2", "'1.5e'", "expected a number"});
  ExpectError<DataError>(
      [] {
        ReadEmbeddingCsv(WriteText("nan.csv", ",image_name,0,1\n0,a.jpg,1,2\n1,b.jpg,nan,2\n"));
      },
      {"nan.csv:3", "column 3 ('0')", "non-finite value"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("inf.csv", ",image_name,0\n0,a.jpg,-inf\n")); },
      {"inf.csv:2", "non-finite value"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("huge.csv", ",image_name,0\n0,a.jpg,1e999\n")); },
      {"huge.csv:2", "non-finite value"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("emptycell.csv", ",image_name,0\n0,a.jpg,\n")); },
      {"emptycell.csv:2", "is empty"});
  ExpectError<DataError>(
      [] {
        ReadEmbeddingCsv(WriteText("dup.csv", ",image_name,0\n0,a.jpg,1\n1,b.jpg,2\n2,a.jpg,3\n"));
      },
      {"dup.csv", "duplicate image name 'a.jpg'", "lines 2 and 4"});
  ExpectError<DataError>(
      [] { ReadEmbeddingCsv(WriteText("blankname.csv", ",image_name,0\n0, ,1\n")); },
      {"blankname.csv:2", "image_name"});
}

TEST(CsvErrors, NameListBadInputs) {
  ExpectError<IoError>([] { ReadNameList(Out("no_such.txt")); }, {"no_such.txt"});
  ExpectError<DataError>([] { ReadNameList(WriteText("empty.txt", "\n\n")); },
                         {"empty.txt", "empty"});
  ExpectError<DataError>([] { ReadNameList(WriteText("dup.txt", "a\nb\n a \n")); },
                         {"dup.txt", "duplicate image name 'a'", "lines 1 and 3"});
  ExpectError<DataError>([] { ReadNameList(WriteText("blank.txt", "a\n\nb\n")); },
                         {"blank.txt:2", "blank line"});
  ExpectError<DataError>([] { ReadNameList(WriteText("nocol.csv", "index,name\n0,a\n")); },
                         {"nocol.csv:1", "no 'image_name' column"});
  ExpectError<DataError>(
      [] { ReadNameList(WriteText("shortrow.csv", "index,image_name\n0,a\n1\n")); },
      {"shortrow.csv:3", "expected 2 fields", "found 1"});
  ExpectError<DataError>([] { ReadNameList(WriteText("dup_names.csv", "image_name\nx\ny\nx\n")); },
                         {"dup_names.csv", "'x'", "lines 2 and 4"});
  ExpectError<DataError>([] { ReadNameList(WriteText("headeronly.csv", "image_name\n")); },
                         {"headeronly.csv", "no names"});
}

TEST(CsvWrite, EmbeddingRoundTripsExactly) {
  EmbeddingTable t;
  t.names = {"a.jpg", "with, comma.jpg", "q\"uote.jpg"};
  t.values = at::randn({3, 5}, at::kDouble);
  t.values[0][0] = 0.1;
  t.values[0][1] = 1.0 / 3.0;
  t.values[0][2] = 1e-300;
  t.values[0][3] = -1.7976931348623157e308;
  t.values[0][4] = 4.9e-324;
  const std::string path = Out("roundtrip.csv");
  WriteEmbeddingCsv(path, t);
  EXPECT_FALSE(Exists(path + ".partial"));
  const EmbeddingTable back = ReadEmbeddingCsv(path);
  EXPECT_EQ(back.names, t.names);
  EXPECT_TRUE(at::equal(back.values, t.values));

  // Real data survive a write/read cycle bit for bit.
  const EmbeddingTable real = ReadEmbeddingCsv(kThings + "spose_embedding66d_rescaled_48val.csv");
  WriteEmbeddingCsv(path, real);
  EXPECT_TRUE(at::equal(ReadEmbeddingCsv(path).values, real.values));
}

TEST(CsvWrite, RefusesBadTablesAndMissingDirectory) {
  EmbeddingTable t;
  t.names = {"a.jpg"};
  t.values = at::zeros({2, 3}, at::kDouble);
  ExpectError<DataError>([&] { WriteEmbeddingCsv(Out("mismatch.csv"), t); }, {"mismatch.csv"});
  t.values = at::full({1, 2}, NAN, at::kDouble);
  ExpectError<DataError>([&] { WriteEmbeddingCsv(Out("nanw.csv"), t); },
                         {"nanw.csv", "non-finite"});
  EXPECT_FALSE(Exists(Out("nanw.csv")));
  EXPECT_FALSE(Exists(Out("nanw.csv.partial")));

  t.values = at::zeros({1, 2}, at::kDouble);
  const std::string missing = Out("no_such_dir/e.csv");
  ExpectError<IoError>([&] { WriteEmbeddingCsv(missing, t); }, {"no_such_dir/e.csv"});
  EXPECT_FALSE(Exists(missing + ".partial"));
  ExpectError<IoError>([&] { WriteNameList(Out("no_such_dir/n.txt"), {"a"}); },
                       {"no_such_dir/n.txt"});
}

TEST(CsvWrite, NameListRoundTrips) {
  const std::vector<std::string> names = {"pizza_01b.jpg", "beaver_01b.jpg", "a, b"};
  for (const std::string file : {"names_rt.txt", "names_rt.csv"}) {
    const std::string path = Out(file);
    WriteNameList(path, names);
    EXPECT_FALSE(Exists(path + ".partial"));
    EXPECT_EQ(ReadNameList(path), names) << file;
  }
  ExpectError<DataError>(
      [] {
        WriteNameList(Out("bad_names.txt"), {"ok", "two\nlines"});
      },
      {"bad_names.txt", "one line"});
}

}  // namespace
}  // namespace cliphba::io
