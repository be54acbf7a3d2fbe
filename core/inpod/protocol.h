// The node agent <-> ztunnel protocol (in the spirit of Istio's ZDS): the agent tells ztunnel
// which pods of the node are enrolled, each with its network namespace passed as a file
// descriptor (SCM_RIGHTS).
//
// Transport: a SOCK_SEQPACKET Unix socket; the agent listens, ztunnel connects. One JSON
// message per packet:
//   ztunnel -> agent  {"type":"hello","version":1}
//   agent -> ztunnel  {"type":"add","workload":{...}}   + the pod's netns fd
//                     {"type":"remove","uid":"..."}
//                     {"type":"snapshot_sent"}          every pod has been (re)sent; ztunnel drops
//                                                       the pods this connection did not name
//   ztunnel -> agent  {"type":"ack","error":""}         once per agent message, in order
#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace sluice::inpod {

inline constexpr int kProtocolVersion = 1;

struct WorkloadInfo {
  std::string uid;
  std::string ns;
  std::string name;
  std::string service_account;
  std::vector<boost::asio::ip::address> ips;
  bool operator==(const WorkloadInfo&) const = default;
};

struct Message {
  enum class Type { kHello, kAdd, kRemove, kSnapshotSent, kAck };
  Type type = Type::kAck;
  WorkloadInfo workload;  // kAdd
  std::string uid;        // kRemove
  std::string error;      // kAck: empty on success
  int version = kProtocolVersion;
};

std::string encode(const Message& message);
// Rejects malformed or unknown messages with a reason; never throws.
Result<Message> decode(std::string_view text);

// One message (and optionally one fd) per packet, blocking. receive() returns the passed fd
// (owned by the caller) or -1; an orderly close of the peer is an error "peer closed"; a
// packet that is not a valid message comes back with `invalid` set, so the receiver can
// answer it and carry on.
Result<void> sendMessage(int socket, const Message& message, int fd = -1);
struct Received {
  Message message;
  int fd = -1;
  std::string invalid;  // set when the packet arrived but is not a valid message (fd closed)
};
Result<Received> receiveMessage(int socket);

}  // namespace sluice::inpod
