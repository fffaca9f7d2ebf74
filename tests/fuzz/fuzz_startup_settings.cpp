// libFuzzer target: the StartupMessage as the proxy reads it before deciding
// whether a session may start: frame_startup, parse, startup_settings (the
// `options` switches and the other parameters, each as the SET it is), and
// classify() of every setting.
//
// Input: Byte1 selector, then the packet. Selector bit 0 writes the packet's
// real length into its length field, bit 1 the protocol version 3.0 into its
// code, so mutations reach the parameters.
//
// Invariants: nothing crashes; every setting produced is classified as
// exactly one statement. A setting that is no SET classifies as unparseable
// (deny rules fail closed on it); a SET or LOAD pgwarden wrote is read back
// as one SET or LOAD statement covering the whole text, or as unparseable,
// never as anything else; a SET of `role` or `session_authorization` (any
// case, as PostgreSQL compares setting names) is a role change.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "policy/classifier.hpp"
#include "policy/startup_settings.hpp"

namespace pq = pgwarden::protocol;
namespace pl = pgwarden::policy;
namespace fz = pgwarden::protocol::fuzz;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

/// The setting name of `SET "name" TO ...` when it is a single quoted part;
/// "" otherwise.
std::string set_name(std::string_view sql) {
  if (!sql.starts_with("SET \"")) return {};
  std::string name;
  for (std::size_t i = 5; i < sql.size(); ++i) {
    if (sql[i] != '"') {
      name += sql[i];
    } else if (i + 1 < sql.size() && sql[i + 1] == '"') {
      name += '"';
      ++i;
    } else {
      return sql.substr(i + 1).starts_with(" TO ") ? name : std::string();
    }
  }
  return {};
}

void check_setting(const pl::StartupSetting& setting) {
  const pl::ClassifiedText text = pl::classify(setting);
  fz::check(text.statements.size() == 1, "a startup setting is not one statement");
  const pl::StatementFacts& s = text.statements.front();
  if (setting.sql.empty()) {
    fz::check(text.unparseable && s.unparseable, "a switch that is no setting classifies as a statement");
    return;
  }
  fz::check(text.unparseable == s.unparseable, "unparseable text with a parsed statement");
  if (s.unparseable) return;
  const bool load = setting.sql.starts_with("LOAD ");
  fz::check(s.command_tag == (load ? "LOAD" : "SET"), "a startup setting reads as another statement");
  fz::check(s.location == 0 && s.length <= setting.sql.size(), "the statement is not the setting's whole text");
  const std::string name = set_name(setting.sql);
  if (iequals(name, "role") || iequals(name, "session_authorization"))
    fz::check(s.role_change, "a startup role setting is no role change");
}

void write_u32(std::string& s, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  std::string packet(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (packet.size() >= 8 && (selector & 1)) write_u32(packet, 0, static_cast<std::uint32_t>(packet.size()));
  if (packet.size() >= 8 && (selector & 2)) write_u32(packet, 4, pq::protocol_version_3_0);

  const pq::StartupFrame frame = pq::frame_startup(packet);
  if (!frame.complete || frame.kind != pq::StartupKind::Startup) return 0;
  pq::StartupMessage message;
  if (pq::parse(frame.bytes, message)) return 0;
  for (const auto& [name, value] : message.parameters)
    fz::check(name.find('\0') == std::string_view::npos && value.find('\0') == std::string_view::npos,
              "a startup parameter holds a NUL");
  for (const pl::StartupSetting& setting : pl::startup_settings(message.parameters)) check_setting(setting);
  return 0;
}
