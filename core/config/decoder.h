// Decoding Kubernetes-shaped objects (YAML or JSON, already parsed) into typed objects.
//
// Both configuration sources use these functions: the file loader for each YAML document and
// the Kubernetes watch for each JSON object (JSON is YAML, so one YAML::Node path serves both).
// Decoding never throws: every outcome, good or bad, is a DocumentReport.
//
// Rules: kinds Sluice does not read are ignored. Objects users author (PeerAuthentication)
// are strict: unknown fields are rejected. Objects Kubernetes produces (Namespace, Pod,
// Service) are lenient: fields Sluice does not read are skipped. Fields Sluice reads are
// always checked (types, IP addresses, ports 1..65535, names, enumerations).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/objects.h"

namespace YAML {
class Node;
}

namespace sluice::config {

// What happened to one document (or one item of a List).
struct DocumentReport {
  enum class Status { kAccepted, kIgnored, kRejected };

  std::string file;
  // 1-based. The object's first line, or for a rejection the line of the offending field;
  // 0 when there is no line (an unreadable file).
  int line = 0;
  std::string kind;
  std::string ns;  // "default" for namespaced kinds that name no namespace
  std::string name;
  Status status = Status::kAccepted;
  // kRejected: "<field path>: <what is wrong>" (or just what is wrong when the whole document
  // is at fault); kIgnored: why; empty when accepted.
  std::string reason;
  // kRejected: the field path alone, e.g. "spec.ports[0].port"; empty for a whole document.
  std::string field;
};

std::string_view toString(DocumentReport::Status status);  // "ACCEPTED", "IGNORED", "REJECTED"

struct Decoded {
  DocumentReport report;         // `file` is left empty for the caller to fill in
  std::optional<Object> object;  // set exactly when report.status is kAccepted
};

// Decodes one object with apiVersion and kind.
Decoded decodeObject(const YAML::Node& node);

// Decodes one object as the given apiVersion and kind when the object names none itself
// (items of a typed list such as the API server's PodList).
Decoded decodeObjectAs(const YAML::Node& node, std::string_view api_version, std::string_view kind);

// Decodes one document of a file: an object, a `List` (kubectl output) or a typed list
// (`PodList`, ...) of objects, one Decoded per object; nothing for an empty document.
std::vector<Decoded> decodeDocument(const YAML::Node& document);

}  // namespace sluice::config
