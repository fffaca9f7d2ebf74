#pragma once
/// `pgwarden people hash`: reads a person's password on standard input and
/// prints the SCRAM-SHA-256 secret to put in the people file, so that no
/// plaintext password is ever written there.

#include <istream>
#include <ostream>

namespace pgwarden::commands {

/// Reads one line from `in` (the password; the line end is not part of it)
/// and prints its secret with `iterations` to `out`. Errors go to `err`.
/// Returns the exit code: 0 on success, 1 for an unusable password.
int run_people_hash(int iterations, std::istream& in, std::ostream& out, std::ostream& err);

/// The same on the process's standard streams; when standard input is a
/// terminal it prompts on standard error and does not echo the password.
int run_people_hash(int iterations);

}  // namespace pgwarden::commands
