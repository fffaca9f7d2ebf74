// One owner per audit directory: the lock is exclusive, names its holder's
// pid to whoever is refused, is given back when its holder lets go, and
// creates the directory it locks.

#include <gtest/gtest.h>

#include <unistd.h>

#include <string>

#include "audit/directory_lock.hpp"
#include "audit_test_util.hpp"

namespace pgwarden::audit {
namespace {

using namespace testing;

// A second owner is refused while the first holds the lock, with a message
// naming the first's pid and the lock file; once the first lets go, the
// next one gets it.
TEST(DirectoryLock, IsExclusiveAndNamesItsHolder) {
  TempDir dir;
  const std::string file = dir.file("audit/pgwarden.jsonl");
  std::string error;
  auto first = DirectoryLock::acquire(file, error);
  ASSERT_TRUE(first) << error;
  EXPECT_TRUE(fs::is_directory(dir.path() / "audit"));
  EXPECT_EQ(read_file(dir.path() / "audit" / "pgwarden.lock"), std::to_string(::getpid()) + "\n");

  EXPECT_FALSE(DirectoryLock::acquire(file, error));
  EXPECT_NE(error.find("in use by another pgwarden (pid " + std::to_string(::getpid()) + ", lock "),
            std::string::npos)
      << error;

  first.reset();
  error.clear();
  EXPECT_TRUE(DirectoryLock::acquire(file, error)) << error;
}

// What a killed owner leaves behind (the file with a pid that is not
// running) is only text: it does not keep anyone from taking the lock.
TEST(DirectoryLock, AStaleLockFileDoesNotBlock) {
  TempDir dir;
  fs::create_directories(dir.path() / "audit");
  write_file(dir.path() / "audit" / "pgwarden.lock", "999999\n");
  std::string error;
  auto lock = DirectoryLock::acquire(dir.file("audit/pgwarden.jsonl"), error);
  ASSERT_TRUE(lock) << error;
  EXPECT_EQ(read_file(dir.path() / "audit" / "pgwarden.lock"), std::to_string(::getpid()) + "\n");
}

}  // namespace
}  // namespace pgwarden::audit
