#pragma once
/// IPv4 / IPv6 addresses and CIDR networks for `client_in` / `client_not_in`.
/// Parsed once when the configuration is loaded; matching never allocates.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgwarden::policy {

/// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
/// stored as IPv4, so a dual-stack listener's clients match IPv4 networks.
struct IpAddress {
  enum class Family : std::uint8_t { V4, V6 };
  Family family = Family::V4;
  std::array<std::uint8_t, 16> bytes{};  ///< network order; IPv4 uses the first 4

  /// "10.1.2.3", "::1", "fe80::1" (no zone id); nullopt when not an address.
  static std::optional<IpAddress> parse(std::string_view text) noexcept;
  std::string to_string() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

/// A network: address plus prefix length ("10.20.0.0/16", "2001:db8::/32").
class Cidr {
 public:
  /// Parses a CIDR or a bare address (a /32 or /128). On failure returns
  /// nullopt and, when `error` is given, says why (bad address, prefix out
  /// of range, host bits set with the network that was probably meant).
  static std::optional<Cidr> parse(std::string_view text, std::string* error = nullptr);

  /// True when `addr` lies in this network (never across address families).
  bool contains(const IpAddress& addr) const noexcept;
  std::string to_string() const;
  const IpAddress& address() const noexcept { return base_; }
  unsigned prefix() const noexcept { return prefix_; }

 private:
  IpAddress base_;
  unsigned prefix_ = 0;
};

}  // namespace pgwarden::policy
