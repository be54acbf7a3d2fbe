#include "core/inpod/protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>

namespace sluice::inpod {

namespace json = boost::json;

namespace {

const char* typeName(Message::Type type) {
  switch (type) {
    case Message::Type::kHello: return "hello";
    case Message::Type::kAdd: return "add";
    case Message::Type::kRemove: return "remove";
    case Message::Type::kSnapshotSent: return "snapshot_sent";
    case Message::Type::kAck: return "ack";
  }
  return "ack";
}

Result<std::string> stringField(const json::object& object, std::string_view key, bool required) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) {
    if (required) return makeError("missing field '" + std::string(key) + "'");
    return std::string();
  }
  if (!value->is_string()) return makeError("field '" + std::string(key) + "' is not a string");
  return std::string(value->get_string());
}

}  // namespace

std::string encode(const Message& message) {
  json::object out;
  out["type"] = typeName(message.type);
  switch (message.type) {
    case Message::Type::kHello:
      out["version"] = message.version;
      break;
    case Message::Type::kAdd: {
      json::array ips;
      for (const auto& ip : message.workload.ips) ips.emplace_back(ip.to_string());
      out["workload"] = json::object{{"uid", message.workload.uid},
                                     {"namespace", message.workload.ns},
                                     {"name", message.workload.name},
                                     {"service_account", message.workload.service_account},
                                     {"ips", std::move(ips)}};
      break;
    }
    case Message::Type::kRemove:
      out["uid"] = message.uid;
      break;
    case Message::Type::kAck:
      out["error"] = message.error;
      break;
    case Message::Type::kSnapshotSent:
      break;
  }
  return json::serialize(out);
}

Result<Message> decode(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec) return makeError("malformed message: " + ec.message());
  if (!value.is_object()) return makeError("message is not a JSON object");
  const auto& object = value.get_object();
  auto type = stringField(object, "type", true);
  if (!type) return type.error();
  Message message;
  if (*type == "hello") {
    message.type = Message::Type::kHello;
    const auto* version = object.if_contains("version");
    if (version == nullptr || !version->is_int64()) return makeError("hello without a version");
    message.version = static_cast<int>(version->get_int64());
  } else if (*type == "add") {
    message.type = Message::Type::kAdd;
    const auto* workload = object.if_contains("workload");
    if (workload == nullptr || !workload->is_object()) return makeError("add without a workload");
    const auto& w = workload->get_object();
    for (auto [key, field] : {std::pair{"uid", &message.workload.uid},
                              std::pair{"namespace", &message.workload.ns},
                              std::pair{"name", &message.workload.name},
                              std::pair{"service_account", &message.workload.service_account}}) {
      auto text_value = stringField(w, key, true);
      if (!text_value) return makeError("add: " + text_value.message());
      *field = *text_value;
    }
    if (message.workload.uid.empty()) return makeError("add: empty uid");
    const auto* ips = w.if_contains("ips");
    if (ips == nullptr || !ips->is_array()) return makeError("add: missing field 'ips'");
    for (const auto& ip : ips->get_array()) {
      if (!ip.is_string()) return makeError("add: an ip is not a string");
      auto address = boost::asio::ip::make_address(std::string(ip.get_string()), ec);
      if (ec) return makeError("add: bad ip '" + std::string(ip.get_string()) + "'");
      message.workload.ips.push_back(address);
    }
  } else if (*type == "remove") {
    message.type = Message::Type::kRemove;
    auto uid = stringField(object, "uid", true);
    if (!uid) return makeError("remove: " + uid.message());
    message.uid = *uid;
  } else if (*type == "snapshot_sent") {
    message.type = Message::Type::kSnapshotSent;
  } else if (*type == "ack") {
    message.type = Message::Type::kAck;
    auto error = stringField(object, "error", false);
    if (!error) return error.error();
    message.error = *error;
  } else {
    return makeError("unknown message type '" + *type + "'");
  }
  return message;
}

Result<void> sendMessage(int socket, const Message& message, int fd) {
  const std::string text = encode(message);
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  if (::sendmsg(socket, &msg, MSG_NOSIGNAL) < 0)
    return makeError(std::string("send ") + typeName(message.type) + ": " + std::strerror(errno));
  return success();
}

Result<Received> receiveMessage(int socket) {
  std::string buffer(64 * 1024, '\0');
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return makeError(std::string("receive: ") + std::strerror(errno));
  Received received;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      if (received.fd < 0) {
        received.fd = fd;
      } else {
        ::close(fd);  // only one fd per message is meaningful
      }
    }
  }
  if (n == 0) {
    if (received.fd >= 0) ::close(received.fd);
    return makeError("peer closed");
  }
  if (msg.msg_flags & MSG_TRUNC) {
    if (received.fd >= 0) ::close(received.fd);
    return makeError("message larger than 64 KiB");
  }
  auto message = decode(std::string_view(buffer.data(), static_cast<size_t>(n)));
  if (!message) {
    if (received.fd >= 0) ::close(received.fd);
    received.fd = -1;
    received.invalid = message.message();
    return received;
  }
  received.message = std::move(*message);
  return received;
}

}  // namespace sluice::inpod
