// Reading and writing NumPy .npy files and .npz members.
//
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html (versions 1.0,
// 2.0 and 3.0). The reader treats every file as untrusted: the header is parsed by a strict
// grammar (only the keys 'descr', 'fortran_order' and 'shape'), sizes are overflow-checked and
// must match the file exactly, and every failure throws tlkit::InputError naming the file, the
// field and the value. Supported element types: little-endian float32/float64, signed and
// unsigned integers of 1-8 bytes, and bool; big-endian, float16, complex, string, structured and
// object dtypes are refused with a message that says how to convert them.
//
// A path "archive.npz:name" names the member "name.npy" (or "name") of an .npz archive (stored or
// deflated, as written by np.savez / np.savez_compressed); an archive with a single member may be
// given without ":name".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tlkit/core/matrix_view.h"

namespace tlkit {

enum class NpyType {
  kBool, kInt8, kInt16, kInt32, kInt64, kUInt8, kUInt16, kUInt32, kUInt64, kFloat32, kFloat64
};
const char* to_string(NpyType t);

struct NpyHeader {
  NpyType type = NpyType::kFloat64;
  std::string descr;             ///< as written in the file, e.g. "<f4"
  int itemsize = 8;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::size_t data_offset = 0;   ///< bytes before the array data
  std::int64_t count() const;    ///< number of elements (1 for a 0-d array)
  std::string shape_string() const;  ///< "(3, 4)"
};

/// Parses the header at the start of `data` (an .npy image of `size` bytes). `origin` names the
/// source in error messages.
NpyHeader parse_npy_header(const std::uint8_t* data, std::size_t size, const std::string& origin);

/// An .npy array held in memory (data 16-byte aligned).
class NpyArray {
 public:
  NpyArray() = default;
  NpyArray(NpyHeader header, std::string origin, std::shared_ptr<std::uint8_t[]> bytes);

  const NpyHeader& header() const { return header_; }
  const std::string& origin() const { return origin_; }
  const void* data() const { return bytes_.get(); }
  std::int64_t rows() const;  ///< shape[0]
  std::int64_t cols() const;  ///< shape[1], or 1 for a 1-D array

  /// The array as an N x D feature matrix without a copy. Needs float32/float64 and 2 dimensions.
  FeatureView features() const;
  /// The array as N integer labels (any integer or bool dtype; shape (N,) or (N, 1)).
  std::vector<std::int64_t> labels() const;
  /// The array as N x K float64 targets, row-major (any real, integer or bool dtype; shape (N,)
  /// or (N, K)).
  std::vector<double> targets(std::int64_t* k_out) const;

 private:
  NpyHeader header_;
  std::string origin_;
  std::shared_ptr<std::uint8_t[]> bytes_;
};

/// Loads "file.npy" or "file.npz:member" into memory.
NpyArray load_npy(const std::string& spec);

/// The header of "file.npy" or "file.npz:member" without reading the data (for a plain .npy the
/// file size is checked against the shape too): what loading it would allocate is
/// header.count() * header.itemsize bytes.
NpyHeader read_npy_header(const std::string& spec);

/// The .npy image `data` (`size` bytes, any alignment; copied) as an array; `origin` names it in
/// messages. Same checks and errors as load_npy.
NpyArray load_npy_bytes(const std::uint8_t* data, std::size_t size, const std::string& origin);

/// Member `member` (as after "file.npz:"; empty: the archive's only member) of the .npz archive
/// image `data` (`size` bytes, not copied, must outlive the call); `origin` names it in messages.
NpyArray load_npz_bytes(const std::uint8_t* data, std::size_t size, const std::string& member,
                        const std::string& origin);

/// Reads a 2-D float32/float64 .npy in row chunks so memory does not grow with N (C or Fortran
/// order). For an .npz member the member is decompressed into memory once.
class NpyRowReader {
 public:
  explicit NpyRowReader(const std::string& spec);
  ~NpyRowReader();
  NpyRowReader(const NpyRowReader&) = delete;
  NpyRowReader& operator=(const NpyRowReader&) = delete;

  const NpyHeader& header() const;
  std::int64_t rows() const;
  std::int64_t cols() const;
  /// The next at most `max_rows` rows (an empty view at the end); valid until the next call.
  FeatureView next(std::int64_t max_rows);
  /// Makes `row` (0 <= row <= rows()) the next row next() returns: a process that scores a
  /// range of the rows reads only that range, from its offset after the header.
  void seek(std::int64_t row);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Writes a C-order .npy (version 1.0) atomically: a temporary file in the same directory is
/// written, flushed and renamed, so readers never see a partial file. Throws std::system_error
/// (a std::runtime_error) naming the path and the errno on I/O failure (the temporary is removed).
void save_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape);
void save_npy(const std::string& path, const double* data, const std::vector<std::int64_t>& shape);
void save_npy(const std::string& path, const std::int64_t* data,
              const std::vector<std::int64_t>& shape);

/// Writes `bytes` to `path` atomically (temporary file + fsync + rename). The temporary is
/// "<path>.tmp.<pid>"; a process killed before its rename leaves it behind, and the next write of
/// the same `path` removes such files whose pid is no longer a running process (docs/errors.md,
/// "Interruptions and temporary files").
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace tlkit
