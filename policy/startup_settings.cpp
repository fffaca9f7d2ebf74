#include "policy/startup_settings.hpp"

#include <array>
#include <cctype>

#include "policy/classifier.hpp"

namespace pgwarden::policy {
namespace {

/// `text` between `quote`s, each `quote` in it doubled: a quoted identifier
/// ("...") or a standard string ('...').
void append_quoted(std::string& out, std::string_view text, char quote) {
  out += quote;
  for (char c : text) out.append(c == quote ? 2 : 1, c);
  out += quote;
}

/// `SET "a"."b" TO 'value'`: each part of the name quoted, so no name can
/// be read as anything but a setting's name.
std::string set_statement(std::string_view name, std::string_view value) {
  std::string sql = "SET ";
  for (std::size_t start = 0;;) {
    const std::size_t dot = name.find('.', start);
    append_quoted(sql, name.substr(start, dot == std::string_view::npos ? dot : dot - start), '"');
    if (dot == std::string_view::npos) break;
    sql += '.';
    start = dot + 1;
  }
  sql += " TO ";
  append_quoted(sql, value, '\'');
  return sql;
}

/// A setting that loads libraries when the session starts is a LOAD as well.
bool loads_libraries(std::string_view name) {
  constexpr std::string_view suffix = "_preload_libraries";
  if (name.size() < suffix.size()) return false;
  const std::string_view tail = name.substr(name.size() - suffix.size());
  for (std::size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(tail[i])) != suffix[i]) return false;
  return true;
}

void add_setting(std::string source, std::string_view name, std::string_view value,
                 std::vector<StartupSetting>& out) {
  out.push_back({source, set_statement(name, value)});
  if (!loads_libraries(name)) return;
  std::string load = "LOAD ";
  append_quoted(load, value, '\'');
  out.push_back({std::move(source), std::move(load)});
}

/// The server's split of `options`: words at white space, `\` taking the
/// next character as it is.
std::vector<std::string> split_options(std::string_view text) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    std::string word;
    bool escaped = false;
    for (; i < text.size(); ++i) {
      const char c = text[i];
      if (!escaped && std::isspace(static_cast<unsigned char>(c))) break;
      if (!escaped && c == '\\') {
        escaped = true;
      } else {
        escaped = false;
        word += c;
      }
    }
    words.push_back(std::move(word));
  }
  return words;
}

/// A short switch the backend takes as one setting.
struct Switch {
  char letter;
  std::string_view setting;
  std::string_view value;  ///< empty: the switch's argument
};
constexpr std::array<Switch, 14> setting_switches = {{
    {'B', "shared_buffers", ""},
    {'e', "datestyle", "euro"},
    {'F', "fsync", "off"},
    {'h', "listen_addresses", ""},
    {'i', "listen_addresses", "*"},
    {'k', "unix_socket_directories", ""},
    {'l', "ssl", "on"},
    {'N', "max_connections", ""},
    {'O', "allow_system_table_mods", "on"},
    {'P', "ignore_system_indexes", "on"},
    {'p', "port", ""},
    {'S', "work_mem", ""},
    {'s', "log_statement_stats", "on"},
    {'W', "post_auth_delay", ""},
}};

/// The letters of the backend's getopt string that take an argument.
bool takes_argument(char c) { return std::string_view("BcCDdfhkNprStvW-").find(c) != std::string_view::npos; }

const Switch* setting_switch(char c) {
  for (const Switch& s : setting_switches)
    if (s.letter == c) return &s;
  return nullptr;
}

/// -f s|i|o|b|t|n|m|h: forbids one kind of plan.
std::string_view plan_setting(std::string_view arg) {
  if (arg.empty()) return {};
  switch (arg[0]) {
    case 's': return "enable_seqscan";
    case 'i': return "enable_indexscan";
    case 'o': return "enable_indexonlyscan";
    case 'b': return "enable_bitmapscan";
    case 't': return "enable_tidscan";
    case 'n': return "enable_nestloop";
    case 'm': return "enable_mergejoin";
    case 'h': return "enable_hashjoin";
    default: return {};
  }
}

void add_switch(char letter, std::string_view arg, std::vector<StartupSetting>& out) {
  const std::string source = std::string("options: -") + letter + (arg.empty() ? "" : " ") + std::string(arg);
  if (letter == 'c' || letter == '-') {
    // NAME=VALUE; the server reads '-' in NAME as '_'.
    const std::size_t eq = arg.find('=');
    if (eq != std::string_view::npos) {
      std::string name(arg.substr(0, eq));
      for (char& c : name)
        if (c == '-') c = '_';
      add_setting(source, name, arg.substr(eq + 1), out);
      return;
    }
  } else if (letter == 'f') {
    if (const std::string_view setting = plan_setting(arg); !setting.empty()) {
      out.push_back({source, set_statement(setting, "off")});
      return;
    }
  } else if (const Switch* s = setting_switch(letter)) {
    out.push_back({source, set_statement(s->setting, s->value.empty() ? arg : s->value)});
    return;
  }
  // Debug levels, output files, protocol versions, malformed switches:
  // nothing a SET says.
  out.push_back({source, {}});
}

void add_options(std::string_view text, std::vector<StartupSetting>& out) {
  const std::vector<std::string> words = split_options(text);
  for (std::size_t w = 0; w < words.size(); ++w) {
    const std::string& word = words[w];
    if (word.size() < 2 || word[0] != '-') {  // an argument where a switch belongs
      out.push_back({"options: " + word, {}});
      continue;
    }
    // A word of short switches, as getopt reads it: "-eO", "-S64", "-S 64".
    for (std::size_t i = 1; i < word.size(); ++i) {
      const char letter = word[i];
      if (!takes_argument(letter)) {
        add_switch(letter, {}, out);
        continue;
      }
      std::string_view arg = std::string_view(word).substr(i + 1);
      if (arg.empty() && w + 1 < words.size()) arg = words[++w];
      add_switch(letter, arg, out);
      break;
    }
  }
}

}  // namespace

std::vector<StartupSetting> startup_settings(std::span<const std::pair<std::string_view, std::string_view>> parameters) {
  std::vector<StartupSetting> out;
  for (const auto& [name, value] : parameters) {
    // The names the server reads itself, compared as it compares them.
    if (name.empty() || name == "user" || name == "database" || name == "replication" || name.starts_with("_pq_."))
      continue;
    if (name == "options") {
      add_options(value, out);
      continue;
    }
    add_setting(std::string(name) + "=" + std::string(value), name, value, out);
  }
  return out;
}

std::vector<std::string> split_startup_options(std::string_view options) { return split_options(options); }

ClassifiedText classify(const StartupSetting& setting) {
  if (setting.sql.empty()) return unparseable_text("a startup switch that is no setting: " + setting.source, 0);
  return classify(setting.sql);
}

}  // namespace pgwarden::policy
