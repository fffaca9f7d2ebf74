#pragma once
/// `pgwarden audit search`: the records of audit files that match a filter,
/// as a readable table or as JSON Lines. A statement logged before it ran
/// (synced durability: `result_follows`) is shown joined with its later
/// statement.result, so every statement reads as one row either way.

#include <iosfwd>
#include <string>
#include <vector>

namespace pgwarden::audit {

struct SearchRequest {
  std::vector<std::string> files;  ///< files or directories, any order, plain or .gz
  std::string user;     ///< the database role
  std::string person;   ///< who logged in (a certificate, token or people file names them)
  std::string database;
  std::string client;   ///< an address or a CIDR block
  std::string since;    ///< RFC 3339 or YYYY-MM-DD (UTC unless an offset is given); at or after
  std::string until;    ///< at or before
  std::string decision; ///< allow | deny
  std::string class_name;  ///< READ, WRITE, ... (any case)
  std::string command;  ///< a command tag, `*` matches any run ("DROP *")
  std::string rule;
  std::string session;
  std::string event;    ///< an event name, `*` allowed ("auth.*"); checkpoints only when asked for
  std::string format = "table";  ///< table | jsonl
};

/// Prints the matching records to `out`; returns the exit code: 0 (also when
/// nothing matched), 1 when a file could not be read, 2 for bad arguments.
int run_search(const SearchRequest& request, std::ostream& out, std::ostream& err);

}  // namespace pgwarden::audit
