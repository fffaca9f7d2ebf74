// The operational log's line format: what an operator's log shipper reads.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "proxy/ops/log_setup.hpp"

namespace pgwarden::proxy {
namespace {

const auto noon = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714564800123));  // 2024-05-01T12:00:00.123Z

std::string line(config::LogFormat format, std::string_view message, std::initializer_list<LogField> fields) {
  std::string out;
  format_log_line(out, format, noon, spdlog::level::info, message, std::span(fields.begin(), fields.size()));
  return out;
}

// Text: time, level, message, then key=value; plain values stay bare.
TEST(LogLine, TextPrintsFieldsAsKeyValue) {
  EXPECT_EQ(line(config::LogFormat::Text, "connection closed",
                 {{"user", "alice"}, {"reason", "client_terminate"}, {"duration_ms", std::int64_t{12}}}),
            "2024-05-01T12:00:00.123Z info connection closed user=alice reason=client_terminate duration_ms=12\n");
}

// Text: a value a client chose (a user name with a space, a quote and a
// newline) is quoted and escaped, so it cannot start a forged line.
TEST(LogLine, TextQuotesAndEscapesClientChosenValues) {
  EXPECT_EQ(line(config::LogFormat::Text, "denied", {{"user", "eve \"x\"\n2024 info forged"}}),
            "2024-05-01T12:00:00.123Z info denied user=\"eve \\\"x\\\"\\n2024 info forged\"\n");
  EXPECT_EQ(line(config::LogFormat::Text, "a\nb", {{"user", ""}}),
            "2024-05-01T12:00:00.123Z info a\\nb user=\"\"\n");
}

// JSON: one object per line with time, level, message and the fields as
// members; numbers stay numbers.
TEST(LogLine, JsonIsOneObjectWithFieldsAsMembers) {
  EXPECT_EQ(line(config::LogFormat::Json, "connection closed",
                 {{"user", "alice"}, {"bytes", std::uint64_t{42}}, {"tls", false}}),
            "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"message\":\"connection closed\","
            "\"user\":\"alice\",\"bytes\":42,\"tls\":false}\n");
}

// JSON stays valid whatever bytes a value holds: quotes, backslashes and
// control characters are escaped, invalid UTF-8 becomes U+FFFD, valid
// UTF-8 passes through.
TEST(LogLine, JsonEscapesEverythingAClientCanSend) {
  const std::string nasty = "q\"b\\n\n\x01\x7f \xff\xc3(caf\xc3\xa9";
  const std::string out = line(config::LogFormat::Json, "m", {{"user", nasty}});
  ASSERT_EQ(out.back(), '\n');
  ASSERT_EQ(out.find('\n'), out.size() - 1);
  const boost::json::value v = boost::json::parse(std::string_view(out).substr(0, out.size() - 1));
  EXPECT_EQ(v.at("user").as_string(), "q\"b\\n\n\x01\x7f \xef\xbf\xbd\xef\xbf\xbd(caf\xc3\xa9");
  EXPECT_EQ(v.at("message").as_string(), "m");
}

}  // namespace
}  // namespace pgwarden::proxy
