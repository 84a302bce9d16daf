// Labelled image datasets for feature extraction: listing, deterministic subsampling and the
// preprocessing that turns an image file into a model input.
//
// Listing (torchvision's ImageFolder rule, as tools/extract_features_py.py):
//   * a folder of class sub-folders, ROOT/<class>/<file>, or ROOT/<split>/<class>/<file> with a
//     split; classes are the sorted sub-folder names (byte order), numbered 0..C-1; the files of a
//     class are those whose name ends in .jpg, .jpeg or .png (any case), sorted;
//   * or a CSV file of "path,label" rows (an optional header "path,label"; RFC 4180 quoting; paths
//     relative to the CSV's folder unless absolute). Labels that are all integers are used as
//     they are; otherwise they are class names, numbered in sorted order like folders.
//
// Subsampling (--per-class K, --limit N, --seed S) follows the Python tool's rule with a generator
// that C++ can reproduce (NumPy's cannot be): one std::mt19937_64 seeded with S; for each label in
// ascending order, the class's samples sorted by name are shuffled by Fisher-Yates (for i = m-1
// down to 1, swap i with j = uniform(i + 1)) and the first K kept; then, when N is smaller than
// what is left, the rows left (in listing order) are shuffled the same way and the first N kept.
// uniform(b) draws r = rng() until r >= (2^64 - b) mod b and returns r mod b (no modulo bias).
// The rows kept stay in listing order. Without subsampling the listing equals the Python tool's.
//
// Preprocessing (the Python tool's PIL pipeline, reproduced): decode with OpenCV (EXIF orientation
// ignored, as PIL does), convert to RGB (grayscale replicated, alpha dropped, palettes expanded),
// resize the shorter side to S with Pillow's bilinear filter (antialiased when shrinking, 8-bit
// fixed point, reimplemented here so that the result is the same bytes as PIL's), centre-crop
// S x S, float32 in [0, 1] (x / 255), CHW.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tlkit::model {

/// What a dataset's labels are: class labels (one per sample), real-valued regression targets
/// (one or several per sample), or multi-label targets (several 0/1 columns per sample).
enum class Task { kClassification, kRegression, kMultiLabel };
/// "classification", "regression" or "multilabel"; throws tlkit::InputError otherwise.
Task parse_task(const std::string& s);
const char* to_string(Task task);

struct ImageSample {
  std::string path;  ///< the file to read (empty for a text sample)
  std::string name;  ///< as written to files.txt: "<split>/<class>/<file>", or the CSV's path;
                     ///< for a text sample its line (or CSV row) number, zero-padded to 9 digits
  std::int64_t label = 0;
  std::string text;  ///< a text sample's text (text datasets, text_dataset.h); empty for images
  std::vector<double> targets{};  ///< regression or multi-label targets (label is then 0)
};

struct ImageListing {
  std::string source;  ///< the folder or CSV file listed
  std::string split;   ///< the split sub-folder, or empty
  std::string format;  ///< "folder" or "csv" (images); "lines" or "text-csv" (text_dataset.h)
  std::vector<std::string> classes;  ///< names of labels 0..C-1; empty for integer CSV labels
  Task task = Task::kClassification;
  std::vector<std::string> target_names;  ///< the target columns (regression and multi-label)
  std::vector<ImageSample> samples;
  std::vector<std::string> notes;  ///< warnings for people (an empty class, ...)
};

/// Lists `data`: a CSV file, or a folder of class sub-folders (under `split` when not empty).
/// A class folder's images are all files below it, sub-folders included, with an image
/// extension; other files are skipped with a note saying how many of each extension. A CSV file
/// has path,label rows and an optional header naming the two columns in either order.
/// Throws tlkit::InputError naming the path when it cannot be listed or holds no image.
ImageListing list_images(const std::string& data, const std::string& split = "");
ImageListing list_image_folder(const std::string& root, const std::string& split = "");
ImageListing list_image_csv(const std::string& csv_path);

/// Labels of a CSV or text dataset from their text: when all are integers, those integers (they
/// need not be contiguous) and no class names; otherwise the class names in sorted (byte) order in
/// `classes` and each label's index among them. Labels that are all numbers, some of them not
/// integers ("0.37"), are refused (tlkit::InputError naming `origin` and the line, from `lines`
/// when given, else the 1-based index): they are real-valued targets, not classes.
std::vector<std::int64_t> label_values(const std::vector<std::string>& raw,
                                       std::vector<std::string>* classes,
                                       const std::string& origin = "labels",
                                       const std::vector<std::size_t>& lines = {});

/// The file extensions of images in a folder dataset (lower case, with the dot): torchvision's
/// ImageFolder's, all decoded by OpenCV.
const std::vector<std::string>& image_extensions();
/// Whether a file name has one of image_extensions() (any case).
bool is_image_file_name(const std::string& name);

struct SubsampleOptions {
  std::int64_t per_class = 0;  ///< at most K samples per label (0: all)
  std::int64_t limit = 0;      ///< at most N samples in all (0: all)
  std::uint64_t seed = 0;
};

/// The deterministic subsample described above (the listing itself when both limits are 0).
/// Per-class sampling needs class labels: a regression or multi-label listing takes --limit only.
ImageListing subsample(const ImageListing& listing, const SubsampleOptions& options);

/// The listing as files.txt holds it: "<name>\t<label>\n" per sample, or with targets
/// "<name>\t<target 1>\t<target 2>...\n" (shortest round-trip decimal form).
std::string listing_text(const std::vector<ImageSample>& samples);
/// The samples' targets as an N x T row-major matrix (T = targets per sample; empty when the
/// samples have none).
std::vector<double> target_matrix(const std::vector<ImageSample>& samples);
/// SHA-256 (hex) of listing_text, the same as `sha256sum files.txt`, for images; for text
/// samples the texts themselves are hashed too (SHA-256 of listing_text followed by each text
/// as "<bytes>:<text>").
std::string listing_sha256(const std::vector<ImageSample>& samples);
/// SHA-256 (hex) of a file's bytes. Throws tlkit::InputError when it cannot be read.
std::string file_sha256(const std::string& path);

/// An 8-bit RGB image, rows of width * 3 bytes.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;
};

/// Decodes a JPEG or PNG file (any format OpenCV reads) to RGB. Throws tlkit::InputError naming
/// the path when the file cannot be read, is not an image, or is a truncated JPEG (no end-of-image
/// marker: libjpeg would fill the missing part with grey and only print a warning).
RgbImage decode_image(const std::string& path);

/// Pillow's Image.resize(..., BILINEAR) of an RGB image, byte for byte.
RgbImage resize_bilinear_pil(const RgbImage& image, int width, int height);

/// Resizes the shorter side of `image` to `size` (the longer side by round-half-even, at least 1),
/// centre-crops size x size and writes 3 * size * size floats x / 255 in CHW order to `chw`.
void preprocess_rgb(const RgbImage& image, int size, float* chw);

/// decode_image + preprocess_rgb.
void load_image(const std::string& path, int size, float* chw);

}  // namespace tlkit::model
