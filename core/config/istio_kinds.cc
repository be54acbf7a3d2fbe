// Decoders for the Istio kinds people author (security.istio.io). They are strict: an unknown
// field is far more likely a typo that would silently weaken policy than a newer API field.
#include <utility>

#include "core/config/kinds.h"
#include "core/config/traffic_fields.h"

namespace sluice::config::detail {
namespace {

MtlsMode readMode(const Field& field) {
  if (!field.present()) return MtlsMode::kUnset;
  std::string text = field.string();
  std::optional<MtlsMode> mode = parseMtlsMode(text);
  if (!mode) {
    field.fail("must be one of UNSET, DISABLE, PERMISSIVE, STRICT, got " + quoted(text));
    return MtlsMode::kUnset;
  }
  return *mode;
}

}  // namespace

Object decodePeerAuthentication(const Field& object, ObjectMeta meta) {
  PeerAuthentication policy;
  policy.meta = std::move(meta);
  const Field spec = object["spec"];
  spec.rejectUnknown({"selector", "mtls", "portLevelMtls"});

  // Istio treats an empty selector like none: the policy covers the namespace.
  policy.selector = readSelector(spec["selector"]);

  const Field mtls = spec["mtls"];
  mtls.rejectUnknown({"mode"});
  policy.mode = readMode(mtls["mode"]);

  const Field port_level = spec["portLevelMtls"];
  port_level.forEachEntry([&](const std::string& key, const Field& value) {
    std::optional<uint16_t> port = parsePort(key);
    if (!port) value.fail("key must be a port number 1..65535");
    value.rejectUnknown({"mode"});
    MtlsMode mode = readMode(value["mode"]);
    if (port) policy.port_modes[*port] = mode;
  });
  // As Istio validates it: a port only means something for selected workloads.
  if (!policy.port_modes.empty() && !policy.selector)
    port_level.fail("requires spec.selector.matchLabels (port-level modes apply to workloads)");
  return policy;
}

}  // namespace sluice::config::detail
