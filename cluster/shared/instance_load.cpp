#include "cluster/shared/instance_load.hpp"

#include <algorithm>
#include <tuple>

#include <nlohmann/json.hpp>

namespace callrelay::cluster {

std::string to_json(const InstanceLoad& load) {
  return nlohmann::json{{"id", load.id},
                        {"region", load.region},
                        {"uris", load.uris},
                        {"allocations", load.allocations},
                        {"calls", load.calls},
                        {"draining", load.draining}}
      .dump();
}

std::optional<InstanceLoad> parse_instance_load(std::string_view text) {
  // Another instance wrote it, but anything with access to Redis could have: every field is
  // checked for its type and size, and a record that fails is ignored whole.
  if (text.size() > kMaxLoadRecordBytes) return std::nullopt;
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto str = [&](const char* key) -> const std::string* {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  const auto count = [&](const char* key) -> std::optional<uint64_t> {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<uint64_t>();
  };
  InstanceLoad out;
  const std::string* id = str("id");
  const std::string* region = str("region");
  const auto allocations = count("allocations");
  const auto calls = count("calls");
  const auto draining = j.find("draining");
  const auto uris = j.find("uris");
  if (id == nullptr || id->empty() || region == nullptr || !allocations || !calls ||
      draining == j.end() || !draining->is_boolean() || uris == j.end() || !uris->is_array() ||
      uris->size() > kMaxPublishedUris)
    return std::nullopt;
  for (const auto& u : *uris) {
    if (!u.is_string()) return std::nullopt;
    out.uris.push_back(u.get<std::string>());
  }
  out.id = *id;
  out.region = *region;
  out.allocations = *allocations;
  out.calls = *calls;
  out.draining = draining->get<bool>();
  return out;
}

std::vector<std::string> pick_uris(std::vector<InstanceLoad> instances, std::string_view region,
                                   size_t max_instances) {
  std::erase_if(instances, [](const InstanceLoad& l) { return l.draining || l.uris.empty(); });
  std::sort(instances.begin(), instances.end(), [&](const InstanceLoad& a, const InstanceLoad& b) {
    const bool a_far = region.empty() || a.region != region;
    const bool b_far = region.empty() || b.region != region;
    return std::tie(a_far, a.allocations, a.calls, a.id) <
           std::tie(b_far, b.allocations, b.calls, b.id);
  });
  std::vector<std::string> out;
  for (size_t i = 0; i < instances.size() && i < max_instances; ++i) {
    for (auto& uri : instances[i].uris)
      if (std::find(out.begin(), out.end(), uri) == out.end()) out.push_back(std::move(uri));
  }
  return out;
}

}  // namespace callrelay::cluster
