// libFuzzer target: tlkit::fuzz::zoo_manifest (fuzz/entries_model.h).
#include "entries_model.h"
#include "fuzz_target.h"

TLKIT_FUZZ_TARGET(tlkit::fuzz::zoo_manifest)
