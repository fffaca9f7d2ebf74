// The relay's building blocks: the read buffer, the gathered output batch
// and the cancel-key registry.

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "proxy/net/batch.hpp"
#include "proxy/net/byte_buffer.hpp"
#include "proxy/session/cancel_registry.hpp"

namespace pgwarden::proxy {
namespace {

std::string gathered(Batch& b) {
  std::string out;
  for (const auto& buf : b.buffers()) out.append(static_cast<const char*>(buf.data()), buf.size());
  return out;
}

void append(ByteBuffer& b, std::string_view s) {
  auto space = b.prepare(s.size());
  ASSERT_GE(space.size(), s.size());
  std::memcpy(space.data(), s.data(), s.size());
  b.commit(s.size());
}

// Unconsumed bytes survive growth and compaction in order.
TEST(ByteBuffer, KeepsUnconsumedBytesAcrossGrowthAndCompaction) {
  ByteBuffer b(8);
  append(b, "abcdef");
  b.consume(4);
  append(b, "0123456789");  // needs growth or compaction
  EXPECT_EQ(b.data(), "ef0123456789");
  b.consume(2);
  append(b, std::string(100, 'x'));
  EXPECT_EQ(b.data().substr(0, 10), "0123456789");
  EXPECT_EQ(b.size(), 110u);
}

// A buffer that grew for one large message returns its memory once drained.
TEST(ByteBuffer, ShrinksWhenIdleAfterALargeMessage) {
  ByteBuffer b(16);
  append(b, std::string(1 << 20, 'y'));
  EXPECT_GE(b.capacity(), 1u << 20);
  b.shrink_if_idle(1024);
  EXPECT_GE(b.capacity(), 1u << 20) << "must not shrink while bytes are pending";
  b.consume(1 << 20);
  b.shrink_if_idle(1024);
  EXPECT_EQ(b.capacity(), 0u);
  append(b, "z");
  EXPECT_EQ(b.data(), "z");
}

// Contiguous forwarded runs merge into one buffer; substitutions split them.
TEST(Batch, MergesRunsAndInterleavesSubstitutions) {
  const std::string input = "AAAABBBBCCCC";
  Batch b;
  b.reset(input.data());
  b.forward(0, 4);
  b.forward(4, 4);
  b.substitute_begin() += "xyz";
  b.substitute_end();
  b.forward(8, 4);
  EXPECT_EQ(b.buffers().size(), 3u);
  EXPECT_EQ(gathered(b), "AAAABBBBxyzCCCC");
}

// Dropping a message in the middle (forwarding around it) leaves a gap.
TEST(Batch, SkipsBytesThatAreNotForwarded) {
  const std::string input = "AAAABBBBCCCC";
  Batch b;
  b.reset(input.data());
  b.forward(0, 4);
  b.forward(8, 4);
  EXPECT_EQ(gathered(b), "AAAACCCC");
  b.reset(input.data());
  EXPECT_TRUE(b.empty());
}

// Several substitutions in one batch keep their order even when the
// scratch storage reallocates between them.
TEST(Batch, ManySubstitutionsSurviveScratchReallocation) {
  const std::string input = "ab";
  Batch b;
  b.reset(input.data());
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    b.forward(0, 1);
    b.substitute_begin() += std::string(50, char('A' + i % 26));
    b.substitute_end();
    expected += "a" + std::string(50, char('A' + i % 26));
  }
  EXPECT_EQ(gathered(b), expected);
}

// A cancel reaches the upstream session only with the exact key the client
// was given; a wrong key or a removed session finds nothing.
TEST(CancelRegistry, FindsTheUpstreamOnlyWithTheIssuedKey) {
  CancelRegistry r;
  CancelTarget target;
  target.upstream.host = "127.0.0.1";
  target.process_id = 4242;
  target.secret_key = "srv!";
  auto key = r.add(target, 4);
  EXPECT_EQ(key.secret_key.size(), 4u);
  EXPECT_NE(key.secret_key, "srv!");
  auto found = r.find(key.process_id, key.secret_key);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->process_id, 4242u);
  EXPECT_EQ(found->secret_key, "srv!");

  std::string wrong = key.secret_key;
  wrong[0] = static_cast<char>(wrong[0] ^ 1);
  EXPECT_FALSE(r.find(key.process_id, wrong));
  EXPECT_FALSE(r.find(key.process_id, key.secret_key.substr(0, 3)));
  EXPECT_FALSE(r.find(key.process_id, "srv!"));  // the server's own key is never a client's
  r.remove(key);
  EXPECT_FALSE(r.find(key.process_id, key.secret_key));
}

// A client sees its server backend's own process id, as applications compare
// it with pg_backend_pid() and a notification's sender.
TEST(CancelRegistry, ClientKeyCarriesTheServerProcessId) {
  CancelRegistry r;
  CancelTarget target;
  target.process_id = 31337;
  auto key = r.add(target, 4);
  EXPECT_EQ(key.process_id, 31337u);
}

// One server process behind two keys (a pooled connection handed to its next
// client before the last one's key is gone): each key finds it, and removing
// one leaves the other.
TEST(CancelRegistry, TwoKeysForOneProcessAreIndependent) {
  CancelRegistry r;
  CancelTarget target;
  target.process_id = 77;
  auto a = r.add(target, 4);
  auto b = r.add(target, 32);
  EXPECT_EQ(b.secret_key.size(), 32u);
  EXPECT_EQ(r.size(), 2u);
  r.remove(a);
  EXPECT_FALSE(r.find(77, a.secret_key));
  EXPECT_TRUE(r.find(77, b.secret_key));
  r.remove(CancelRegistry::ClientKey{});  // never issued: nothing happens
  EXPECT_EQ(r.size(), 1u);
}

}  // namespace
}  // namespace pgwarden::proxy
