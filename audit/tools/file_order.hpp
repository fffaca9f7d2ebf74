#pragma once
/// The files verify and search read: arguments may name files (plain or
/// .gz) or directories (their *.jsonl and *.jsonl.gz files), in any order;
/// they are read in chain order, by the seq of each file's first record.

#include <string>
#include <vector>

namespace pgwarden::audit {

/// Expands and orders `arguments` into `files`; false with `error` set when
/// an argument does not exist or a directory holds no audit file.
bool order_audit_files(const std::vector<std::string>& arguments, std::vector<std::string>& files,
                       std::string& error);

}  // namespace pgwarden::audit
