// The agent <-> ztunnel protocol: messages round-trip, bad input is refused with a reason,
// and a namespace fd crosses a real Unix socket.
#include "core/inpod/protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>

#include "core/inpod/netns.h"

namespace sluice::inpod {
namespace {

TEST(InpodProtocol, MessagesRoundTrip) {
  Message add;
  add.type = Message::Type::kAdd;
  add.workload = {"uid-1", "demo", "client", "sleep",
                  {boost::asio::ip::make_address("198.18.1.10"),
                   boost::asio::ip::make_address("fd00:5::10")}};
  auto decoded = decode(encode(add));
  ASSERT_TRUE(decoded) << decoded.message();
  EXPECT_EQ(decoded->type, Message::Type::kAdd);
  EXPECT_EQ(decoded->workload, add.workload);

  Message remove;
  remove.type = Message::Type::kRemove;
  remove.uid = "uid-1";
  EXPECT_EQ(decode(encode(remove))->uid, "uid-1");
  Message ack;
  ack.error = "no such netns";
  EXPECT_EQ(decode(encode(ack))->error, "no such netns");
}

TEST(InpodProtocol, RefusesMalformedMessagesWithAReason) {
  const std::pair<const char*, const char*> bad[] = {
      {"{", "malformed"},
      {"[]", "not a JSON object"},
      {R"({"type":"launch"})", "unknown message type"},
      {R"({"type":"add"})", "without a workload"},
      {R"({"type":"add","workload":{"uid":"u","namespace":"n","name":"p","service_account":"s","ips":["x"]}})",
       "bad ip"},
      {R"({"type":"add","workload":{"uid":"","namespace":"n","name":"p","service_account":"s","ips":[]}})",
       "empty uid"},
      {R"({"type":"remove"})", "missing field 'uid'"},
      {R"({"type":"hello"})", "without a version"},
  };
  for (const auto& [text, reason] : bad) {
    auto message = decode(text);
    EXPECT_FALSE(message) << text;
    if (!message) {
      EXPECT_NE(message.message().find(reason), std::string::npos) << message.message();
    }
  }
}

TEST(InpodProtocol, PassesANamespaceFdOverSeqpacket) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  auto own = Netns::current();
  ASSERT_TRUE(own) << own.message();
  Message add;
  add.type = Message::Type::kAdd;
  add.workload = {"uid-7", "demo", "server", "default", {}};
  ASSERT_TRUE(sendMessage(pair[0], add, own->fd()));
  auto received = receiveMessage(pair[1]);
  ASSERT_TRUE(received) << received.message();
  ASSERT_GE(received->fd, 0);
  Netns passed = Netns::adopt(received->fd);
  EXPECT_EQ(passed.inode(), own->inode()) << "the same namespace arrives";
  EXPECT_EQ(received->message.workload.uid, "uid-7");
  ::close(pair[0]);
  auto closed = receiveMessage(pair[1]);
  EXPECT_FALSE(closed);
  if (!closed) {
    EXPECT_EQ(closed.message(), "peer closed");
  }
  ::close(pair[1]);
}

TEST(Netns, CookieMatchesForTheSameNamespace) {
  auto a = Netns::current();
  auto b = Netns::open("/proc/self/ns/net");
  ASSERT_TRUE(a && b);
  auto ca = a->cookie();
  auto cb = b->cookie();
  ASSERT_TRUE(ca) << ca.message();
  ASSERT_TRUE(cb) << cb.message();
  EXPECT_EQ(*ca, *cb);
  EXPECT_NE(*ca, 0u);
}

TEST(Netns, OpeningAMissingNamespaceNamesThePath) {
  auto missing = Netns::open("/run/netns/sluice-does-not-exist");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("/run/netns/sluice-does-not-exist"), std::string::npos);
}

}  // namespace
}  // namespace sluice::inpod
