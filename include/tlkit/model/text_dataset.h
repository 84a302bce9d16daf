// Labelled text datasets for text models (forward(List[str]) -> (features, ...)), and the one
// entry point that lists any dataset tlkit extracts from.
//
// Text formats:
//   * "lines": one sample per line, "<label> <text>" (the label is the first whitespace-separated
//     token; the rest of the line, without the line break, is the text), as the SST/TREC/MR files
//     of ../shared/kit/data/text-classification. Blank lines are skipped.
//   * "text-csv": a CSV file (tlkit/core/csv.h dialect) with the columns "text" and "label" (any
//     order, other columns ignored).
// Labels that are all integers are used as they are; otherwise they are class names numbered in
// sorted (byte) order, as for image CSVs. Texts are passed to the model as bytes, unchanged (the
// kit files are UTF-8 or Latin-1; the models' tokenizers are byte-based). A sample's name is its
// 1-based line (or CSV line) number, zero-padded to 9 digits, so that names sort in file order
// and subsample() (image_dataset.h) applies unchanged.
#pragma once

#include <string>

#include "tlkit/model/image_dataset.h"

namespace tlkit::model {

/// Lists a text dataset: a .csv file with text,label columns, or any other file as label<space>text
/// lines. Throws tlkit::InputError naming the file and line for a line without text, an empty
/// file, or a CSV without the columns.
ImageListing list_texts(const std::string& path);

/// The same from the file's bytes (`csv`: as a text,label CSV; otherwise as label<space>text
/// lines); `path` names the input in messages. The entry point of fuzz/fuzz_text.cpp.
ImageListing parse_texts(const std::string& bytes, const std::string& path, bool csv);

/// True for the listing formats of text datasets ("lines", "text-csv").
bool is_text_listing(const ImageListing& listing);

/// What a dataset path holds, decided without reading the images:
///   a folder -> images (class sub-folders, under `split` when given);
///   a .csv file whose header has a "text" column -> text; any other .csv -> images (path,label);
///   any other file -> text lines.
enum class DataKind { kImage, kText };
DataKind detect_data_kind(const std::string& data);
const char* to_string(DataKind kind);

/// Lists `data` by its kind (list_images or list_texts). A split with a text file is an error.
/// With a regression or multi-label `task` the data must be a CSV listing with a header: the
/// sample column (images: path, file, filename or image; text: text) and one or more target
/// columns (every other named column; multi-label values 0 or 1), list_target_csv.
ImageListing list_dataset(const std::string& data, const std::string& split = "",
                          Task task = Task::kClassification);

/// A CSV listing of samples with real-valued (regression) or 0/1 (multi-label) targets, as
/// list_dataset describes. Throws tlkit::InputError naming the file, line, column and value.
ImageListing list_target_csv(const std::string& path, DataKind kind, Task task);

}  // namespace tlkit::model
