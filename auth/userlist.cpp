#include "auth/userlist.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace pgwarden::auth {

const UserSecret* Userlist::find(std::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

namespace {

bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

std::size_t skip_blanks(std::string_view line, std::size_t pos) noexcept {
  while (pos < line.size() && is_blank(line[pos])) ++pos;
  return pos;
}

}  // namespace

/// Reads a userlist line by line, collecting every error with its position.
class UserlistParser {
 public:
  explicit UserlistParser(std::string_view name) : name_(name), list_(std::make_shared<Userlist>()) {}

  void parse(std::string_view text) {
    int number = 0;
    while (!text.empty() || number == 0) {
      ++number;
      const std::size_t newline = text.find('\n');
      std::string_view line = text.substr(0, newline);
      text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
      if (line.ends_with('\r')) line.remove_suffix(1);
      parse_line(line, number);
    }
  }

  UserlistLoad finish() {
    UserlistLoad out;
    out.errors = std::move(errors_);
    if (out.errors.empty()) out.userlist = std::move(list_);
    return out;
  }

 private:
  void parse_line(std::string_view line, int number) {
    std::size_t pos = skip_blanks(line, 0);
    if (pos == line.size() || line[pos] == ';' || line[pos] == '#') return;
    if (line[pos] != '"') return error(number, pos, "expected a user name in double quotes");
    const std::size_t user_at = pos;
    std::optional<std::string> user = read_field(line, pos, number, "user name");
    if (!user) return;
    if (user->empty()) return error(number, user_at, "empty user name");
    const std::size_t after_user = pos;
    pos = skip_blanks(line, pos);
    if (pos == after_user || pos == line.size() || line[pos] != '"')
      return error(number, pos, "expected the secret of user \"" + *user + "\" in double quotes after the user name");
    const std::size_t secret_at = pos;
    std::optional<std::string> secret = read_field(line, pos, number, "secret");
    if (!secret) return;
    // As in pgbouncer, the rest of the line is ignored, but it must be set apart.
    if (pos < line.size() && !is_blank(line[pos]))
      return error(number, pos, "expected a blank or the end of the line after the secret");
    add(std::move(*user), *secret, number, user_at, secret_at);
  }

  /// The field whose opening quote is at `pos`, with "" read as "; `pos`
  /// moves past the closing quote.
  std::optional<std::string> read_field(std::string_view line, std::size_t& pos, int number,
                                        std::string_view what) {
    const std::size_t open = pos;
    std::string value;
    for (std::size_t i = open + 1; i < line.size(); ++i) {
      if (line[i] != '"') {
        value += line[i];
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        value += '"';
        ++i;
      } else {
        pos = i + 1;
        return value;
      }
    }
    error(number, open, "unterminated " + std::string(what) + ": the closing double quote is missing");
    return std::nullopt;
  }

  void add(std::string user, std::string_view secret, int number, std::size_t user_at, std::size_t secret_at) {
    if (auto first = first_line_.find(user); first != first_line_.end())
      return error(number, user_at,
                   "user \"" + user + "\" is listed twice (first on line " + std::to_string(first->second) + ")");
    first_line_.emplace(user, number);
    if (secret.starts_with("SCRAM-SHA-256$")) {
      auto verifier = ScramVerifier::parse(secret);
      if (!verifier)
        return error(number, secret_at,
                     "invalid SCRAM secret for user \"" + user + "\": " + verifier.error().detail);
      list_->users_.emplace(std::move(user), std::move(*verifier));
    } else if (is_md5_secret(secret)) {
      list_->users_.emplace(std::move(user), Md5Secret{std::string(secret)});
    } else {
      error(number, secret_at,
            "the secret of user \"" + user + "\" is neither a SCRAM-SHA-256 secret nor an md5 hash (\"md5\" and 32 "
            "lowercase hex digits); pgwarden stores no plaintext passwords: use the user's pg_authid.rolpassword");
    }
  }

  void error(int line, std::size_t pos, std::string message) {
    errors_.push_back(config::Diagnostic{name_, line, static_cast<int>(pos) + 1, std::move(message)});
  }

  std::string name_;
  std::shared_ptr<Userlist> list_;
  std::map<std::string, int, std::less<>> first_line_;
  std::vector<config::Diagnostic> errors_;
};

UserlistLoad parse_userlist(std::string_view text, std::string_view name) {
  UserlistParser parser(name);
  parser.parse(text);
  return parser.finish();
}

UserlistLoad load_userlist_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    UserlistLoad out;
    out.errors.push_back(config::Diagnostic{path, 0, 0, std::string("cannot read the auth file: ") + std::strerror(errno)});
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_userlist(text.str(), path);
}

}  // namespace pgwarden::auth
