#include "policy/rules.hpp"

#include <algorithm>

namespace pgwarden::policy {

std::string_view to_string(Action a) noexcept { return a == Action::Allow ? "allow" : "deny"; }
std::string_view to_string(Phase p) noexcept { return p == Phase::Statement ? "statement" : "connect"; }

bool ObjectPattern::matches(const ObjectRef& object) const noexcept {
  if ((access & access_bit(object.access)) == 0) return false;
  if (schema && !object.schema.empty() && !schema->matches(object.schema)) return false;
  return name.matches(object.name);
}

bool TimeWindow::contains(std::chrono::sys_seconds now) const noexcept {
  const std::int64_t local = zone ? zone->local_seconds(now) : now.time_since_epoch().count();
  std::int64_t day = local / 86400;
  if (local % 86400 < 0) --day;
  const auto minute = static_cast<std::uint16_t>((local - day * 86400) / 60);
  auto day_ok = [&](std::int64_t d) { return (days >> (((d + 4) % 7 + 7) % 7) & 1u) != 0; };
  if (start_minute < end_minute) return minute >= start_minute && minute < end_minute && day_ok(day);
  if (minute >= start_minute) return day_ok(day);
  return minute < end_minute && day_ok(day - 1);
}

bool Conditions::has_statement_conditions() const noexcept {
  if (!commands.empty() || !classes.empty() || !objects.empty() || !functions.empty()) return true;
  for (const auto& f : statement_flags)
    if (this->*f.condition) return true;
  return false;
}

bool Network::contains(const std::optional<IpAddress>& addr) const noexcept {
  if (!addr) return local;
  for (const auto& c : cidrs)
    if (c.contains(*addr)) return true;
  return false;
}

std::uint16_t session_condition_bits(const Conditions& w) noexcept {
  return std::uint16_t((w.who.users.empty() ? 0 : session_cond_users) | (w.who.user_in.empty() ? 0 : session_cond_user_in) |
                       (w.who.user_not_in.empty() ? 0 : session_cond_user_not_in) |
                       (w.who.databases.empty() ? 0 : session_cond_databases) |
                       (w.who.applications.empty() ? 0 : session_cond_applications) |
                       (w.who.client_in.empty() ? 0 : session_cond_client_in) |
                       (w.who.client_not_in.empty() ? 0 : session_cond_client_not_in) |
                       (w.who.environments.empty() ? 0 : session_cond_environments) | (w.who.time ? session_cond_time : 0) |
                       (w.who.persons.empty() ? 0 : session_cond_persons) |
                       (w.who.person_in.empty() ? 0 : session_cond_person_in) |
                       (w.who.auth_methods == 0 ? 0 : session_cond_auth_methods));
}

RuleSet RuleSet::build(std::vector<Rule> rules, GroupMap groups, NetworkMap networks, Action default_action) {
  RuleSet set;
  set.rules_ = std::move(rules);
  set.groups_ = std::move(groups);
  set.networks_ = std::move(networks);
  set.default_ = default_action;
  for (std::uint32_t i = 0; i < set.rules_.size(); ++i) {
    auto& list = set.rules_[i].phase == Phase::Statement ? set.statement_rules_ : set.connect_rules_;
    list.push_back(set.compile(i));
    if (set.rules_[i].phase == Phase::Statement) {
      const auto& w = set.rules_[i].when;
      set.statement_guards_.push_back({w.classes.bits(), w.protocols, list.back().flag_mask, list.back().flag_value,
                                       session_condition_bits(w),
                                       !w.commands.empty() || !w.objects.empty() || !w.functions.empty()});
    }
  }
  return set;
}

CompiledRule RuleSet::compile(std::uint32_t index) const {
  const Rule& r = rules_[index];
  const Conditions& w = r.when;
  CompiledRule c;
  c.index = index;
  c.in_members = resolve_members(w.who.user_in);
  c.not_in_members = resolve_members(w.who.user_not_in);
  c.person_in_members = resolve_members(w.who.person_in);
  c.client_in = resolve_networks(w.who.client_in);
  c.client_not_in = resolve_networks(w.who.client_not_in);
  for (const auto& f : statement_flags) {
    const std::optional<bool>& v = w.*f.condition;
    if (!v) continue;
    c.flag_mask |= f.bit;
    if (*v) c.flag_value |= f.bit;
  }
  c.denial_message = "permission denied by pgwarden rule \"" + r.name + "\"";
  if (!r.message.empty()) c.denial_message += ": " + r.message;
  return c;
}

std::vector<std::string> RuleSet::resolve_members(const std::vector<std::string>& names) const {
  std::vector<std::string> members;
  for (const auto& g : names) {
    auto it = groups_.find(g);
    if (it != groups_.end()) members.insert(members.end(), it->second.begin(), it->second.end());
  }
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  return members;
}

Network RuleSet::resolve_networks(const std::vector<std::string>& names) const {
  Network out;
  for (const auto& n : names) {
    if (auto it = networks_.find(n); it != networks_.end()) {
      out.cidrs.insert(out.cidrs.end(), it->second.cidrs.begin(), it->second.cidrs.end());
      out.local = out.local || it->second.local;
    } else if (n == "local") {
      out.local = true;
    } else if (auto cidr = Cidr::parse(n)) {
      out.cidrs.push_back(*cidr);
    }
  }
  return out;
}

const Rule* RuleSet::find(std::string_view name) const noexcept {
  for (const auto& r : rules_)
    if (r.name == name) return &r;
  return nullptr;
}

}  // namespace pgwarden::policy
