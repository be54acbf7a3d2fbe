// Decoder for security.istio.io AuthorizationPolicy (strict: a misspelt `notPaths` would
// otherwise widen what a policy allows). What a policy means is the enforcer's business; this
// records it as written.
#include <utility>

#include "core/config/kinds.h"
#include "core/config/traffic_fields.h"

namespace sluice::config::detail {
namespace {

// Istio rejects empty strings in these lists: "" would match nothing or everything
// depending on the field, never what the author meant.
std::vector<std::string> readValues(const Field& field) {
  std::vector<std::string> values;
  field.forEachItem([&](const Field& item) {
    std::string value = item.string();
    if (item.present() && value.empty()) item.fail("must not be empty");
    values.push_back(std::move(value));
  });
  return values;
}

std::vector<uint16_t> readPorts(const Field& field) {
  std::vector<uint16_t> ports;
  // Istio declares ports as strings ("8080"); a bare 8080 means the same.
  field.forEachItem([&](const Field& item) {
    std::string text = item.string();
    std::optional<uint16_t> port = parsePort(text);
    if (!port && item.present() && item.node().IsScalar())
      item.fail("must be a port number 1..65535, got " + quoted(text));
    if (port) ports.push_back(*port);
  });
  return ports;
}

PolicySource readSource(const Field& field) {
  PolicySource source;
  field.require();
  field.rejectUnknown({"principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals",
                       "namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts",
                       "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"});
  source.principals = readValues(field["principals"]);
  source.not_principals = readValues(field["notPrincipals"]);
  source.request_principals = readValues(field["requestPrincipals"]);
  source.not_request_principals = readValues(field["notRequestPrincipals"]);
  source.namespaces = readValues(field["namespaces"]);
  source.not_namespaces = readValues(field["notNamespaces"]);
  source.service_accounts = readValues(field["serviceAccounts"]);
  source.not_service_accounts = readValues(field["notServiceAccounts"]);
  source.ip_blocks = readIpBlocks(field["ipBlocks"]);
  source.not_ip_blocks = readIpBlocks(field["notIpBlocks"]);
  source.remote_ip_blocks = readIpBlocks(field["remoteIpBlocks"]);
  source.not_remote_ip_blocks = readIpBlocks(field["notRemoteIpBlocks"]);
  return source;
}

PolicyOperation readOperation(const Field& field) {
  PolicyOperation operation;
  field.require();
  field.rejectUnknown(
      {"hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"});
  operation.hosts = readValues(field["hosts"]);
  operation.not_hosts = readValues(field["notHosts"]);
  operation.ports = readPorts(field["ports"]);
  operation.not_ports = readPorts(field["notPorts"]);
  operation.methods = readValues(field["methods"]);
  operation.not_methods = readValues(field["notMethods"]);
  operation.paths = readValues(field["paths"]);
  operation.not_paths = readValues(field["notPaths"]);
  return operation;
}

AuthorizationRule readRule(const Field& field) {
  AuthorizationRule rule;
  field.rejectUnknown({"from", "to", "when"});
  field["from"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"source"});
    rule.from.push_back(readSource(item["source"]));
  });
  field["to"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"operation"});
    rule.to.push_back(readOperation(item["operation"]));
  });
  field["when"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"key", "values", "notValues"});
    PolicyCondition condition;
    condition.key = readRequired(item["key"]);
    condition.values = readValues(item["values"]);
    condition.not_values = readValues(item["notValues"]);
    if (item.isMap() && !item["values"].present() && !item["notValues"].present())
      item.fail("must set values or notValues");
    rule.when.push_back(std::move(condition));
  });
  return rule;
}

ObjectReference readTargetRef(const Field& field) {
  ObjectReference ref;
  field.rejectUnknown({"group", "kind", "name", "namespace"});
  ref.group = field["group"].string();
  ref.kind = readRequired(field["kind"]);
  ref.name = readRequired(field["name"]);
  ref.ns = field["namespace"].string();
  return ref;
}

}  // namespace

Object decodeAuthorizationPolicy(const Field& object, ObjectMeta meta) {
  AuthorizationPolicy policy;
  policy.meta = std::move(meta);
  const Field spec = object["spec"];
  spec.rejectUnknown({"selector", "targetRef", "targetRefs", "action", "provider", "rules"});
  policy.selector = readSelector(spec["selector"]);
  if (spec["targetRef"].present()) policy.target_refs.push_back(readTargetRef(spec["targetRef"]));
  spec["targetRefs"].forEachItem(
      [&](const Field& item) { policy.target_refs.push_back(readTargetRef(item)); });
  if (spec["targetRef"].present() && spec["targetRefs"].present())
    spec["targetRefs"].fail("cannot be combined with targetRef");
  if (!policy.target_refs.empty() && spec["selector"].present())
    spec["selector"].fail("cannot be combined with targetRef or targetRefs");

  const Field action = spec["action"];
  if (action.present()) {
    std::string text = action.string();
    std::optional<AuthorizationAction> parsed = parseAuthorizationAction(text);
    if (!parsed) action.fail("must be one of ALLOW, DENY, AUDIT, CUSTOM, got " + quoted(text));
    policy.action = parsed.value_or(AuthorizationAction::kAllow);
  }
  const Field provider = spec["provider"];
  provider.rejectUnknown({"name"});
  policy.provider = provider["name"].string();
  if (policy.action == AuthorizationAction::kCustom && policy.provider.empty())
    action.fail("CUSTOM requires spec.provider.name (the external authorizer)");
  if (policy.action != AuthorizationAction::kCustom && provider.present())
    provider.fail("only allowed with action CUSTOM");

  spec["rules"].forEachItem([&](const Field& item) { policy.rules.push_back(readRule(item)); });
  return policy;
}

}  // namespace sluice::config::detail
