// libFuzzer target: tlkit::fuzz::text_dataset (fuzz/entries_model.h).
#include "entries_model.h"
#include "fuzz_target.h"

TLKIT_FUZZ_TARGET(tlkit::fuzz::text_dataset)
