#include "policy/glob.hpp"

#include <algorithm>

namespace pgwarden::policy {
namespace {

constexpr char kStar = '\x01';
constexpr char kAny = '\x02';

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

// Strips the identifier quotes of a "Quoted" pattern, folding otherwise.
bool fold_identifier(std::string_view& pattern, bool& fold, std::string* error) {
  fold = true;
  if (pattern.empty() || pattern.front() != '"') {
    if (pattern.find('"') != std::string_view::npos) {
      if (error) *error = "a double quote may only enclose the whole pattern";
      return false;
    }
    return true;
  }
  if (pattern.size() < 2 || pattern.back() != '"') {
    if (error) *error = "unbalanced double quote";
    return false;
  }
  pattern = pattern.substr(1, pattern.size() - 2);
  fold = false;
  return true;
}

}  // namespace

std::optional<Glob> Glob::compile(std::string_view pattern, GlobCase mode, std::string* error) {
  Glob g;
  g.source_ = std::string(pattern);
  g.insensitive_ = mode == GlobCase::Insensitive;
  bool fold = g.insensitive_;
  if (mode == GlobCase::Identifier && !fold_identifier(pattern, fold, error)) return std::nullopt;
  if (pattern.empty()) {
    if (error) *error = "empty pattern";
    return std::nullopt;
  }
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (static_cast<unsigned char>(c) < 0x20) {
      if (error) *error = "control character in pattern";
      return std::nullopt;
    }
    if (c == '\\') {
      if (++i == pattern.size()) {
        if (error) *error = "pattern ends with an escape character '\\'";
        return std::nullopt;
      }
      g.pattern_ += fold ? lower(pattern[i]) : pattern[i];
    } else if (c == '*' || c == '?') {
      g.literal_ = false;
      if (c == '*' && !g.pattern_.empty() && g.pattern_.back() == kStar) continue;
      g.pattern_ += c == '*' ? kStar : kAny;
    } else {
      g.pattern_ += fold ? lower(c) : c;
    }
  }
  g.prefix_ = static_cast<std::uint32_t>(std::min(g.pattern_.find_first_of("\x01\x02"), g.pattern_.size()));
  return g;
}

bool Glob::matches(std::string_view text) const noexcept {
  if (literal_) {
    if (text.size() != pattern_.size()) return false;
    if (!insensitive_) return text == pattern_;
    for (std::size_t i = 0; i < text.size(); ++i)
      if (lower(text[i]) != pattern_[i]) return false;
    return true;
  }
  // Most names differ from a pattern in its literal prefix: reject cheaply.
  if (text.size() < prefix_) return false;
  for (std::size_t i = 0; i < prefix_; ++i)
    if ((insensitive_ ? lower(text[i]) : text[i]) != pattern_[i]) return false;
  return match_wild(text);
}

// Greedy match with backtracking to the last star: O(n*m) worst case, linear
// for the usual one-star patterns.
bool Glob::match_wild(std::string_view text) const noexcept {
  std::size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  const std::size_t m = pattern_.size();
  while (t < text.size()) {
    char tc = insensitive_ ? lower(text[t]) : text[t];
    if (p < m && pattern_[p] == kStar) {
      star = p++;
      mark = t;
    } else if (p < m && (pattern_[p] == kAny || pattern_[p] == tc)) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < m && pattern_[p] == kStar) ++p;
  return p == m;
}

}  // namespace pgwarden::policy
