// Running the tlkit executable from tests (TLKIT_CLI is its path, set by tests/CMakeLists.txt).
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "test_support.h"

namespace tlkit::test {

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `tlkit <args>` (args shell-quoted by the caller), capturing stdout, stderr and the exit
/// code.
inline CliRun run_cli(const std::string& args) {
  TempDir dir;
  const std::string err_file = dir.file("stderr");
  const std::string cmd = std::string(TLKIT_CLI) + " " + args + " 2>" + err_file;
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  std::size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), got);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_bytes(err_file);
  return r;
}

/// Number of lines (newline characters) in `s`.
inline int count_lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

/// The CLI's error contract for a bad input or option: exit code 2, nothing on stdout, and one
/// line on stderr, "tlkit: error: ...", containing `needle`.
inline void expect_usage_error(const std::string& args, const std::string& needle) {
  const CliRun r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(r.out, "") << args;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("tlkit: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.err;
}

/// Starts `tlkit <args>` without waiting, stdout and stderr to files (e.g. to send it SIGINT);
/// returns its pid for waitpid.
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::string& out_file,
                       const std::string& err_file) {
  std::vector<std::string> all = {TLKIT_CLI};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

}  // namespace tlkit::test
