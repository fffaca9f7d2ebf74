#pragma once
/// Typed, position-aware access to a yaml-cpp tree that records every problem
/// as a Diagnostic instead of stopping at the first. For config/ and the
/// YAML files auth/ reads (the people file).

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace pgwarden::config {

/// The closest of `candidates` to `word` within a small edit distance, or "".
std::string_view closest_match(std::string_view word, const std::vector<std::string_view>& candidates);

/// Collects diagnostics while reading one configuration file.
class Reader {
 public:
  using Handler = std::function<void(const YAML::Node& value)>;
  /// A key a mapping may have and what to do with its value.
  struct Key {
    std::string_view name;
    Handler handle;
    bool required = false;
  };

  Reader(std::string file, std::filesystem::path base_dir);

  void error(const YAML::Mark& at, std::string message);
  void error(const YAML::Node& at, std::string message) { error(at.Mark(), std::move(message)); }
  void warning(const YAML::Mark& at, std::string message);
  void warning(const YAML::Node& at, std::string message) { warning(at.Mark(), std::move(message)); }

  /// Dispatches each key of mapping `node` (`what` names it in messages) to
  /// its handler; reports non-mappings, unknown keys (with a suggestion),
  /// duplicate keys and missing required keys. A null node is an empty map.
  void read_map(const YAML::Node& node, std::string_view what, std::initializer_list<Key> keys) {
    read_map(node, what, std::span<const Key>(keys.begin(), keys.size()));
  }
  /// The same, for keys assembled at run time.
  void read_map(const YAML::Node& node, std::string_view what, std::span<const Key> keys);

  std::optional<std::string> string(const YAML::Node& node, std::string_view what);
  std::optional<bool> boolean(const YAML::Node& node, std::string_view what);
  std::optional<std::uint64_t> unsigned_int(const YAML::Node& node, std::string_view what, std::uint64_t max);
  std::optional<Duration> duration(const YAML::Node& node, std::string_view what);
  std::optional<std::uint64_t> size(const YAML::Node& node, std::string_view what);
  std::optional<Endpoint> endpoint(const YAML::Node& node, std::string_view what);
  /// The elements of a sequence, or the node itself when it is a scalar.
  std::vector<YAML::Node> list(const YAML::Node& node, std::string_view what);
  /// Strings of list(); bad elements are reported and skipped.
  std::vector<std::pair<std::string, YAML::Node>> strings(const YAML::Node& node, std::string_view what);

  /// One of `names` (case-insensitive); the index into `names`.
  std::optional<std::size_t> one_of(const YAML::Node& node, std::string_view what,
                                    const std::vector<std::string_view>& names);
  template <class E>
  void assign_enum(const YAML::Node& node, std::string_view what, const std::vector<std::string_view>& names,
                   E& out) {
    if (auto i = one_of(node, what, names)) out = static_cast<E>(*i);
  }

  /// `path` made absolute against the configuration file's directory.
  std::string resolve_path(const std::string& path) const;
  /// A path value, resolved; with `must_exist`, a missing file is an error.
  std::optional<std::string> file_path(const YAML::Node& node, std::string_view what, bool must_exist);

  std::vector<Diagnostic>& errors() { return errors_; }
  std::vector<Diagnostic>& warnings() { return warnings_; }

 private:
  Diagnostic at(const YAML::Mark& mark, std::string message) const;

  std::string file_;
  std::filesystem::path base_dir_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
};

/// Assigns `value` to `out` when present.
template <class T, class U>
void assign(T& out, const std::optional<U>& value) {
  if (value) out = static_cast<T>(*value);
}

}  // namespace pgwarden::config
