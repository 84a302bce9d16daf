// write_file_atomic / save_npy under a failing disk: a file-size limit (RLIMIT_FSIZE, with SIGXFSZ
// ignored) makes write() fail with EFBIG as a full disk fails with ENOSPC. The call must throw a
// std::system_error naming the file, leave no temporary behind, and keep an existing file intact.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <system_error>

#include "test_support.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;

// Runs `fn` in a child process with a 4 KiB file-size limit; returns its exit code.
template <typename Fn>
int in_child_with_small_disk(Fn fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    std::_Exit(fn());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST(AtomicWrite, AFullDiskThrowsAndLeavesNoTemporaryAndTheOldFileIntact) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  test::write_bytes(path, "old contents");
  const int code = in_child_with_small_disk([&] {
    std::vector<double> big(10000, 1.0);  // 80 KB > 4 KiB
    try {
      save_npy(path, big.data(), {10000});
    } catch (const std::system_error& e) {
      const std::string what = e.what();
      return what.find(path + ": write failed") != std::string::npos &&
                     e.code() == std::errc::file_too_large
                 ? 0
                 : 2;
    } catch (...) {
      return 3;
    }
    return 1;  // no exception
  });
  EXPECT_EQ(code, 0) << "1: no exception, 2: wrong message or errno, 3: wrong exception type";
  EXPECT_EQ(test::read_bytes(path), "old contents");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir.path())) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"out.npy"});
}

TEST(AtomicWrite, AMissingFolderThrowsSystemErrorNamingThePath) {
  test::TempDir dir;
  const std::string path = dir.file("no/such/folder/x.json");
  try {
    write_file_atomic(path, "{}");
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("no/such/folder/x.json")), std::string::npos)
        << e.what();
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
}

// A pid that names no process: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) std::_Exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AtomicWrite, AWriterKilledBeforeItsRenameLeavesATemporaryThatTheNextWriteRemoves) {
  test::TempDir dir;
  const std::string path = dir.file("meta.json");
  test::write_bytes(path, "old");
  // A child that creates its temporary as write_file_atomic names it and is killed (SIGKILL: no
  // handler, no cleanup) before the rename.
  const pid_t pid = ::fork();
  if (pid == 0) {
    test::write_bytes(path + ".tmp." + std::to_string(::getpid()), "half");
    ::raise(SIGKILL);
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  const std::string stale = "meta.json.tmp." + std::to_string(pid);
  ASSERT_EQ(files_in(dir.path()), (std::vector<std::string>{"meta.json", stale}));
  EXPECT_EQ(test::read_bytes(path), "old");  // the target itself was never touched

  // Temporaries the next writer must keep: of a live process (pid 1, and this test's parent),
  // of another target, and names that are not "<target>.tmp.<pid>".
  const std::string live1 = "meta.json.tmp.1",
                    live2 = "meta.json.tmp." + std::to_string(::getppid());
  const std::string other = "other.json.tmp." + std::to_string(dead_pid());
  for (const std::string& keep : {live1, live2, other, std::string("meta.json.tmp.x1"),
                                  std::string("meta.json.tmp."), std::string("meta.json.tmp")})
    test::write_bytes(dir.file(keep), "keep");
  write_file_atomic(path, "new");
  EXPECT_EQ(test::read_bytes(path), "new");
  std::vector<std::string> expected = {
      "meta.json", live1, live2, other, "meta.json.tmp.x1", "meta.json.tmp.", "meta.json.tmp"};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(files_in(dir.path()), expected);  // only the dead writer's temporary went
}

TEST(AtomicWrite, ARelativePathCleansTheCurrentFolder) {
  test::TempDir dir;
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  const std::string stale = "r.csv.tmp." + std::to_string(dead_pid());
  test::write_bytes(stale, "half");
  write_file_atomic("r.csv", "a,b\n");
  fs::current_path(cwd);
  EXPECT_EQ(files_in(dir.path()), std::vector<std::string>{"r.csv"});
}

}  // namespace
}  // namespace tlkit
