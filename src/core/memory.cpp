#include "tlkit/core/memory.h"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cmath>

#include "tlkit/core/error.h"

namespace tlkit {

std::uint64_t parse_memory_size(std::string_view text, std::string_view flag) {
  std::size_t end = 0;
  while (end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  const std::string number(text.substr(0, end));
  std::string unit(text.substr(end));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double value = 0.0;
  const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  for (const auto& [u, s] : {std::pair<char, int>{'K', 10}, {'M', 20}, {'G', 30}, {'T', 40}})
    if (unit == std::string(1, u) || unit == std::string(1, u) + "B" ||
        unit == std::string(1, u) + "IB")
      shift = s;
  const bool ok = !number.empty() && ec == std::errc() && ptr == number.data() + number.size() &&
                  shift >= 0 && std::isfinite(value) && value * std::ldexp(1.0, shift) < 1.8e19;
  TLKIT_CHECK_ARG(ok, "{} {}: expected a size such as 8G, 512M or 1000000 (bytes)", flag, text);
  return static_cast<std::uint64_t>(value * std::ldexp(1.0, shift));
}

std::uint64_t default_memory_limit() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<std::uint64_t>(static_cast<double>(pages) * static_cast<double>(page) * 0.8);
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

}  // namespace tlkit
