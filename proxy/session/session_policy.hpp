#pragma once
/// A session's policy inputs: the configuration in force, the facts of the
/// session (who, from where, to which database) and the rules whose
/// session-level conditions hold for them, kept in step with each other.

#include <cstdint>

#include "config/config.hpp"
#include "policy/evaluator.hpp"
#include "policy/session_facts.hpp"
#include "proxy/session/config_holder.hpp"

namespace pgwarden::proxy {

class SessionPolicy {
 public:
  explicit SessionPolicy(const ConfigHolder& holder) : holder_(holder) { refresh(); }

  /// Picks up a reloaded configuration (one atomic load when there is none);
  /// true when it changed.
  bool refresh() {
    const std::uint64_t generation = holder_.generation();
    if (config_ && generation == generation_) return false;
    config_ = holder_.current();
    generation_ = generation;
    facts_.environment = config_->environment;
    if (!facts_.user.empty()) mask_ = policy::session_mask(config_->policy, facts_);
    return true;
  }

  const config::Config& config() const { return *config_; }
  const policy::RuleSet& rules() const { return config_->policy; }
  const policy::SessionFacts& facts() const { return facts_; }
  /// The facts, to change; call facts_changed() after.
  policy::SessionFacts& edit_facts() { return facts_; }
  /// Recomputes which rules apply once the facts changed.
  void facts_changed() { mask_ = policy::session_mask(config_->policy, facts_); }

  /// The decision on `text` under the rules in force, at `facts().now`.
  policy::Decision evaluate(const policy::ClassifiedText& text) const {
    return policy::evaluate(config_->policy, facts_, text, mask_);
  }
  /// The facts of one decision: its protocol path and time.
  void set_statement(policy::ProtocolPath path, std::chrono::sys_seconds now) {
    facts_.protocol = path;
    facts_.now = now;
  }

 private:
  const ConfigHolder& holder_;
  config::ConfigPtr config_;
  std::uint64_t generation_ = 0;
  policy::SessionFacts facts_;
  policy::SessionMask mask_;
};

}  // namespace pgwarden::proxy
