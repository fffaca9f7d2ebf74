#include "audit/tools/file_order.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>

#include "audit/line_reader.hpp"
#include "audit/log_files.hpp"

namespace pgwarden::audit {
namespace {

namespace fs = std::filesystem;

bool audit_file_name(const std::string& name) { return name.ends_with(".jsonl") || name.ends_with(".jsonl.gz"); }

/// The seq of the first record of `path`; files without one sort last.
std::uint64_t first_seq(const std::string& path) {
  LineReader reader;
  std::string error;
  std::string_view line;
  bool terminated = false;
  ChainHead head;
  if (reader.open(path, error) && reader.next(line, terminated) && read_record_head(line, head)) return head.seq;
  return std::numeric_limits<std::uint64_t>::max();
}

bool expand(const std::string& argument, std::vector<std::string>& files, std::string& error) {
  std::error_code ec;
  if (!fs::is_directory(argument, ec)) {
    if (!fs::exists(argument, ec)) {
      error = argument + ": no such file or directory";
      return false;
    }
    files.push_back(argument);
    return true;
  }
  const std::size_t before = files.size();
  for (fs::directory_iterator it(argument, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && audit_file_name(it->path().filename().string())) files.push_back(it->path().string());
  if (files.size() == before) {
    error = argument + ": no *.jsonl or *.jsonl.gz files";
    return false;
  }
  return true;
}

}  // namespace

bool order_audit_files(const std::vector<std::string>& arguments, std::vector<std::string>& files,
                       std::string& error) {
  files.clear();
  for (const auto& a : arguments)
    if (!expand(a, files, error)) return false;
  std::vector<std::pair<std::uint64_t, std::string>> keyed;
  for (auto& f : files) keyed.emplace_back(first_seq(f), std::move(f));
  std::stable_sort(keyed.begin(), keyed.end());  // ties (no record): by name
  files.clear();
  for (auto& [seq, f] : keyed) files.push_back(std::move(f));
  return true;
}

}  // namespace pgwarden::audit
