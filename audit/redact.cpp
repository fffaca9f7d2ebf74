#include "audit/redact.hpp"

#include <cstdint>
#include <cstring>

namespace pgwarden::audit {
namespace {

constexpr unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c | 0x20) : c; }
bool digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool ident_start(unsigned char c) { return (lower(c) >= 'a' && lower(c) <= 'z') || c == '_' || c >= 0x80; }
bool ident_char(unsigned char c) { return ident_start(c) || digit(c) || c == '$'; }
bool space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

/// Position of "password" (any case) in `s` at or after `from`, or npos.
/// Runs over every statement, so it compares eight bytes at once: OR-ing
/// 0x20 into a byte lowers a letter and maps nothing else onto a lowercase
/// letter, so the masked word equals "password" exactly when the text does
/// in some case.
std::size_t find_password(std::string_view s, std::size_t from) {
  constexpr std::uint64_t mask = 0x2020202020202020ull;
  std::uint64_t word = 0;
  std::memcpy(&word, "password", 8);
  for (std::size_t i = from; i + 8 <= s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) | 0x20) != 'p') continue;
    std::uint64_t v = 0;
    std::memcpy(&v, s.data() + i, 8);
    if ((v | mask) == word) return i;
  }
  return std::string_view::npos;
}

/// A libpq connection string inside a literal: "... password = secret ...".
bool holds_conninfo_password(std::string_view literal) {
  for (std::size_t at = find_password(literal, 0); at != std::string_view::npos; at = find_password(literal, at + 1)) {
    std::size_t j = at + 8;
    while (j < literal.size() && space(static_cast<unsigned char>(literal[j]))) ++j;
    if (j < literal.size() && literal[j] == '=') return true;
  }
  return false;
}

/// One pass over the text, copying tokens and replacing literals.
class Redactor {
 public:
  Redactor(std::string_view sql, bool literals, std::string& out)
      : sql_(sql), literals_(literals), role_statement_(sets_role_options(sql)), out_(out) {}

  /// Writes the redacted text to `out`; true when anything was replaced.
  bool run();

 private:
  unsigned char at(std::size_t i) const { return i < sql_.size() ? static_cast<unsigned char>(sql_[i]) : 0; }
  std::size_t quoted_end(std::size_t i, char quote, bool backslash) const;
  std::size_t block_comment_end(std::size_t i) const;
  std::size_t dollar_quote_end(std::size_t i) const;
  std::size_t number_end(std::size_t i) const;
  std::size_t literal_end(std::size_t i) const;
  void copy(std::size_t begin, std::size_t end) { out_.append(sql_.substr(begin, end - begin)); }
  void literal(std::size_t begin, std::size_t end, bool is_string);

  /// Whether `sql` begins with CREATE or ALTER ROLE, USER or GROUP, where
  /// PASSWORD is always the option and what follows it the secret.
  static bool sets_role_options(std::string_view sql);
  void word(std::size_t begin, std::size_t end);

  std::string_view sql_;
  bool literals_;
  bool role_statement_;
  std::string& out_;
  bool after_password_ = false;
  bool changed_ = false;
};

std::size_t Redactor::quoted_end(std::size_t i, char quote, bool backslash) const {
  while (i < sql_.size()) {
    const char c = sql_[i];
    if (backslash && c == '\\') {
      i += 2;
    } else if (c == quote) {
      if (at(i + 1) != static_cast<unsigned char>(quote)) return i + 1;
      i += 2;  // doubled quote inside the literal
    } else {
      ++i;
    }
  }
  return sql_.size();
}

std::size_t Redactor::block_comment_end(std::size_t i) const {
  int depth = 0;  // PostgreSQL's block comments nest
  while (i < sql_.size()) {
    if (at(i) == '/' && at(i + 1) == '*') {
      ++depth;
      i += 2;
    } else if (at(i) == '*' && at(i + 1) == '/') {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return sql_.size();
}

/// End of the dollar-quoted literal starting at `i` ($$...$$ or $tag$...$tag$), or npos.
std::size_t Redactor::dollar_quote_end(std::size_t i) const {
  std::size_t j = i + 1;
  if (digit(at(j))) return std::string_view::npos;  // $1 is a parameter
  while (j < sql_.size() && (ident_start(at(j)) || digit(at(j)))) ++j;
  if (at(j) != '$') return std::string_view::npos;
  const std::string_view tag = sql_.substr(i, j - i + 1);
  const std::size_t close = sql_.find(tag, j + 1);
  return close == std::string_view::npos ? sql_.size() : close + tag.size();
}

std::size_t Redactor::number_end(std::size_t i) const {
  while (digit(at(i)) || at(i) == '_') ++i;
  if (at(i) == '.') {
    ++i;
    while (digit(at(i)) || at(i) == '_') ++i;
  }
  if (lower(at(i)) == 'e' && (digit(at(i + 1)) || ((at(i + 1) == '+' || at(i + 1) == '-') && digit(at(i + 2))))) {
    i += 2;
    while (digit(at(i))) ++i;
  }
  while (ident_start(at(i)) || digit(at(i))) ++i;  // 0x1F, 0o17, 0b101 and junk glued on
  return i;
}

/// End of a string literal starting at `i` (with any prefix), or npos when none starts there.
std::size_t Redactor::literal_end(std::size_t i) const {
  const unsigned char c = lower(at(i));
  if (c == '\'') return quoted_end(i + 1, '\'', false);
  if (c == 'e' && at(i + 1) == '\'') return quoted_end(i + 2, '\'', true);
  if ((c == 'b' || c == 'x' || c == 'n') && at(i + 1) == '\'') return quoted_end(i + 2, '\'', false);
  if (c == 'u' && at(i + 1) == '&' && at(i + 2) == '\'') return quoted_end(i + 3, '\'', false);
  if (c == '$') return dollar_quote_end(i);
  return std::string_view::npos;
}

void Redactor::literal(std::size_t begin, std::size_t end, bool is_string) {
  const bool secret = is_string && (after_password_ || holds_conninfo_password(sql_.substr(begin, end - begin)));
  after_password_ = false;
  if (literals_ || secret) {
    out_.append(literals_ ? "?" : "'***'");
    changed_ = true;
  } else {
    copy(begin, end);
  }
}

bool Redactor::sets_role_options(std::string_view sql) {
  std::size_t i = 0;
  auto next_word = [&sql, &i] {
    while (i < sql.size() && space(static_cast<unsigned char>(sql[i]))) ++i;
    const std::size_t begin = i;
    while (i < sql.size() && ident_char(static_cast<unsigned char>(sql[i]))) ++i;
    return sql.substr(begin, i - begin);
  };
  const std::string_view verb = next_word();
  const std::string_view object = next_word();
  return (iequals(verb, "create") || iequals(verb, "alter")) &&
         (iequals(object, "role") || iequals(object, "user") || iequals(object, "group"));
}

/// An identifier or keyword. In CREATE/ALTER ROLE a word after PASSWORD is
/// a password written without quotes (a syntax error the server rejects,
/// but the secret is in the text all the same), unless it is NULL.
void Redactor::word(std::size_t begin, std::size_t end) {
  const std::string_view w = sql_.substr(begin, end - begin);
  if (after_password_ && role_statement_ && !iequals(w, "null")) {
    out_.append("'***'");
    changed_ = true;
  } else {
    copy(begin, end);
  }
  after_password_ = iequals(w, "password");
}

bool Redactor::run() {
  std::size_t i = 0;
  while (i < sql_.size()) {
    const unsigned char c = at(i);
    std::size_t end = 0;
    if (space(c)) {
      end = i + 1;
      while (end < sql_.size() && space(at(end))) ++end;
      copy(i, end);
    } else if (c == '-' && at(i + 1) == '-') {
      end = sql_.find('\n', i);
      end = end == std::string_view::npos ? sql_.size() : end;
      copy(i, end);
    } else if (c == '/' && at(i + 1) == '*') {
      end = block_comment_end(i);
      copy(i, end);
    } else if ((end = literal_end(i)) != std::string_view::npos) {
      literal(i, end, true);
    } else if (c == '"') {
      end = quoted_end(i + 1, '"', false);
      copy(i, end);
      after_password_ = false;
    } else if (ident_start(c)) {
      end = i + 1;
      while (end < sql_.size() && ident_char(at(end))) ++end;
      word(i, end);
    } else if (digit(c) || (c == '.' && digit(at(i + 1)))) {
      end = number_end(i);
      literal(i, end, role_statement_);
    } else {
      end = i + 1;
      if (c == '$')
        while (digit(at(end))) ++end;  // a parameter: $1
      copy(i, end);
      after_password_ = false;
    }
    i = end;
  }
  return changed_;
}

}  // namespace

bool may_contain_password(std::string_view sql) noexcept { return find_password(sql, 0) != std::string_view::npos; }

std::string redact_parse_error(std::string_view sql, std::string_view message) {
  constexpr std::string_view near = "at or near \"";
  const std::size_t at = message.find(near);
  if (!may_contain_password(sql) || at == std::string_view::npos) return std::string(message);
  std::size_t close = message.rfind("\" at position");
  if (close == std::string_view::npos || close < at + near.size()) close = message.rfind('"');
  if (close == std::string_view::npos || close < at + near.size()) close = message.size() - 1;
  return std::string(message.substr(0, at)) + "at or near (not shown: the text may hold a password)" +
         std::string(message.substr(close + 1));
}

std::string_view redact_sql(std::string_view sql, bool redact_literals, std::string& scratch) {
  if (!redact_literals && !may_contain_password(sql)) return sql;
  scratch.clear();
  if (!Redactor(sql, redact_literals, scratch).run()) return sql;
  return scratch;
}

}  // namespace pgwarden::audit
