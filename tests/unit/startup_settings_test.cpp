// The settings a StartupMessage makes, read as the server reads them and
// classified as the SETs they are.

#include "policy/startup_settings.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/classifier.hpp"

namespace pgwarden::policy {
namespace {

using Parameters = std::vector<std::pair<std::string_view, std::string_view>>;

std::vector<std::string> statements(const Parameters& p) {
  std::vector<std::string> out;
  for (const StartupSetting& s : startup_settings(p)) out.push_back(s.sql);
  return out;
}

std::vector<std::string> options(std::string_view text) { return statements({{"options", text}}); }

TEST(StartupSettings, ParametersTheServerReadsItselfAreNoSettings) {
  EXPECT_TRUE(statements({{"user", "bob"}, {"database", "db"}, {"replication", "database"},
                          {"_pq_.some_option", "1"}, {"", "x"}})
                  .empty());
  // The server compares those names as they are: "User" is a setting.
  EXPECT_EQ(statements({{"User", "x"}}), std::vector<std::string>{"SET \"User\" TO 'x'"});
}

TEST(StartupSettings, EveryOtherParameterIsASet) {
  EXPECT_EQ(statements({{"user", "bob"}, {"role", "admin"}, {"application_name", "psql"}, {"DateStyle", "ISO"}}),
            (std::vector<std::string>{"SET \"role\" TO 'admin'", "SET \"application_name\" TO 'psql'",
                                      "SET \"DateStyle\" TO 'ISO'"}));
  const StartupSetting role = startup_settings(Parameters{{"role", "admin"}}).at(0);
  EXPECT_EQ(role.source, "role=admin");
  const ClassifiedText t = classify(role);
  ASSERT_EQ(t.statements.size(), 1u);
  EXPECT_TRUE(t.statements[0].role_change);
  EXPECT_EQ(t.statements[0].role_target, "admin");
  EXPECT_TRUE(t.statements[0].classes.contains(StatementClass::MiscSet));
  EXPECT_TRUE(classify(startup_settings(Parameters{{"session_authorization", "admin"}}).at(0)).statements[0].role_change);
}

TEST(StartupSettings, NamesAndValuesCannotEscapeTheirQuotes) {
  for (const auto& [name, value] : Parameters{{"search_path", "a', public; DROP TABLE t; --"},
                                               {"x\" TO 'y'; DROP TABLE t; --", "1"},
                                               {"myapp.tenant", "7"},
                                               {"a\\", "b\\"}}) {
    const std::vector<StartupSetting> s = startup_settings(Parameters{{name, value}});
    ASSERT_EQ(s.size(), 1u);
    const ClassifiedText t = classify(s[0]);
    ASSERT_EQ(t.statements.size(), 1u) << s[0].sql;
    EXPECT_FALSE(t.unparseable) << s[0].sql;
    EXPECT_EQ(t.statements[0].command_tag, "SET") << s[0].sql;
  }
  EXPECT_EQ(statements({{"myapp.tenant", "7"}}), std::vector<std::string>{"SET \"myapp\".\"tenant\" TO '7'"});
}

TEST(StartupSettings, LibrariesLoadedAtStartAreALoadToo) {
  EXPECT_EQ(statements({{"local_preload_libraries", "auto_explain"}}),
            (std::vector<std::string>{"SET \"local_preload_libraries\" TO 'auto_explain'", "LOAD 'auto_explain'"}));
  const std::vector<StartupSetting> s = startup_settings(Parameters{{"options", "-c Session_Preload_Libraries=x"}});
  ASSERT_EQ(s.size(), 2u);
  const ClassifiedText load = classify(s[1]);
  ASSERT_EQ(load.statements.size(), 1u);
  EXPECT_EQ(load.statements[0].command_tag, "LOAD");
  EXPECT_TRUE(load.statements[0].dynamic_sql);
}

TEST(StartupSettings, OptionsAreSplitAsTheServerSplitsThem) {
  EXPECT_EQ(options("-c role=admin"), std::vector<std::string>{"SET \"role\" TO 'admin'"});
  EXPECT_EQ(options("-crole=admin"), std::vector<std::string>{"SET \"role\" TO 'admin'"});
  EXPECT_EQ(options("  --role=admin  "), std::vector<std::string>{"SET \"role\" TO 'admin'"});
  // '-' in a name is '_'; a backslash keeps the next character, a space too.
  EXPECT_EQ(options("--work-mem=64MB -c application_name=a\\ b\\\\"),
            (std::vector<std::string>{"SET \"work_mem\" TO '64MB'", "SET \"application_name\" TO 'a b\\'"}));
  EXPECT_EQ(options("-c search_path=evil,pg_catalog -c role=admin").at(1), "SET \"role\" TO 'admin'");
}

TEST(StartupSettings, ShortSwitchesSetWhatTheBackendSets) {
  EXPECT_EQ(options("-e -O -S 64 -fs -P"),
            (std::vector<std::string>{"SET \"datestyle\" TO 'euro'", "SET \"allow_system_table_mods\" TO 'on'",
                                      "SET \"work_mem\" TO '64'", "SET \"enable_seqscan\" TO 'off'",
                                      "SET \"ignore_system_indexes\" TO 'on'"}));
  // getopt: switches grouped in one word, an argument attached or not.
  EXPECT_EQ(options("-eOS64"), options("-e -O -S 64"));
  EXPECT_EQ(options("-Oc role=admin"),
            (std::vector<std::string>{"SET \"allow_system_table_mods\" TO 'on'", "SET \"role\" TO 'admin'"}));
}

TEST(StartupSettings, WhatIsNoSettingFailsClosed) {
  // A debug level, a stray word, a -c without a value, an unknown -f: no SET
  // says what they do, so they are unparseable text.
  for (std::string_view text : {"-d 5", "stray", "-c role", "-fz", "-r /tmp/out", "-"}) {
    const std::vector<StartupSetting> s = startup_settings(Parameters{{"options", text}});
    ASSERT_EQ(s.size(), 1u) << text;
    EXPECT_TRUE(s[0].sql.empty()) << text;
    const ClassifiedText t = classify(s[0]);
    EXPECT_TRUE(t.unparseable) << text;
    ASSERT_EQ(t.statements.size(), 1u);
    EXPECT_TRUE(t.statements[0].unparseable) << text;
  }
  EXPECT_EQ(startup_settings(Parameters{{"options", "-d 5"}}).at(0).source, "options: -d 5");
}

}  // namespace
}  // namespace pgwarden::policy
