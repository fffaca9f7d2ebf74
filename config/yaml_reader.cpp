#include "config/yaml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "config/units.hpp"

namespace pgwarden::config {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string_view kind(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsNull()) return "nothing";
  return "a scalar";
}

}  // namespace

std::string_view closest_match(std::string_view word, const std::vector<std::string_view>& candidates) {
  const std::string w = lower(word);
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, w.size() / 3) + 1;
  for (auto c : candidates) {
    std::size_t d = edit_distance(w, lower(c));
    if (c.size() > 3 && (c.find(w) != std::string_view::npos || w.find(lower(c)) != std::string::npos)) d = 1;
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

Reader::Reader(std::string file, std::filesystem::path base_dir)
    : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

Diagnostic Reader::at(const YAML::Mark& mark, std::string message) const {
  const bool known = mark.line >= 0;
  return Diagnostic{file_, known ? mark.line + 1 : 0, known ? mark.column + 1 : 0, std::move(message)};
}

void Reader::error(const YAML::Mark& where, std::string message) { errors_.push_back(at(where, std::move(message))); }
void Reader::warning(const YAML::Mark& where, std::string message) {
  warnings_.push_back(at(where, std::move(message)));
}

void Reader::read_map(const YAML::Node& node, std::string_view what, std::span<const Key> keys) {
  if (!node.IsNull() && !node.IsMap()) {
    error(node, std::string(what) + ": expected a mapping, got " + std::string(kind(node)));
    return;
  }
  std::set<std::string, std::less<>> seen;
  std::vector<std::string_view> names;
  for (const auto& k : keys) names.push_back(k.name);
  for (auto it = node.begin(); !node.IsNull() && it != node.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: it-> yields a temporary proxy
    const std::string name = key.IsScalar() ? key.Scalar() : std::string();
    auto found = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
    if (found == keys.end()) {
      std::string msg = "unknown key '" + name + "' in " + std::string(what);
      if (auto close = closest_match(name, names); !close.empty()) msg += " (did you mean '" + std::string(close) + "'?)";
      error(key, std::move(msg));
    } else if (!seen.insert(name).second) {
      error(key, "duplicate key '" + name + "' in " + std::string(what));
    } else {
      found->handle(it->second);
    }
  }
  for (const auto& k : keys) {
    if (k.required && !seen.contains(k.name)) {
      error(node, "missing required key '" + std::string(k.name) + "' in " + std::string(what));
    }
  }
}

std::optional<std::string> Reader::string(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) {
    error(node, std::string(what) + ": expected a string, got " + std::string(kind(node)));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<bool> Reader::boolean(const YAML::Node& node, std::string_view what) {
  if (node.IsScalar()) {
    const std::string v = lower(node.Scalar());
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
  }
  error(node, std::string(what) + ": expected true or false, got " +
                  (node.IsScalar() ? "'" + node.Scalar() + "'" : std::string(kind(node))));
  return std::nullopt;
}

std::optional<std::uint64_t> Reader::unsigned_int(const YAML::Node& node, std::string_view what, std::uint64_t max) {
  auto s = string(node, what);
  if (!s) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc{} || end != s->data() + s->size() || s->empty() || v > max) {
    error(node, std::string(what) + ": expected a whole number from 0 to " + std::to_string(max) + ", got '" + *s + "'");
    return std::nullopt;
  }
  return v;
}

std::optional<Duration> Reader::duration(const YAML::Node& node, std::string_view what) {
  auto s = string(node, what);
  if (!s) return std::nullopt;
  auto d = parse_duration(*s);
  if (!d) error(node, std::string(what) + ": expected a duration such as 500ms, 15s, 2m, 1h or 0, got '" + *s + "'");
  return d;
}

std::optional<std::uint64_t> Reader::size(const YAML::Node& node, std::string_view what) {
  auto s = string(node, what);
  if (!s) return std::nullopt;
  auto v = parse_size(*s);
  if (!v) error(node, std::string(what) + ": expected a size such as 4096, 512KiB or 64MiB, got '" + *s + "'");
  return v;
}

std::optional<Endpoint> Reader::endpoint(const YAML::Node& node, std::string_view what) {
  auto s = string(node, what);
  if (!s) return std::nullopt;
  const auto colon = s->rfind(':');
  Endpoint e;
  unsigned port = 0;
  if (colon != std::string::npos) {
    e.host = s->substr(0, colon);
    auto [end, ec] = std::from_chars(s->data() + colon + 1, s->data() + s->size(), port);
    if (ec != std::errc{} || end != s->data() + s->size()) port = 0;
  }
  if (e.host.size() >= 2 && e.host.front() == '[' && e.host.back() == ']') e.host = e.host.substr(1, e.host.size() - 2);
  if (e.host.empty() || port == 0 || port > 65535 || (e.host.find(':') != std::string::npos && (*s)[0] != '[')) {
    error(node, std::string(what) + ": expected host:port (IPv6 as [::1]:6432), got '" + *s + "'");
    return std::nullopt;
  }
  e.port = static_cast<std::uint16_t>(port);
  return e;
}

std::vector<YAML::Node> Reader::list(const YAML::Node& node, std::string_view what) {
  if (node.IsScalar()) return {node};
  std::vector<YAML::Node> out;
  if (node.IsSequence()) {
    for (const auto& item : node) out.push_back(item);
  } else {
    error(node, std::string(what) + ": expected a value or a list, got " + std::string(kind(node)));
  }
  return out;
}

std::vector<std::pair<std::string, YAML::Node>> Reader::strings(const YAML::Node& node, std::string_view what) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (const auto& item : list(node, what))
    if (auto s = string(item, what)) out.emplace_back(*s, item);
  return out;
}

std::optional<std::size_t> Reader::one_of(const YAML::Node& node, std::string_view what,
                                          const std::vector<std::string_view>& names) {
  auto s = string(node, what);
  if (!s) return std::nullopt;
  const std::string v = lower(*s);
  for (std::size_t i = 0; i < names.size(); ++i)
    if (v == names[i]) return i;
  std::string msg = std::string(what) + ": '" + *s + "' is not one of ";
  for (std::size_t i = 0; i < names.size(); ++i) msg += (i ? ", " : "") + std::string(names[i]);
  if (auto close = closest_match(*s, names); !close.empty()) msg += " (did you mean '" + std::string(close) + "'?)";
  error(node, std::move(msg));
  return std::nullopt;
}

std::string Reader::resolve_path(const std::string& path) const {
  std::filesystem::path p(path);
  if (p.is_relative()) p = base_dir_ / p;
  return p.lexically_normal().string();
}

std::optional<std::string> Reader::file_path(const YAML::Node& node, std::string_view what, bool must_exist) {
  auto s = string(node, what);
  if (!s) return std::nullopt;
  if (s->empty()) {
    error(node, std::string(what) + ": empty path");
    return std::nullopt;
  }
  std::string p = resolve_path(*s);
  std::error_code ec;
  if (must_exist && !std::filesystem::exists(p, ec)) {
    error(node, std::string(what) + ": file not found: " + p);
    return std::nullopt;
  }
  return p;
}

}  // namespace pgwarden::config
