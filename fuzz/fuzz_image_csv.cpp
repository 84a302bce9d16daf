// libFuzzer target: tlkit::fuzz::image_csv (fuzz/entries_image.h).
#include "entries_image.h"
#include "fuzz_target.h"

TLKIT_FUZZ_TARGET(tlkit::fuzz::image_csv)
