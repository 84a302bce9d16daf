#include "tlkit/core/npy.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tlkit's .npy reader assumes a little-endian host");

namespace tlkit {
namespace {

constexpr std::size_t kMaxHeaderBytes = 1 << 20;  // numpy itself caps headers far lower

struct TypeInfo {
  NpyType type;
  int size;
};

TypeInfo parse_descr(const std::string& descr, const std::string& origin) {
  if (descr.size() >= 2 && descr[1] == 'O')
    TLKIT_THROW_ARG(
        "{}: header field 'descr': object arrays ('{}') are not supported (they need "
        "pickle); save a numeric array instead",
        origin, descr);
  TLKIT_CHECK_ARG(descr.size() >= 3, "{}: header field 'descr': unsupported dtype '{}'", origin,
                  descr);
  const char order = descr[0];
  const char kind = descr[1];
  const std::string size_str = descr.substr(2);
  TLKIT_CHECK_ARG(order == '<' || order == '|' || order == '=' || order == '>',
                  "{}: header field 'descr': unsupported dtype '{}'", origin, descr);
  int size = 0;
  for (char c : size_str) {
    TLKIT_CHECK_ARG(std::isdigit(static_cast<unsigned char>(c)) && size < 1000,
                    "{}: header field 'descr': unsupported dtype '{}'", origin, descr);
    size = size * 10 + (c - '0');
  }
  TLKIT_CHECK_ARG(!(order == '>' && size > 1),
                  "{}: header field 'descr': big-endian dtype '{}' is not supported; convert with "
                  "arr.astype(arr.dtype.newbyteorder('<'))",
                  origin, descr);
  if (kind == 'f' && size == 4) return {NpyType::kFloat32, 4};
  if (kind == 'f' && size == 8) return {NpyType::kFloat64, 8};
  if (kind == 'f')
    TLKIT_THROW_ARG(
        "{}: header field 'descr': float{} ('{}') is not supported; use float32 or "
        "float64",
        origin, size * 8, descr);
  if (kind == 'b' && size == 1) return {NpyType::kBool, 1};
  if (kind == 'i' || kind == 'u') {
    const bool s = kind == 'i';
    switch (size) {
      case 1:
        return {s ? NpyType::kInt8 : NpyType::kUInt8, 1};
      case 2:
        return {s ? NpyType::kInt16 : NpyType::kUInt16, 2};
      case 4:
        return {s ? NpyType::kInt32 : NpyType::kUInt32, 4};
      case 8:
        return {s ? NpyType::kInt64 : NpyType::kUInt64, 8};
      default:
        break;
    }
  }
  TLKIT_THROW_ARG(
      "{}: header field 'descr': unsupported dtype '{}' (expected float32/float64, "
      "an integer type or bool)",
      origin, descr);
}

// A strict parser for the Python-literal dict of an .npy header.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& origin) : s_(text), origin_(origin) {}

  NpyHeader parse() {
    NpyHeader h;
    bool has_descr = false, has_order = false, has_shape = false;
    skip_ws();
    expect('{');
    skip_ws();
    while (peek() != '}') {
      const std::string key = parse_string("a key");
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        TLKIT_CHECK_ARG(!has_descr, "{}: header: duplicate key 'descr'", origin_);
        TLKIT_CHECK_ARG(peek() == '\'' || peek() == '"',
                        "{}: header field 'descr': structured dtypes are not supported", origin_);
        h.descr = parse_string("'descr'");
        has_descr = true;
      } else if (key == "fortran_order") {
        TLKIT_CHECK_ARG(!has_order, "{}: header: duplicate key 'fortran_order'", origin_);
        h.fortran_order = parse_bool();
        has_order = true;
      } else if (key == "shape") {
        TLKIT_CHECK_ARG(!has_shape, "{}: header: duplicate key 'shape'", origin_);
        h.shape = parse_shape();
        has_shape = true;
      } else {
        TLKIT_THROW_ARG("{}: header: unexpected key '{}'", origin_, key);
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        skip_ws();
      } else {
        TLKIT_CHECK_ARG(peek() == '}', "{}: header: expected ',' or '}}' at offset {}", origin_,
                        pos_);
      }
    }
    ++pos_;
    skip_ws();
    TLKIT_CHECK_ARG(pos_ == s_.size(), "{}: header: unexpected text after the dictionary", origin_);
    TLKIT_CHECK_ARG(has_descr && has_order && has_shape, "{}: header: missing key '{}'", origin_,
                    !has_descr   ? "descr"
                    : !has_order ? "fortran_order"
                                 : "shape");
    return h;
  }

 private:
  char peek() const {
    TLKIT_CHECK_ARG(pos_ < s_.size(), "{}: header: unexpected end of the header text", origin_);
    return s_[pos_];
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    TLKIT_CHECK_ARG(peek() == c, "{}: header: expected '{}' at offset {}, found '{}'", origin_, c,
                    pos_, s_[pos_]);
    ++pos_;
  }
  std::string parse_string(const char* what) {
    const char q = peek();
    TLKIT_CHECK_ARG(q == '\'' || q == '"',
                    "{}: header: expected a quoted string for {} at offset "
                    "{}",
                    origin_, what, pos_);
    ++pos_;
    std::string out;
    while (peek() != q) {
      const char c = s_[pos_++];
      TLKIT_CHECK_ARG(c != '\\' && std::isprint(static_cast<unsigned char>(c)),
                      "{}: header: unsupported character in {}", origin_, what);
      out.push_back(c);
      TLKIT_CHECK_ARG(out.size() < 256, "{}: header: {} is too long", origin_, what);
    }
    ++pos_;
    return out;
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    TLKIT_THROW_ARG("{}: header field 'fortran_order': expected True or False", origin_);
  }
  std::vector<std::int64_t> parse_shape() {
    expect('(');
    std::vector<std::int64_t> dims;
    skip_ws();
    while (peek() != ')') {
      TLKIT_CHECK_ARG(std::isdigit(static_cast<unsigned char>(peek())),
                      "{}: header field 'shape': expected a non-negative integer at offset {}",
                      origin_, pos_);
      std::int64_t v = 0;
      int digits = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        TLKIT_CHECK_ARG(++digits <= 18, "{}: header field 'shape': dimension too large", origin_);
        v = v * 10 + (s_[pos_++] - '0');
      }
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 longs in old files
      dims.push_back(v);
      TLKIT_CHECK_ARG(dims.size() <= 32, "{}: header field 'shape': too many dimensions", origin_);
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        skip_ws();
      } else {
        TLKIT_CHECK_ARG(peek() == ')', "{}: header field 'shape': expected ',' or ')'", origin_);
      }
    }
    ++pos_;
    return dims;
  }

  const std::string& s_;
  const std::string& origin_;
  std::size_t pos_ = 0;
};

std::size_t checked_nbytes(const NpyHeader& h, const std::string& origin) {
  std::uint64_t n = 1;
  for (std::int64_t d : h.shape) {
    TLKIT_CHECK_ARG(!__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n),
                    "{}: header field 'shape': {} overflows", origin, h.shape_string());
  }
  std::uint64_t bytes = 0;
  TLKIT_CHECK_ARG(!__builtin_mul_overflow(n, static_cast<std::uint64_t>(h.itemsize), &bytes) &&
                      bytes < (std::uint64_t{1} << 62),
                  "{}: header field 'shape': {} is too large", origin, h.shape_string());
  return static_cast<std::size_t>(bytes);
}

std::shared_ptr<std::uint8_t[]> allocate(std::size_t bytes, const std::string& origin) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) {
    const double phys = static_cast<double>(pages) * static_cast<double>(page);
    if (static_cast<double>(bytes) > phys)
      TLKIT_THROW_ARG(
          "{}: the array needs {:.1f} GiB, more than this machine's {:.1f} GiB of "
          "memory (use --chunk-rows to stream it)",
          origin, bytes / 1073741824.0, phys / 1073741824.0);
  }
  // new[] of uint8_t is aligned for any scalar (alignof(max_align_t) = 16).
  return std::shared_ptr<std::uint8_t[]>(new std::uint8_t[std::max<std::size_t>(bytes, 1)]);
}

struct SpecParts {
  std::string path;
  std::string member;  // empty: none given
  bool npz = false;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

SpecParts split_spec(const std::string& spec) {
  SpecParts p;
  const auto colon = spec.rfind(':');
  if (colon != std::string::npos && ends_with(spec.substr(0, colon), ".npz")) {
    p.path = spec.substr(0, colon);
    p.member = spec.substr(colon + 1);
    p.npz = true;
  } else {
    p.path = spec;
    p.npz = ends_with(spec, ".npz");
  }
  return p;
}

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) TLKIT_THROW_ARG("{}: cannot open: {}", path, std::strerror(errno));
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void pread_all(int fd, void* dst, std::size_t n, std::uint64_t offset, const std::string& origin) {
  auto* p = static_cast<std::uint8_t*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) TLKIT_THROW_ARG("{}: read error: {}", origin, std::strerror(errno));
    if (got == 0) TLKIT_THROW_ARG("{}: truncated file (ended while reading)", origin);
    p += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
}

// Reads and validates the header of a plain .npy file; returns it with the file size checked.
NpyHeader read_file_header(int fd, const std::string& origin) {
  struct stat st {};
  TLKIT_CHECK_ARG(::fstat(fd, &st) == 0 && S_ISREG(st.st_mode), "{}: not a regular file", origin);
  const auto size = static_cast<std::size_t>(st.st_size);
  TLKIT_CHECK_ARG(size > 0, "{}: empty file (expected an .npy array)", origin);
  std::vector<std::uint8_t> head(std::min(size, kMaxHeaderBytes + 16));
  pread_all(fd, head.data(), head.size(), 0, origin);
  NpyHeader h = parse_npy_header(head.data(), head.size(), origin);
  const std::size_t nbytes = checked_nbytes(h, origin);
  const std::size_t have = size - h.data_offset;
  TLKIT_CHECK_ARG(have >= nbytes,
                  "{}: truncated: shape {} of {} needs {} bytes of data, the file "
                  "has {}",
                  origin, h.shape_string(), h.descr, nbytes, have);
  TLKIT_CHECK_ARG(have == nbytes, "{}: {} unexpected bytes after the array data", origin,
                  have - nbytes);
  return h;
}

[[noreturn]] void throw_zip_open_error(const std::string& path, int err) {
  zip_error_t ze;
  zip_error_init_with_code(&ze, err);
  const std::string msg = zip_error_strerror(&ze);
  zip_error_fini(&ze);
  TLKIT_THROW_ARG("{}: not a valid .npz (zip) archive: {}", path, msg);
}

// Extracts the member named by `parts` from the open archive `za` (which it closes); with
// `max_bytes` > 0 only the member's first `max_bytes` bytes (for its header).
std::vector<std::uint8_t> read_npz_member(zip_t* za, const SpecParts& parts, std::string* origin,
                                          std::size_t max_bytes = 0);

zip_t* open_npz(const SpecParts& parts) {
  int err = 0;
  zip_t* za = zip_open(parts.path.c_str(), ZIP_RDONLY, &err);
  if (!za) {
    if (err == ZIP_ER_NOENT || err == ZIP_ER_OPEN || err == ZIP_ER_READ)
      TLKIT_THROW_ARG("{}: cannot open: {}", parts.path, std::strerror(errno));
    throw_zip_open_error(parts.path, err);
  }
  return za;
}

std::vector<std::uint8_t> read_npz_member(const SpecParts& parts, std::string* origin) {
  return read_npz_member(open_npz(parts), parts, origin);
}

std::vector<std::uint8_t> read_npz_member(zip_t* za, const SpecParts& parts, std::string* origin,
                                          std::size_t max_bytes) {
  struct Closer {
    zip_t* z;
    ~Closer() { zip_discard(z); }
  } closer{za};
  const zip_int64_t entries = zip_get_num_entries(za, 0);
  std::vector<std::string> names;
  for (zip_int64_t i = 0; i < entries; ++i) {
    const char* nm = zip_get_name(za, static_cast<zip_uint64_t>(i), 0);
    if (nm) names.emplace_back(nm);
  }
  std::string listing;
  for (const auto& nm : names) {
    std::string shown = ends_with(nm, ".npy") ? nm.substr(0, nm.size() - 4) : nm;
    listing += (listing.empty() ? "" : ", ") + shown;
  }
  zip_int64_t index = -1;
  if (parts.member.empty()) {
    TLKIT_CHECK_ARG(entries == 1, "{}: the archive has {} members ({}); name one as {}:NAME",
                    parts.path, entries, listing, parts.path);
    index = 0;
  } else {
    index = zip_name_locate(za, (parts.member + ".npy").c_str(), 0);
    if (index < 0) index = zip_name_locate(za, parts.member.c_str(), 0);
    TLKIT_CHECK_ARG(index >= 0, "{}: no member '{}' in the archive (members: {})", parts.path,
                    parts.member, listing.empty() ? "none" : listing);
  }
  zip_stat_t st;
  zip_stat_init(&st);
  TLKIT_CHECK_ARG(zip_stat_index(za, static_cast<zip_uint64_t>(index), 0, &st) == 0 &&
                      (st.valid & ZIP_STAT_SIZE),
                  "{}: cannot read the member's size", parts.path);
  *origin = parts.path + ":" + (parts.member.empty() ? names[0] : parts.member);
  zip_file_t* zf = zip_fopen_index(za, static_cast<zip_uint64_t>(index), 0);
  TLKIT_CHECK_ARG(zf != nullptr, "{}: cannot open the member: {}", *origin, zip_strerror(za));
  struct FileCloser {
    zip_file_t* f;
    ~FileCloser() { zip_fclose(f); }
  } fcloser{zf};
  // Grow the buffer only as real bytes arrive, so a forged size field cannot make us allocate.
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  for (;;) {
    const zip_int64_t got = zip_fread(zf, chunk, sizeof chunk);
    TLKIT_CHECK_ARG(got >= 0, "{}: corrupt member: {}", *origin, zip_file_strerror(zf));
    if (got == 0) break;
    out.insert(out.end(), chunk, chunk + got);
    TLKIT_CHECK_ARG(out.size() <= st.size, "{}: member is larger than its recorded size", *origin);
    if (max_bytes > 0 && out.size() >= max_bytes) return out;
  }
  TLKIT_CHECK_ARG(out.size() == st.size, "{}: truncated member ({} of {} bytes)", *origin,
                  out.size(), st.size);
  return out;
}

NpyArray array_from_image(const std::vector<std::uint8_t>& image, const std::string& origin) {
  NpyHeader h = parse_npy_header(image.data(), image.size(), origin);
  const std::size_t nbytes = checked_nbytes(h, origin);
  const std::size_t have = image.size() - h.data_offset;
  TLKIT_CHECK_ARG(have >= nbytes, "{}: truncated: shape {} of {} needs {} bytes of data, found {}",
                  origin, h.shape_string(), h.descr, nbytes, have);
  TLKIT_CHECK_ARG(have == nbytes, "{}: {} unexpected bytes after the array data", origin,
                  have - nbytes);
  auto bytes = allocate(nbytes, origin);
  std::memcpy(bytes.get(), image.data() + h.data_offset, nbytes);
  return NpyArray(std::move(h), origin, std::move(bytes));
}

template <typename T>
std::int64_t int_at(const void* p, std::int64_t i) {
  return static_cast<std::int64_t>(static_cast<const T*>(p)[i]);
}

}  // namespace

const char* to_string(NpyType t) {
  switch (t) {
    case NpyType::kBool:
      return "bool";
    case NpyType::kInt8:
      return "int8";
    case NpyType::kInt16:
      return "int16";
    case NpyType::kInt32:
      return "int32";
    case NpyType::kInt64:
      return "int64";
    case NpyType::kUInt8:
      return "uint8";
    case NpyType::kUInt16:
      return "uint16";
    case NpyType::kUInt32:
      return "uint32";
    case NpyType::kUInt64:
      return "uint64";
    case NpyType::kFloat32:
      return "float32";
    case NpyType::kFloat64:
      return "float64";
  }
  return "?";
}

std::int64_t NpyHeader::count() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string NpyHeader::shape_string() const {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (i + 1 < shape.size() || shape.size() == 1) s += shape.size() == 1 ? "," : ", ";
  }
  return s + ")";
}

NpyHeader parse_npy_header(const std::uint8_t* data, std::size_t size, const std::string& origin) {
  static const std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  TLKIT_CHECK_ARG(size >= 10 && std::memcmp(data, kMagic, 6) == 0,
                  "{}: not an .npy file (missing the \\x93NUMPY magic)", origin);
  const int major = data[6], minor = data[7];
  TLKIT_CHECK_ARG((major >= 1 && major <= 3) && minor == 0, "{}: unsupported .npy version {}.{}",
                  origin, major, minor);
  std::size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<std::size_t>(data[8]) | (static_cast<std::size_t>(data[9]) << 8);
    offset = 10;
  } else {
    TLKIT_CHECK_ARG(size >= 12, "{}: truncated .npy header", origin);
    header_len = static_cast<std::size_t>(data[8]) | (static_cast<std::size_t>(data[9]) << 8) |
                 (static_cast<std::size_t>(data[10]) << 16) |
                 (static_cast<std::size_t>(data[11]) << 24);
    offset = 12;
  }
  TLKIT_CHECK_ARG(header_len <= kMaxHeaderBytes, "{}: header length {} is implausibly large",
                  origin, header_len);
  TLKIT_CHECK_ARG(offset + header_len <= size,
                  "{}: truncated .npy header ({} bytes announced, {} "
                  "present)",
                  origin, header_len, size - offset);
  const std::string text(reinterpret_cast<const char*>(data + offset), header_len);
  NpyHeader h = HeaderParser(text, origin).parse();
  const TypeInfo ti = parse_descr(h.descr, origin);
  h.type = ti.type;
  h.itemsize = ti.size;
  h.data_offset = offset + header_len;
  return h;
}

NpyArray::NpyArray(NpyHeader header, std::string origin, std::shared_ptr<std::uint8_t[]> bytes)
    : header_(std::move(header)), origin_(std::move(origin)), bytes_(std::move(bytes)) {}

std::int64_t NpyArray::rows() const { return header_.shape.empty() ? 1 : header_.shape[0]; }
std::int64_t NpyArray::cols() const { return header_.shape.size() >= 2 ? header_.shape[1] : 1; }

FeatureView NpyArray::features() const {
  TLKIT_CHECK_ARG(header_.type == NpyType::kFloat32 || header_.type == NpyType::kFloat64,
                  "{}: features must be float32 or float64, got {} ('{}')", origin_,
                  to_string(header_.type), header_.descr);
  TLKIT_CHECK_ARG(header_.shape.size() == 2,
                  "{}: features must be a 2-D array (N, D), got shape "
                  "{}",
                  origin_, header_.shape_string());
  const std::int64_t n = header_.shape[0], d = header_.shape[1];
  FeatureView v;
  v.data = bytes_.get();
  v.dtype = header_.type == NpyType::kFloat32 ? Real::kFloat32 : Real::kFloat64;
  v.rows = n;
  v.cols = d;
  v.row_stride = header_.fortran_order ? 1 : d;
  v.col_stride = header_.fortran_order ? n : 1;
  return v;
}

std::vector<std::int64_t> NpyArray::labels() const {
  const auto& s = header_.shape;
  TLKIT_CHECK_ARG(s.size() == 1 || (s.size() == 2 && s[1] == 1),
                  "{}: labels must have shape (N,) or (N, 1), got {}{}", origin_,
                  header_.shape_string(),
                  s.size() == 2 ? " (one-hot or multi-label 0/1 columns are a target matrix: give "
                                  "class indices, or score the columns as regression targets "
                                  "with --regression)"
                                : "");
  const std::int64_t n = s[0];
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  const void* p = bytes_.get();
  for (std::int64_t i = 0; i < n; ++i) {
    switch (header_.type) {
      case NpyType::kBool:
        out[i] = static_cast<const std::uint8_t*>(p)[i] != 0;
        break;
      case NpyType::kInt8:
        out[i] = int_at<std::int8_t>(p, i);
        break;
      case NpyType::kInt16:
        out[i] = int_at<std::int16_t>(p, i);
        break;
      case NpyType::kInt32:
        out[i] = int_at<std::int32_t>(p, i);
        break;
      case NpyType::kInt64:
        out[i] = int_at<std::int64_t>(p, i);
        break;
      case NpyType::kUInt8:
        out[i] = int_at<std::uint8_t>(p, i);
        break;
      case NpyType::kUInt16:
        out[i] = int_at<std::uint16_t>(p, i);
        break;
      case NpyType::kUInt32:
        out[i] = int_at<std::uint32_t>(p, i);
        break;
      case NpyType::kUInt64: {
        const std::uint64_t v = static_cast<const std::uint64_t*>(p)[i];
        TLKIT_CHECK_ARG(v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                        "{}: label {} at row {} does not fit in int64", origin_, v, i);
        out[i] = static_cast<std::int64_t>(v);
        break;
      }
      case NpyType::kFloat32:
      case NpyType::kFloat64:
        TLKIT_THROW_ARG(
            "{}: labels have dtype {}; classification needs integer labels (pass "
            "--regression for continuous or multi-label targets)",
            origin_, to_string(header_.type));
    }
  }
  return out;
}

std::vector<double> NpyArray::targets(std::int64_t* k_out) const {
  const auto& s = header_.shape;
  TLKIT_CHECK_ARG(s.size() == 1 || s.size() == 2,
                  "{}: targets must have shape (N,) or (N, K), "
                  "got {}",
                  origin_, header_.shape_string());
  const std::int64_t n = s[0], k = s.size() == 2 ? s[1] : 1;
  std::vector<double> out(static_cast<std::size_t>(n * k));
  const void* p = bytes_.get();
  const bool f = header_.fortran_order && s.size() == 2;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < k; ++c) {
      const std::int64_t src = f ? c * n + i : i * k + c;
      double v = 0.0;
      switch (header_.type) {
        case NpyType::kFloat32:
          v = static_cast<const float*>(p)[src];
          break;
        case NpyType::kFloat64:
          v = static_cast<const double*>(p)[src];
          break;
        case NpyType::kBool:
          v = static_cast<const std::uint8_t*>(p)[src] != 0;
          break;
        case NpyType::kInt8:
          v = static_cast<double>(int_at<std::int8_t>(p, src));
          break;
        case NpyType::kInt16:
          v = static_cast<double>(int_at<std::int16_t>(p, src));
          break;
        case NpyType::kInt32:
          v = static_cast<double>(int_at<std::int32_t>(p, src));
          break;
        case NpyType::kInt64:
          v = static_cast<double>(int_at<std::int64_t>(p, src));
          break;
        case NpyType::kUInt8:
          v = static_cast<double>(int_at<std::uint8_t>(p, src));
          break;
        case NpyType::kUInt16:
          v = static_cast<double>(int_at<std::uint16_t>(p, src));
          break;
        case NpyType::kUInt32:
          v = static_cast<double>(int_at<std::uint32_t>(p, src));
          break;
        case NpyType::kUInt64:
          v = static_cast<double>(static_cast<const std::uint64_t*>(p)[src]);
          break;
      }
      out[static_cast<std::size_t>(i * k + c)] = v;
    }
  *k_out = k;
  return out;
}

NpyArray load_npy_bytes(const std::uint8_t* data, std::size_t size, const std::string& origin) {
  // array_from_image copies the data out, so the caller's buffer needs no alignment.
  return array_from_image(std::vector<std::uint8_t>(data, data + size), origin);
}

NpyArray load_npz_bytes(const std::uint8_t* data, std::size_t size, const std::string& member,
                        const std::string& origin) {
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t* src = zip_source_buffer_create(data, size, 0, &ze);
  if (!src) {
    zip_error_fini(&ze);
    throw std::bad_alloc();
  }
  zip_t* za = zip_open_from_source(src, ZIP_RDONLY, &ze);
  if (!za) {
    zip_source_free(src);
    const int code = zip_error_code_zip(&ze);
    zip_error_fini(&ze);
    throw_zip_open_error(origin, code);
  }
  zip_error_fini(&ze);
  SpecParts parts;
  parts.path = origin;
  parts.member = member;
  parts.npz = true;
  std::string member_origin;
  const std::vector<std::uint8_t> image = read_npz_member(za, parts, &member_origin);
  return array_from_image(image, member_origin);
}

NpyHeader read_npy_header(const std::string& spec) {
  const SpecParts parts = split_spec(spec);
  if (parts.npz) {
    std::string origin;
    const std::vector<std::uint8_t> head =
        read_npz_member(open_npz(parts), parts, &origin, kMaxHeaderBytes + 16);
    NpyHeader h = parse_npy_header(head.data(), head.size(), origin);
    checked_nbytes(h, origin);
    return h;
  }
  Fd fd(parts.path);
  return read_file_header(fd.get(), parts.path);
}

NpyArray load_npy(const std::string& spec) {
  const SpecParts parts = split_spec(spec);
  if (parts.npz) {
    std::string origin;
    const std::vector<std::uint8_t> image = read_npz_member(parts, &origin);
    return array_from_image(image, origin);
  }
  Fd fd(parts.path);
  NpyHeader h = read_file_header(fd.get(), parts.path);
  const std::size_t nbytes = checked_nbytes(h, parts.path);
  auto bytes = allocate(nbytes, parts.path);
  pread_all(fd.get(), bytes.get(), nbytes, h.data_offset, parts.path);
  return NpyArray(std::move(h), parts.path, std::move(bytes));
}

// ---- chunked reader ---------------------------------------------------------------------------
struct NpyRowReader::Impl {
  std::string origin;
  NpyHeader header;
  std::unique_ptr<Fd> fd;  // plain .npy: read chunks from disk
  NpyArray array;          // .npz member: held in memory
  FeatureView whole;
  std::int64_t next_row = 0;
  std::vector<std::uint8_t> buffer;
};

NpyRowReader::NpyRowReader(const std::string& spec) : impl_(std::make_unique<Impl>()) {
  const SpecParts parts = split_spec(spec);
  if (parts.npz) {
    impl_->array = load_npy(spec);
    impl_->header = impl_->array.header();
    impl_->origin = impl_->array.origin();
    impl_->whole = impl_->array.features();
    return;
  }
  impl_->origin = parts.path;
  impl_->fd = std::make_unique<Fd>(parts.path);
  impl_->header = read_file_header(impl_->fd->get(), parts.path);
  const auto& h = impl_->header;
  TLKIT_CHECK_ARG(h.type == NpyType::kFloat32 || h.type == NpyType::kFloat64,
                  "{}: features must be float32 or float64, got {} ('{}')", parts.path,
                  to_string(h.type), h.descr);
  TLKIT_CHECK_ARG(h.shape.size() == 2, "{}: features must be a 2-D array (N, D), got shape {}",
                  parts.path, h.shape_string());
}

NpyRowReader::~NpyRowReader() = default;

const NpyHeader& NpyRowReader::header() const { return impl_->header; }
std::int64_t NpyRowReader::rows() const { return impl_->header.shape[0]; }
std::int64_t NpyRowReader::cols() const { return impl_->header.shape[1]; }

void NpyRowReader::seek(std::int64_t row) {
  TLKIT_CHECK_ARG(row >= 0 && row <= rows(), "{}: row {} out of range [0, {}]", impl_->origin, row,
                  rows());
  impl_->next_row = row;
}

FeatureView NpyRowReader::next(std::int64_t max_rows) {
  TLKIT_CHECK_ARG(max_rows >= 1, "chunk rows must be >= 1, got {}", max_rows);
  Impl& m = *impl_;
  const std::int64_t n = rows(), d = cols();
  const std::int64_t cnt = std::min(max_rows, n - m.next_row);
  if (!m.fd) {
    FeatureView v = m.whole.row_block(m.next_row, std::max<std::int64_t>(cnt, 0));
    m.next_row += std::max<std::int64_t>(cnt, 0);
    return v;
  }
  const std::size_t item = static_cast<std::size_t>(m.header.itemsize);
  m.buffer.resize(static_cast<std::size_t>(std::max<std::int64_t>(cnt, 0) * d) * item + 16);
  FeatureView v;
  v.data = m.buffer.data();
  v.dtype = m.header.type == NpyType::kFloat32 ? Real::kFloat32 : Real::kFloat64;
  v.rows = std::max<std::int64_t>(cnt, 0);
  v.cols = d;
  if (cnt <= 0) {
    v.row_stride = d;
    return v;
  }
  if (!m.header.fortran_order) {
    pread_all(m.fd->get(), m.buffer.data(), static_cast<std::size_t>(cnt * d) * item,
              m.header.data_offset + static_cast<std::uint64_t>(m.next_row * d) * item, m.origin);
    v.row_stride = d;
    v.col_stride = 1;
  } else {
    // Fortran order: each column's slice of this chunk is contiguous on disk.
    for (std::int64_t j = 0; j < d; ++j)
      pread_all(m.fd->get(), m.buffer.data() + static_cast<std::size_t>(j * cnt) * item,
                static_cast<std::size_t>(cnt) * item,
                m.header.data_offset + static_cast<std::uint64_t>(j * n + m.next_row) * item,
                m.origin);
    v.row_stride = 1;
    v.col_stride = cnt;
  }
  m.next_row += cnt;
  return v;
}

// ---- writing -----------------------------------------------------------------------------------
namespace {
// Removes "<path>.tmp.<pid>" files left by writers of `path` that were killed (SIGKILL, a crash,
// a power cut) between creating their temporary and renaming it: those whose pid names no live
// process. A temporary of a live process (another tlkit writing the same file) is left alone, and
// so is anything else; errors are ignored (the stale file only wastes space).
void remove_stale_temporaries(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (d == nullptr) return;
  const pid_t self = ::getpid();
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(digits);
    if (pid <= 0 || pid == self) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or unsure
    ::unlink((dir + name).c_str());
  }
  ::closedir(d);
}
}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  remove_stale_temporaries(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), path + ": cannot create");
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::system_error(e, std::generic_category(), path + ": write failed");
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(e, std::generic_category(), path + ": write failed");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(e, std::generic_category(), path + ": cannot rename into place");
  }
}

namespace {
void save_npy_bytes(const std::string& path, const void* data, const char* descr, int itemsize,
                    const std::vector<std::int64_t>& shape) {
  NpyHeader h;
  h.shape = shape;
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr,
                                 h.shape_string());
  // Pad so that the data starts on a 64-byte boundary, ending the header with '\n'.
  const std::size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>((dict.size() >> 8) & 0xff));
  out += dict;
  const std::size_t nbytes =
      static_cast<std::size_t>(h.count()) * static_cast<std::size_t>(itemsize);
  out.append(static_cast<const char*>(data), nbytes);
  write_file_atomic(path, out);
}
}  // namespace

void save_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape) {
  save_npy_bytes(path, data, "<f4", 4, shape);
}
void save_npy(const std::string& path, const double* data, const std::vector<std::int64_t>& shape) {
  save_npy_bytes(path, data, "<f8", 8, shape);
}
void save_npy(const std::string& path, const std::int64_t* data,
              const std::vector<std::int64_t>& shape) {
  save_npy_bytes(path, data, "<i8", 8, shape);
}

}  // namespace tlkit
