#include "policy/token_key.hpp"

namespace pgwarden::policy {
namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) noexcept { return is_ident_start(c) || is_digit(c) || c == '$'; }

/// One pass over the text; each scan_* consumes one token or comment.
class KeyBuilder {
 public:
  explicit KeyBuilder(std::string_view sql) : s_(sql) {}

  bool build(TokenKey& out) {
    while (i_ < s_.size()) {
      if (!step()) return false;
    }
    out.statement_length = static_cast<std::uint32_t>(semicolon_ != npos ? semicolon_ : s_.size());
    out.key = std::move(key_);
    return true;
  }

 private:
  static constexpr std::size_t npos = std::string_view::npos;

  bool step() {
    char c = s_[i_];
    if (is_space(c)) return ++i_, space_ = true;
    if (c == '-' && peek(1) == '-') return line_comment();
    if (c == '/' && peek(1) == '*') return block_comment();
    if (semicolon_ != npos) return false;  // something after the first statement
    if (c == '\'') return string_constant();
    if (c == '"') return quoted_identifier();
    if (is_digit(c) || (c == '.' && is_digit(peek(1)))) return number();
    if (c == '$') return parameter();
    if (is_ident_start(c)) return word();
    if (c == '\0') return false;
    if (c == ';') {  // the statement ends; a trailing semicolon changes nothing
      semicolon_ = i_++;
      return true;
    }
    emit(std::string_view(&s_[i_], 1));
    ++i_;
    last_string_ = false;
    return true;
  }

  char peek(std::size_t ahead) const noexcept { return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0'; }
  char before() const noexcept { return i_ > 0 ? s_[i_ - 1] : ' '; }

  void emit(std::string_view token) {
    if (space_ && !key_.empty()) key_ += ' ';
    space_ = false;
    key_ += token;
  }

  bool line_comment() {
    std::size_t end = s_.find('\n', i_);
    i_ = end == npos ? s_.size() : end;
    return space_ = true;
  }

  bool block_comment() {
    int depth = 0;
    while (i_ + 1 < s_.size()) {
      if (s_[i_] == '/' && s_[i_ + 1] == '*') ++depth, i_ += 2;
      else if (s_[i_] == '*' && s_[i_ + 1] == '/') {
        i_ += 2;
        if (--depth == 0) return space_ = true;
      } else ++i_;
    }
    return false;  // unterminated
  }

  bool string_constant() {
    char b = before();
    if (is_ident_char(b) || b == '&' || last_string_) return false;  // E'', B'', U&'', 'a' 'b'
    for (std::size_t j = i_ + 1; j < s_.size(); ++j) {
      if (s_[j] == '\\' || s_[j] == '\0') return false;
      if (s_[j] != '\'') continue;
      if (j + 1 < s_.size() && s_[j + 1] == '\'') {
        ++j;
        continue;
      }
      i_ = j + 1;
      emit("?s");
      last_string_ = true;
      return true;
    }
    return false;
  }

  bool quoted_identifier() {
    if (before() == '&') return false;  // U&"..."
    for (std::size_t j = i_ + 1; j < s_.size(); ++j) {
      if (s_[j] == '\0') return false;
      if (s_[j] != '"') continue;
      if (j + 1 < s_.size() && s_[j + 1] == '"') {
        ++j;
        continue;
      }
      emit(s_.substr(i_, j + 1 - i_));
      i_ = j + 1;
      last_string_ = false;
      return true;
    }
    return false;
  }

  bool number() {
    if (is_ident_char(before()) || before() == '.') return false;
    std::size_t j = i_;
    while (j < s_.size() && is_digit(s_[j])) ++j;
    if (j < s_.size() && s_[j] == '.') {
      ++j;
      while (j < s_.size() && is_digit(s_[j])) ++j;
    }
    if (j < s_.size() && (s_[j] == 'e' || s_[j] == 'E')) {
      ++j;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) ++j;
      if (j >= s_.size() || !is_digit(s_[j])) return false;
      while (j < s_.size() && is_digit(s_[j])) ++j;
    }
    if (j < s_.size() && (is_ident_char(s_[j]) || s_[j] == '.')) return false;
    i_ = j;
    emit("?n");
    last_string_ = false;
    return true;
  }

  bool parameter() {
    if (!is_digit(peek(1)) || is_ident_char(before())) return false;  // dollar quote or junk
    std::size_t j = i_ + 1;
    while (j < s_.size() && is_digit(s_[j])) ++j;
    if (j < s_.size() && is_ident_char(s_[j])) return false;
    emit(s_.substr(i_, j - i_));
    i_ = j;
    last_string_ = false;
    return true;
  }

  bool word() {
    std::size_t j = i_;
    while (j < s_.size() && is_ident_char(s_[j])) ++j;
    if (space_ && !key_.empty()) key_ += ' ';
    space_ = false;
    for (std::size_t k = i_; k < j; ++k) {
      char c = s_[k];
      key_ += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    i_ = j;
    last_string_ = false;
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string key_;
  bool space_ = false;
  bool last_string_ = false;
  std::size_t semicolon_ = npos;
};

}  // namespace

bool make_token_key(std::string_view sql, TokenKey& out) {
  KeyBuilder builder(sql);
  return builder.build(out);
}

}  // namespace pgwarden::policy
