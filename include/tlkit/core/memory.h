// Memory limits for loading whole arrays: a size parser for --max-memory and the default limit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tlkit {

/// Parses a memory size: a non-negative decimal number with an optional binary unit K, M, G or T
/// (powers of 1024; "KB"/"KiB" and lower case are accepted), e.g. "8G", "1.5g", "512MiB",
/// "1000000" (bytes). Throws tlkit::InputError naming `flag` and `text` otherwise.
std::uint64_t parse_memory_size(std::string_view text, std::string_view flag);

/// The default limit: 80% of the machine's physical memory (sysconf), or 0 (no limit) when it
/// cannot be read.
std::uint64_t default_memory_limit();

/// `bytes` for people: "512 B", "3.2 KiB", "1.5 GiB", ...
std::string format_bytes(std::uint64_t bytes);

}  // namespace tlkit
