#pragma once
/// A zero-copy reader for the protobuf wire format, enough to walk the parse
/// tree libpg_query serialises without unpacking it into protobuf-c structs
/// (unpacking allocates every node and costs about as much as the parse).

#include <cstdint>
#include <string_view>

namespace pgwarden::policy::pb {

/// Protobuf wire types (the low three bits of a field key).
enum class WireType : std::uint8_t { Varint = 0, Fixed64 = 1, Len = 2, Fixed32 = 5 };

/// One field of a message: its number, and either a scalar or the bytes of a
/// length-delimited payload (string, nested message or packed scalars).
struct Field {
  std::uint32_t number = 0;
  WireType type = WireType::Varint;
  std::uint64_t value = 0;
  std::string_view bytes;
};

/// Reads the fields of one serialised message in order. Malformed input ends
/// the iteration and sets failed(); it never reads outside the given bytes.
class Reader {
 public:
  explicit Reader(std::string_view message) noexcept
      : p_(reinterpret_cast<const std::uint8_t*>(message.data())), end_(p_ + message.size()) {}

  /// The next field, or false at the end of the message or on malformed bytes.
  bool next(Field& out) noexcept {
    if (p_ == end_) return false;
    std::uint64_t key = 0;
    if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return fail();
    out.number = static_cast<std::uint32_t>(key >> 3);
    out.type = static_cast<WireType>(key & 7);
    out.bytes = {};
    switch (out.type) {
      case WireType::Varint:
        return varint(out.value) || fail();
      case WireType::Fixed64:
        return skip(8) || fail();
      case WireType::Fixed32:
        return skip(4) || fail();
      case WireType::Len: {
        std::uint64_t len = 0;
        if (!varint(len) || len > static_cast<std::uint64_t>(end_ - p_)) return fail();
        out.bytes = {reinterpret_cast<const char*>(p_), static_cast<std::size_t>(len)};
        p_ += len;
        return true;
      }
    }
    return fail();
  }

  /// True when iteration stopped on malformed bytes rather than at the end.
  bool failed() const noexcept { return failed_; }

 private:
  bool varint(std::uint64_t& out) noexcept {
    out = 0;
    for (unsigned shift = 0; shift < 64 && p_ != end_; shift += 7) {
      std::uint8_t b = *p_++;
      out |= std::uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool skip(std::size_t n) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }
  bool fail() noexcept {
    failed_ = true;
    p_ = end_;
    return false;
  }

  const std::uint8_t* p_;
  const std::uint8_t* end_;
  bool failed_ = false;
};

/// The payload of the first length-delimited field `number`, or empty.
inline std::string_view bytes_of(std::string_view message, std::uint32_t number) noexcept {
  Reader r(message);
  Field f;
  while (r.next(f))
    if (f.number == number && f.type == WireType::Len) return f.bytes;
  return {};
}

/// The value of varint field `number` (proto3 default 0 when absent).
inline std::uint64_t varint_of(std::string_view message, std::uint32_t number) noexcept {
  Reader r(message);
  Field f;
  while (r.next(f))
    if (f.number == number && f.type == WireType::Varint) return f.value;
  return 0;
}

/// True when field `number` is present at all.
inline bool has_field(std::string_view message, std::uint32_t number) noexcept {
  Reader r(message);
  Field f;
  while (r.next(f))
    if (f.number == number) return true;
  return false;
}

}  // namespace pgwarden::policy::pb
