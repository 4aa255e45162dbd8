#include "cluster/shared/counters.hpp"

#include <string>

namespace callrelay::cluster {

std::string_view to_string(SharedOp op) {
  switch (op) {
    case SharedOp::kRevocationPublish: return "revocation_publish";
    case SharedOp::kRevocationCatchUp: return "revocation_catch_up";
    case SharedOp::kQuotaAdmit: return "quota_admit";
    case SharedOp::kQuotaRelease: return "quota_release";
    case SharedOp::kQuotaResync: return "quota_resync";
    case SharedOp::kLoadPublish: return "load_publish";
    case SharedOp::kLoadRead: return "load_read";
    case SharedOp::kCount: break;
  }
  return "unknown";
}

std::string exposition_text(const SharedCounters& c) {
  std::string out;
  const auto metric = [&out](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  const auto value = [&out](const std::string& series, uint64_t v) {
    out += series + " " + std::to_string(v) + "\n";
  };
  metric("callrelay_cluster_redis_failures_total", "counter",
         "Redis operations of the shared state that failed, each answered by its fail-safe.");
  for (size_t i = 0; i < static_cast<size_t>(SharedOp::kCount); ++i)
    value(std::string("callrelay_cluster_redis_failures_total{op=\"") +
              std::string(to_string(static_cast<SharedOp>(i))) + "\"}",
          c.failed(static_cast<SharedOp>(i)));
  metric("callrelay_cluster_redis_up", "gauge",
         "Whether the last command reached Redis (1) or not (0).");
  value("callrelay_cluster_redis_up", c.link.up.load() ? 1 : 0);
  metric("callrelay_cluster_revocations_published_total", "counter",
         "Revocations made on this instance and shared with the others.");
  value("callrelay_cluster_revocations_published_total", c.revocations_published.load());
  metric("callrelay_cluster_revocations_applied_total", "counter",
         "Revocations of other instances applied on this one.");
  value("callrelay_cluster_revocations_applied_total", c.revocations_applied.load());
  metric("callrelay_cluster_quota_refused_total", "counter",
         "Allocations refused because the user's allocations across instances reached the limit.");
  value("callrelay_cluster_quota_refused_total", c.quota_refused.load());
  metric("callrelay_cluster_credential_fallbacks_total", "counter",
         "Credentials that carried this instance's own URIs because no fresh load was known.");
  value("callrelay_cluster_credential_fallbacks_total", c.credential_fallbacks.load());
  metric("callrelay_cluster_instances_healthy", "gauge",
         "Instances taking clients (not draining, record not expired), as last read.");
  value("callrelay_cluster_instances_healthy", c.instances_healthy.load());
  return out;
}

}  // namespace callrelay::cluster
