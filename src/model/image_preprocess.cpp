// Image decoding (OpenCV) and the Python tool's preprocessing, reproduced byte for byte: Pillow's
// bilinear resampling is reimplemented here (OpenCV's INTER_LINEAR does not antialias when
// shrinking, and INTER_AREA is a different filter; see docs/extract.md for how far they are).
// The only TU of tlkit::model that includes OpenCV.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <system_error>
#if TLKIT_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

#include "tlkit/core/error.h"
#include "tlkit/model/image_dataset.h"

namespace tlkit::model {
namespace {

// Whether a JPEG stream reaches its end-of-image marker: walks the marker segments and, after each
// start-of-scan, the entropy-coded data (where 0xFF is always followed by 0x00, a restart marker
// or fill bytes). A file cut short ends before EOI; libjpeg would decode it with a grey bottom
// and only print "Premature end of JPEG file", so it is refused here (PIL refuses it too).
bool jpeg_reaches_eoi(const std::uint8_t* d, std::size_t n) {
  std::size_t p = 2;  // after SOI
  while (p + 1 < n) {
    if (d[p] != 0xFF) {  // extraneous bytes before a marker: libjpeg skips them with a warning
      ++p;
      continue;
    }
    while (p + 1 < n && d[p + 1] == 0xFF) ++p;  // fill bytes
    if (p + 1 >= n) return false;
    const std::uint8_t marker = d[p + 1];
    p += 2;
    if (marker == 0xD9) return true;
    if (marker == 0x01 || marker == 0x00 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    if (p + 2 > n) return false;
    const std::size_t len = (std::size_t{d[p]} << 8) | d[p + 1];
    if (len < 2) return false;
    p += len;
    if (marker == 0xDA) {  // start of scan: skip the entropy-coded segment
      while (p + 1 < n) {
        if (d[p] == 0xFF && d[p + 1] != 0x00 && d[p + 1] != 0xFF &&
            !(d[p + 1] >= 0xD0 && d[p + 1] <= 0xD7))
          break;
        ++p;
      }
    }
  }
  return false;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// What is wrong with a PNG stream's chunk structure (empty when nothing): every chunk (length,
// type, data, CRC-32) must be complete and intact up to IEND. libpng would report these itself,
// but prints "libpng error: ..." on stderr first; PIL refuses them too.
std::string png_problem(const std::uint8_t* d, std::size_t n) {
  std::size_t p = 8;  // after the signature
  for (;;) {
    if (n - p < 12) return "truncated PNG (the data ends before the IEND chunk)";
    const std::uint32_t len = be32(d + p);
    const std::string type(reinterpret_cast<const char*>(d + p + 4), 4);
    if (len > 0x7FFFFFFFu) return fmt::format("corrupt PNG (chunk length {})", len);
    if (n - p - 12 < len) return "truncated PNG (the data ends before the IEND chunk)";
    if (crc32(d + p + 4, len + 4) != be32(d + p + 8 + len))
      return fmt::format("corrupt PNG (CRC error in a {} chunk)", type);
    if (type == "IEND") return {};
    p += 12 + len;
  }
}

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's Resample.c

struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds;  // per output pixel: first input pixel, number of input pixels
  std::vector<std::int32_t> kk;
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter on the
// box [0, in_size): the support grows with the shrink factor, which is what antialiases.
Coefficients precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * static_cast<std::size_t>(out_size));
  c.kk.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(static_cast<std::size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double t = std::abs((x + xmin - center + 0.5) * ss);
      k[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? k[x] / ww : k[x];
      c.kk[static_cast<std::size_t>(xx) * c.ksize + x] = static_cast<std::int32_t>(
          v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline std::uint8_t clip8(std::int32_t v) {
  if (v <= 0) return 0;
  if (v >= (256 << kPrecisionBits)) return 255;
  return static_cast<std::uint8_t>(v >> kPrecisionBits);
}

RgbImage resample_horizontal(const RgbImage& in, int out_w) {
  const Coefficients c = precompute(in.width, out_w);
  RgbImage out;
  out.width = out_w;
  out.height = in.height;
  out.pixels.resize(static_cast<std::size_t>(out_w) * in.height * 3);
  for (int y = 0; y < in.height; ++y) {
    const std::uint8_t* row = in.pixels.data() + static_cast<std::size_t>(y) * in.width * 3;
    std::uint8_t* dst = out.pixels.data() + static_cast<std::size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[2 * xx], xcount = c.bounds[2 * xx + 1];
      const std::int32_t* k = c.kk.data() + static_cast<std::size_t>(xx) * c.ksize;
      std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < xcount; ++x) {
        const std::uint8_t* px = row + static_cast<std::size_t>(x + xmin) * 3;
        s0 += px[0] * k[x];
        s1 += px[1] * k[x];
        s2 += px[2] * k[x];
      }
      dst[3 * xx] = clip8(s0);
      dst[3 * xx + 1] = clip8(s1);
      dst[3 * xx + 2] = clip8(s2);
    }
  }
  return out;
}

RgbImage resample_vertical(const RgbImage& in, int out_h) {
  const Coefficients c = precompute(in.height, out_h);
  RgbImage out;
  out.width = in.width;
  out.height = out_h;
  const std::size_t stride = static_cast<std::size_t>(in.width) * 3;
  out.pixels.resize(stride * out_h);
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[2 * yy], ycount = c.bounds[2 * yy + 1];
    const std::int32_t* k = c.kk.data() + static_cast<std::size_t>(yy) * c.ksize;
    std::uint8_t* dst = out.pixels.data() + static_cast<std::size_t>(yy) * stride;
    for (std::size_t i = 0; i < stride; ++i) {
      std::int32_t s = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ycount; ++y) s += in.pixels[(ymin + y) * stride + i] * k[y];
      dst[i] = clip8(s);
    }
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) TLKIT_THROW_ARG("{}: cannot open the image: {}", path, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) TLKIT_THROW_ARG("{}: read error", path);
  return bytes;
}

}  // namespace

RgbImage decode_image(const std::string& path) {
  const std::string bytes = read_file(path);
  TLKIT_CHECK_ARG(!bytes.empty(), "{}: empty file, not an image", path);
  const auto* d = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const bool jpeg = bytes.size() >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
  TLKIT_CHECK_ARG(!jpeg || jpeg_reaches_eoi(d, bytes.size()),
                  "{}: truncated JPEG (the data ends before the end-of-image marker)", path);
  static const std::uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 8 && std::memcmp(d, kPngSignature, 8) == 0) {
    const std::string problem = png_problem(d, bytes.size());
    TLKIT_CHECK_ARG(problem.empty(), "{}: {}", path, problem);
  }
#if !TLKIT_HAVE_OPENCV
  // An environment limit, not a bad image: the run stops (exit code 1, "tlkit: error: ...")
  // instead of skipping the image.
  throw std::system_error(
      std::make_error_code(std::errc::not_supported),
      fmt::format("{}: cannot decode images: this tlkit was built without OpenCV "
                  "(TLKIT_WITH_OPENCV=OFF; docs/gpu-models.md)",
                  path));
#else
  cv::Mat bgr;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    bgr = cv::imdecode(raw, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    TLKIT_THROW_ARG("{}: cannot decode the image: {}", path, e.err);
  }
  TLKIT_CHECK_ARG(!bgr.empty(), "{}: cannot decode the image ({})", path,
                  jpeg ? "corrupt JPEG data" : "not a JPEG or PNG, or corrupt");
  TLKIT_ASSERT(bgr.type() == CV_8UC3);
  RgbImage out;
  out.width = bgr.cols;
  out.height = bgr.rows;
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  for (int y = 0; y < bgr.rows; ++y) {
    const std::uint8_t* src = bgr.ptr<std::uint8_t>(y);
    std::uint8_t* dst = out.pixels.data() + static_cast<std::size_t>(y) * out.width * 3;
    for (int x = 0; x < out.width; ++x) {
      dst[3 * x] = src[3 * x + 2];
      dst[3 * x + 1] = src[3 * x + 1];
      dst[3 * x + 2] = src[3 * x];
    }
  }
  return out;
#endif
}

RgbImage resize_bilinear_pil(const RgbImage& image, int width, int height) {
  TLKIT_CHECK_ARG(width > 0 && height > 0, "resize to {}x{}: sizes must be positive", width,
                  height);
  TLKIT_CHECK_ARG(image.width > 0 && image.height > 0, "resize of an empty {}x{} image",
                  image.width, image.height);
  // Pillow: horizontal pass first, each pass only when that size changes.
  if (width != image.width) {
    RgbImage h = resample_horizontal(image, width);
    return height != image.height ? resample_vertical(h, height) : h;
  }
  return height != image.height ? resample_vertical(image, height) : image;
}

void preprocess_rgb(const RgbImage& image, int size, float* chw) {
  TLKIT_CHECK_ARG(size > 0, "input size must be positive, got {}", size);
  const int w = image.width, h = image.height;
  int nw = size, nh = size;
  // Python: max(1, int(round(h * size / w))); round() is half-to-even, as std::nearbyint.
  if (w <= h)
    nh = std::max(1, static_cast<int>(std::nearbyint(static_cast<double>(h) * size / w)));
  else
    nw = std::max(1, static_cast<int>(std::nearbyint(static_cast<double>(w) * size / h)));
  const RgbImage r = resize_bilinear_pil(image, nw, nh);
  // PIL's crop outside the image pads with zeros; only possible here when nh or nw < size.
  const int left = (nw - size) / 2, top = (nh - size) / 2;
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const int sy = y + top, sx = x + left;
      const bool inside = sy >= 0 && sy < r.height && sx >= 0 && sx < r.width;
      const std::uint8_t* px =
          inside ? r.pixels.data() + (static_cast<std::size_t>(sy) * r.width + sx) * 3 : nullptr;
      for (int c = 0; c < 3; ++c)
        chw[c * plane + static_cast<std::size_t>(y) * size + x] =
            inside ? static_cast<float>(px[c]) / 255.0f : 0.0f;
    }
  }
}

void load_image(const std::string& path, int size, float* chw) {
  preprocess_rgb(decode_image(path), size, chw);
}

}  // namespace tlkit::model
