// Tests of the .npy/.npz reader and writer (src/core/npy.cpp). Fixtures in tests/data/npy are
// written by NumPy itself (tools/make_npy_fixtures.py); malformed files are made here by editing
// the bytes of good ones.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "test_support.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

using test::data_path;

std::string npy(const std::string& name) { return data_path("npy/" + name); }

std::string error_of(const std::function<void()>& fn) { return test::input_error_of(fn); }

#define EXPECT_ERROR_HAS(stmt, text) \
  EXPECT_NE(error_of([&] { stmt; }).find(text), std::string::npos) << error_of([&] { stmt; })

void expect_grid(const FeatureView& v) {
  ASSERT_EQ(v.rows, 3);
  ASSERT_EQ(v.cols, 4);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(v.at(i, j), (i * 4 + j) / 8.0);
}

TEST(Npy, ReadsFloatArraysInBothOrdersAndVersions) {
  for (const char* f : {"f8_c.npy", "f4_c.npy", "f8_fortran.npy", "f4_fortran.npy", "f8_v2.npy"}) {
    SCOPED_TRACE(f);
    const NpyArray a = load_npy(npy(f));
    expect_grid(a.features());
  }
  EXPECT_TRUE(load_npy(npy("f8_fortran.npy")).header().fortran_order);
  EXPECT_EQ(load_npy(npy("f4_c.npy")).header().type, NpyType::kFloat32);
}

TEST(Npy, ReadsNpzMembersStoredAndDeflated) {
  expect_grid(load_npy(npy("stored.npz") + ":features").features());
  expect_grid(load_npy(npy("compressed.npz") + ":features").features());
  expect_grid(load_npy(npy("compressed.npz") + ":features.npy").features());
  expect_grid(load_npy(npy("single.npz")).features());  // one member: no name needed
  EXPECT_EQ(load_npy(npy("stored.npz") + ":labels").labels(),
            (std::vector<std::int64_t>{3, 7, 42}));
}

TEST(Npy, LabelsOfEveryIntegerWidth) {
  for (const char* dt :
       {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}) {
    SCOPED_TRACE(dt);
    EXPECT_EQ(load_npy(npy(std::string("labels_") + dt + ".npy")).labels(),
              (std::vector<std::int64_t>{3, 7, 42, 3}));
  }
  EXPECT_EQ(load_npy(npy("labels_col.npy")).labels(), (std::vector<std::int64_t>{3, 7, 42, 3}));
  EXPECT_EQ(load_npy(npy("labels_bool.npy")).labels(), (std::vector<std::int64_t>{1, 0, 1}));
}

TEST(Npy, TargetsFromFloatIntOrBool) {
  std::int64_t k = 0;
  const auto t = load_npy(npy("f8_fortran.npy")).targets(&k);
  EXPECT_EQ(k, 4);
  for (int e = 0; e < 12; ++e) EXPECT_EQ(t[e], e / 8.0);  // row-major whatever the file order
  const auto l = load_npy(npy("labels_int32.npy")).targets(&k);
  EXPECT_EQ(k, 1);
  EXPECT_EQ(l, (std::vector<double>{3, 7, 42, 3}));
}

TEST(Npy, RoundTripThroughWriter) {
  test::TempDir dir;
  const std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  save_npy(dir.file("f.npy"), f.data(), {2, 3});
  const NpyArray a = load_npy(dir.file("f.npy"));
  EXPECT_EQ(a.header().shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.header().data_offset % 64, 0u);
  for (int e = 0; e < 6; ++e) EXPECT_EQ(static_cast<const float*>(a.data())[e], f[e]);
  const std::vector<std::int64_t> y = {5, -1, 9};
  save_npy(dir.file("y.npy"), y.data(), {3});
  EXPECT_EQ(load_npy(dir.file("y.npy")).labels(), y);
  // No temporary file is left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += (void(e), 1);
  EXPECT_EQ(files, 2);
}

TEST(Npy, RowReaderChunksEqualTheWholeArray) {
  for (const char* f : {"f8_c.npy", "f4_fortran.npy", "f8_fortran.npy"}) {
    for (std::int64_t chunk : {1, 2, 3, 10}) {
      NpyRowReader reader(npy(f));
      std::int64_t row = 0;
      for (FeatureView v = reader.next(chunk); v.rows > 0; v = reader.next(chunk)) {
        for (std::int64_t i = 0; i < v.rows; ++i)
          for (int j = 0; j < 4; ++j) EXPECT_EQ(v.at(i, j), ((row + i) * 4 + j) / 8.0) << f;
        row += v.rows;
      }
      EXPECT_EQ(row, 3) << f << " chunk " << chunk;
    }
  }
  NpyRowReader z(npy("compressed.npz") + ":features");
  EXPECT_EQ(z.next(2).rows, 2);
  EXPECT_EQ(z.next(2).rows, 1);
  EXPECT_EQ(z.next(2).rows, 0);
}

// ---- refused inputs, each with a message naming the file and the problem ----------------------

TEST(NpyErrors, UnsupportedDtypesSayHowToConvert) {
  EXPECT_ERROR_HAS(load_npy(npy("f8_bigendian.npy")), "big-endian dtype '>f8' is not supported");
  EXPECT_ERROR_HAS(load_npy(npy("f2.npy")), "float16 ('<f2') is not supported");
  EXPECT_ERROR_HAS(load_npy(npy("object.npy")), "object arrays ('|O') are not supported");
  EXPECT_ERROR_HAS(load_npy(npy("structured.npy")), "structured dtypes are not supported");
  EXPECT_ERROR_HAS(load_npy(npy("labels_f8.npy")).labels(),
                   "labels have dtype float64; classification needs integer labels");
  EXPECT_ERROR_HAS(load_npy(npy("labels_int64.npy")).features(),
                   "features must be float32 or float64");
  EXPECT_ERROR_HAS(load_npy(npy("scalar.npy")).features(),
                   "must be a 2-D array (N, D), got shape ()");
  EXPECT_ERROR_HAS(load_npy(npy("f8_c.npy")).labels(),
                   "labels must have shape (N,) or (N, 1), got (3, 4) (one-hot or multi-label 0/1 "
                   "columns are a target matrix: give class indices, or score the columns as "
                   "regression targets with --regression)");
}

TEST(NpyErrors, MissingFilesAndMembers) {
  EXPECT_ERROR_HAS(load_npy("/nonexistent/x.npy"), "/nonexistent/x.npy: cannot open");
  EXPECT_ERROR_HAS(load_npy(npy("stored.npz") + ":nope"),
                   "no member 'nope' in the archive (members: features, labels)");
  EXPECT_ERROR_HAS(load_npy(npy("stored.npz")), "the archive has 2 members (features, labels)");
  EXPECT_ERROR_HAS(load_npy(npy("f8_c.npy") + ".npz"), "cannot open");
  test::TempDir dir;
  test::write_bytes(dir.file("bad.npz"), "this is not a zip archive");
  EXPECT_ERROR_HAS(load_npy(dir.file("bad.npz") + ":x"), "not a valid .npz (zip) archive");
}

class NpyCorrupt : public ::testing::Test {
 protected:
  std::string good_ = test::read_bytes(npy("f8_c.npy"));
  test::TempDir dir_;
  std::string write(const std::string& bytes) {
    const std::string p = dir_.file("x.npy");
    test::write_bytes(p, bytes);
    return p;
  }
  std::string with_header(const std::string& dict) {
    std::string h = dict;
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h.push_back('\n');
    std::string out("\x93NUMPY\x01\x00", 8);
    out.push_back(static_cast<char>(h.size() & 0xff));
    out.push_back(static_cast<char>(h.size() >> 8));
    return out + h + good_.substr(good_.size() - 96);  // the 12 doubles of f8_c.npy
  }
};

TEST_F(NpyCorrupt, EmptyTruncatedAndTrailing) {
  EXPECT_ERROR_HAS(load_npy(write("")), "empty file");
  EXPECT_ERROR_HAS(load_npy(write("PK\x03\x04garbage")), "not an .npy file");
  EXPECT_ERROR_HAS(load_npy(write(good_.substr(0, 20))), "truncated .npy header");
  EXPECT_ERROR_HAS(load_npy(write(good_.substr(0, good_.size() - 8))),
                   "truncated: shape (3, 4) of <f8 needs 96 bytes of data, the file has 88");
  EXPECT_ERROR_HAS(load_npy(write(good_ + "xx")), "2 unexpected bytes after the array data");
  std::string v9 = good_;
  v9[6] = 9;
  EXPECT_ERROR_HAS(load_npy(write(v9)), "unsupported .npy version 9.0");
}

// Prefixes of a version 1.0 and a 2.0 file cut at both sides of every field boundary (magic,
// version, header-length field, header, data) and at each of the last bytes of the header, where
// the announced header length fits in the file although the header does not
// (tools/make_npy_fixtures.py; truncated.json gives the lengths the message must name, from the
// file's own length fields). Every reader must name the truncation exactly: a bound check that
// lets such a file through reads past the end of the buffer and reports something else.
TEST(NpyTruncated, EveryPrefixNamesWhereTheFileEnds) {
  const nlohmann::json manifest = test::load_json(npy("truncated/truncated.json"));
  ASSERT_GE(manifest.size(), 50u);
  int header_cuts_within_offset = 0;
  for (const auto& [name, info] : manifest.items()) {
    SCOPED_TRACE(name);
    const std::string path = npy("truncated/" + name);
    const std::string expect = info.at("expect").get<std::string>();
    const std::string bytes = test::read_bytes(path);
    ASSERT_EQ(bytes.size(), info.at("size").get<std::size_t>());
    // From a file, whole and by rows.
    EXPECT_ERROR_HAS(load_npy(path), expect);
    EXPECT_ERROR_HAS(read_npy_header(path), expect);
    EXPECT_ERROR_HAS(NpyRowReader reader(path), expect);
    // From memory: an exactly sized heap copy, so that the sanitizers see any read past its end.
    if (!bytes.empty()) {
      const std::vector<std::uint8_t> image(bytes.begin(), bytes.end());
      std::string in_memory = expect;
      const std::string file_has = "the file has";
      if (const auto at = in_memory.find(file_has); at != std::string::npos)
        in_memory.replace(at, file_has.size(), "found");
      EXPECT_ERROR_HAS(load_npy_bytes(image.data(), image.size(), "mem.npy"), in_memory);
    }
    const std::size_t end = info.at("header_end").get<std::size_t>();
    if (info.at("field") == "header" && bytes.size() + 12 >= end) ++header_cuts_within_offset;
  }
  EXPECT_GE(header_cuts_within_offset, 20);  // the cuts a weakened bound check lets through
}

TEST_F(NpyCorrupt, HeaderGrammarIsStrict) {
  const std::string ok = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
  expect_grid(load_npy(write(with_header(ok))).features());
  EXPECT_ERROR_HAS(load_npy(write(with_header("{'descr': '<f8', 'shape': (3, 4), }"))),
                   "missing key 'fortran_order'");
  EXPECT_ERROR_HAS(
      load_npy(write(with_header(
          "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3, 4)}"))),
      "duplicate key 'descr'");
  EXPECT_ERROR_HAS(load_npy(write(with_header(
                       "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), 'x': 1}"))),
                   "unexpected key 'x'");
  EXPECT_ERROR_HAS(
      load_npy(write(with_header("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (3, 4)}"))),
      "'fortran_order': expected True or False");
  EXPECT_ERROR_HAS(
      load_npy(write(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, -4)}"))),
      "'shape': expected a non-negative integer");
  EXPECT_ERROR_HAS(load_npy(write(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                              "(4294967296, 4294967296, 4294967296)}"))),
                   "overflows");
  EXPECT_ERROR_HAS(load_npy(write(with_header(
                       "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4)} trailing"))),
                   "unexpected text after the dictionary");
  EXPECT_ERROR_HAS(
      load_npy(write(with_header("{'descr': '<c16', 'fortran_order': False, 'shape': (3, 4)}"))),
      "unsupported dtype '<c16'");
}

TEST_F(NpyCorrupt, ImplausibleHeaderLength) {
  std::string v2 = test::read_bytes(npy("f8_v2.npy"));
  v2[11] = 0x7f;  // header length ~2 GB
  EXPECT_ERROR_HAS(load_npy(write(v2)), "implausibly large");
}

TEST(NpyErrors, EmptyShapesAreReadNotCrashed) {
  EXPECT_EQ(load_npy(npy("empty_rows.npy")).features().rows, 0);
  EXPECT_EQ(load_npy(npy("zero_cols.npy")).features().cols, 0);
}

TEST(NpyWriter, FailsCleanlyIntoAMissingDirectory) {
  const double x = 1.0;
  EXPECT_THROW(save_npy("/nonexistent-dir/x.npy", &x, {1}), std::runtime_error);
}

}  // namespace
}  // namespace tlkit
