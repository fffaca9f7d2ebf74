// pgwarden.role: the role a person asks for, taken out of the StartupMessage
// in every form a standard client sends it, so the server never sees it and
// every other option reaches the server as the client wrote it.

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/role_setting.hpp"
#include "policy/startup_settings.hpp"

namespace pgwarden::policy {
namespace {

using Params = std::vector<std::pair<std::string_view, std::string_view>>;
using Owned = std::vector<std::pair<std::string, std::string>>;

// psql "user=alice options='-c pgwarden.role=app'"
TEST(RoleSetting, LibpqOptionsSwitchIsTakenOut) {
  const RoleSetting r = take_role_setting(Params{{"user", "alice"}, {"database", "appdb"},
                                                 {"options", "-c pgwarden.role=app"}});
  EXPECT_EQ(r.role, "app");
  EXPECT_EQ(r.parameters, (Owned{{"user", "alice"}, {"database", "appdb"}}));
}

// Other switches stay, in order; the forms -cNAME=V and --NAME=V count too,
// the name in any case; the last one wins, as on the server.
TEST(RoleSetting, OtherOptionsStayAndTheLastRoleWins) {
  RoleSetting r = take_role_setting(
      Params{{"user", "alice"}, {"options", "-c search_path=s1 -cPGWARDEN.ROLE=readonly --work_mem=64MB --pgwarden.role=app"}});
  EXPECT_EQ(r.role, "app");
  EXPECT_EQ(r.parameters, (Owned{{"user", "alice"}, {"options", "-c search_path=s1 --work_mem=64MB"}}));
  // An escaped space inside a value survives the rewrite as the server reads it.
  r = take_role_setting(Params{{"options", "-c application_name=a\\ b -c pgwarden.role=app"}});
  ASSERT_EQ(r.parameters.size(), 1u);
  EXPECT_EQ(split_startup_options(r.parameters[0].second), (std::vector<std::string>{"-c", "application_name=a b"}));
}

// Drivers that send run-time settings as parameters (asyncpg server_settings).
TEST(RoleSetting, AParameterOfItsOwnIsTakenOut) {
  const RoleSetting r = take_role_setting(Params{{"user", "alice"}, {"pgwarden.role", "app"}, {"application_name", "x"}});
  EXPECT_EQ(r.role, "app");
  EXPECT_EQ(r.parameters, (Owned{{"user", "alice"}, {"application_name", "x"}}));
}

// Without the setting, options reach the server byte for byte.
TEST(RoleSetting, OptionsWithoutItAreLeftAsWritten) {
  const RoleSetting r = take_role_setting(Params{{"options", "  -c  geqo=off  "}, {"pgwarden.rolex", "y"}});
  EXPECT_FALSE(r.role);
  EXPECT_EQ(r.parameters, (Owned{{"options", "  -c  geqo=off  "}, {"pgwarden.rolex", "y"}}));
}

}  // namespace
}  // namespace pgwarden::policy
