#include "world.h"

namespace tlkit::cli {

namespace {
Communicator* g_world = nullptr;
}

Communicator& world() { return g_world ? *g_world : single_process(); }
void set_world(Communicator& comm) { g_world = &comm; }

}  // namespace tlkit::cli
