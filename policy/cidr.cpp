#include "policy/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace pgwarden::policy {
namespace {

unsigned family_bits(IpAddress::Family f) { return f == IpAddress::Family::V4 ? 32 : 128; }

// Clears every bit after `prefix`; returns true when any was set.
bool clear_host_bits(IpAddress& a, unsigned prefix) {
  bool had = false;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = prefix >= (i + 1) * 8 ? 8 : (prefix > i * 8 ? prefix - i * 8 : 0);
    std::uint8_t mask = keep == 0 ? 0 : std::uint8_t(0xFFu << (8 - keep));
    if ((a.bytes[i] & ~mask) != 0) had = true;
    a.bytes[i] &= mask;
  }
  return had;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) noexcept {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) return a;
  std::array<std::uint8_t, 16> v6{};
  if (inet_pton(AF_INET6, buf, v6.data()) != 1) return std::nullopt;
  static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::memcmp(v6.data(), mapped, 12) == 0) {
    std::memcpy(a.bytes.data(), v6.data() + 12, 4);
    return a;
  }
  a.family = Family::V6;
  a.bytes = v6;
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == Family::V4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<Cidr> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return fail("'" + std::string(text) + "' is not an IPv4 or IPv6 address or network");
  Cidr c;
  c.base_ = *addr;
  c.prefix_ = family_bits(addr->family);
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), c.prefix_);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
        c.prefix_ > family_bits(addr->family)) {
      return fail("'" + std::string(text) + "' has an invalid prefix length (0-" +
                  std::to_string(family_bits(addr->family)) + ")");
    }
  }
  if (clear_host_bits(c.base_, c.prefix_)) {
    return fail("'" + std::string(text) + "' has host bits set (did you mean " + c.to_string() + "?)");
  }
  return c;
}

bool Cidr::contains(const IpAddress& addr) const noexcept {
  if (addr.family != base_.family) return false;
  unsigned full = prefix_ / 8;
  if (std::memcmp(addr.bytes.data(), base_.bytes.data(), full) != 0) return false;
  unsigned rest = prefix_ % 8;
  if (rest == 0) return true;
  std::uint8_t mask = std::uint8_t(0xFFu << (8 - rest));
  return (addr.bytes[full] & mask) == base_.bytes[full];
}

std::string Cidr::to_string() const { return base_.to_string() + "/" + std::to_string(prefix_); }

}  // namespace pgwarden::policy
