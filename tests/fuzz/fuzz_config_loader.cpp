// libFuzzer target: the configuration loader on arbitrary YAML text, through
// load_config_string (what `pgwarden check`, startup and SIGHUP reach
// through load_config_file). Input: the YAML text.
//
// Invariants: nothing crashes and no exception escapes. The result is a
// configuration with no error, or no configuration and at least one error.
// Every diagnostic names the file it was given and has a line and column
// (both 1-based, the line within the text) unless it speaks of the text as a whole,
// which only happens when the text holds no document (a null root); a
// loaded configuration listens somewhere.

#include <cstddef>
#include <cstdint>
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/config.hpp"
#include "fuzz_common.hpp"

namespace cf = pgwarden::config;
namespace fz = pgwarden::protocol::fuzz;

namespace {

constexpr const char* name = "/nonexistent/pgwarden-fuzz/pgwarden.yaml";

/// True when the YAML text parses to nothing (an empty or null document).
bool null_document(const std::string& text) {
  try {
    return YAML::Load(text).IsNull();
  } catch (const YAML::Exception&) {
    return false;
  }
}

void check_diagnostics(const std::vector<cf::Diagnostic>& diagnostics, const std::string& text) {
  for (const cf::Diagnostic& d : diagnostics) {
    fz::check(d.file == name, "a diagnostic names another file");
    fz::check(!d.message.empty(), "a diagnostic without a message");
    if (d.line == 0) {
      fz::check(d.column == 0, "a column without a line");
      fz::check(null_document(text), "a diagnostic without a line in a document that has nodes");
      continue;
    }
    // yaml-cpp may point a column or two past the end of the text (its
    // scanner looks ahead), so only lines are bounded by the text.
    fz::check(d.line >= 1 && static_cast<std::size_t>(d.line) <= text.size() + 1, "a line outside the text");
    fz::check(d.column >= 1, "a line without a column");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cf::LoadResult result;
  try {
    result = cf::load_config_string(text, name);
  } catch (...) {
    fz::fail("an exception escaped the loader");
  }
  fz::check(result.ok() == result.errors.empty(), "a configuration with errors, or none without");
  check_diagnostics(result.errors, text);
  check_diagnostics(result.warnings, text);
  if (result.ok()) fz::check(!result.config->listen.empty(), "a configuration that listens nowhere");
  return 0;
}
