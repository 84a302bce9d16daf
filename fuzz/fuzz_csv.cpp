// libFuzzer target: tlkit::fuzz::csv (fuzz/entries.h).
#include "entries.h"
#include "fuzz_target.h"

TLKIT_FUZZ_TARGET(tlkit::fuzz::csv)
