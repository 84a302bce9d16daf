// libFuzzer target: tlkit::fuzz::npy_rows (fuzz/entries.h).
#include "entries.h"
#include "fuzz_target.h"

TLKIT_FUZZ_TARGET(tlkit::fuzz::npy_rows)
