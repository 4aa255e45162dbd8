// The Kubernetes manifests keep what a graceful drain needs: a preStop hook that starts the
// drain and waits for callrelay to exit, a termination grace period above the configuration's
// drain.deadline_s, probes on /readyz and /healthz at the HTTP listener's port, and the
// ConfigMap's configuration valid for callrelay's own parser. No schema validator is packaged
// in Debian, so the fields that matter are checked here.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <string>

#include "config/config.hpp"

namespace {

using namespace callrelay;

const std::string kDir = CALLRELAY_DEPLOY_DIR;

YAML::Node load(const std::string& name) { return YAML::LoadFile(kDir + "/kubernetes/" + name); }

/// The ConfigMap's callrelay.yaml parsed by callrelay itself. The REST secret is a mounted
/// file on a real cluster: the test puts an inline secret in its place.
config::Config configmap_config() {
  YAML::Node doc = YAML::Load(load("configmap.yaml")["data"]["callrelay.yaml"].as<std::string>());
  doc["auth"].remove("secret_file");
  doc["auth"]["secrets"].push_back("test-secret");
  YAML::Emitter out;
  out << doc;
  return config::parse(out.c_str(), "configmap.yaml");
}

YAML::Node container() {
  const YAML::Node spec = load("deployment.yaml")["spec"]["template"]["spec"];
  return spec["containers"][0];
}

TEST(KubernetesManifests, ConfigMapConfigurationIsValid) {
  EXPECT_NO_THROW(configmap_config());
}

TEST(KubernetesManifests, GracePeriodCoversTheDrainDeadline) {
  const config::Config cfg = configmap_config();
  const YAML::Node spec = load("deployment.yaml")["spec"]["template"]["spec"];
  ASSERT_TRUE(spec["terminationGracePeriodSeconds"]) << "without it Kubernetes kills after 30 s";
  const auto grace = spec["terminationGracePeriodSeconds"].as<int64_t>();
  // Room to end what is left at the deadline and stop (records written, sockets closed).
  EXPECT_GE(grace, static_cast<int64_t>(cfg.drain.deadline_s) + 30)
      << "terminationGracePeriodSeconds must exceed drain.deadline_s (" << cfg.drain.deadline_s
      << ") with room to stop";
}

TEST(KubernetesManifests, PreStopStartsTheDrainAndWaitsForTheExit) {
  const YAML::Node command = container()["lifecycle"]["preStop"]["exec"]["command"];
  ASSERT_TRUE(command && command.IsSequence()) << "no lifecycle.preStop.exec.command";
  std::string joined;
  for (const auto& part : command) joined += part.as<std::string>() + " ";
  // SIGTERM to callrelay (PID 1 of the container: the image's exec-form ENTRYPOINT) drains it;
  // the hook must then wait for it to exit, or Kubernetes' own SIGTERM would stop the drain.
  EXPECT_NE(joined.find("kill -TERM 1"), std::string::npos) << joined;
  EXPECT_NE(joined.find("while kill -0 1"), std::string::npos) << joined;
  std::ifstream file(kDir + "/container/Containerfile");
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_NE(text.str().find("ENTRYPOINT [\"/usr/local/bin/callrelay\"]"), std::string::npos)
      << "callrelay must be PID 1 (exec-form ENTRYPOINT) for the preStop's kill -TERM 1";
}

TEST(KubernetesManifests, ProbesUseReadyzAndHealthzOnTheHttpListener) {
  const config::Config cfg = configmap_config();
  ASSERT_TRUE(cfg.http.enabled) << "the probes need the HTTP listener";
  const YAML::Node ready = container()["readinessProbe"]["httpGet"];
  const YAML::Node live = container()["livenessProbe"]["httpGet"];
  ASSERT_TRUE(ready && live);
  EXPECT_EQ(ready["path"].as<std::string>(), "/readyz");  // 503 while draining
  EXPECT_EQ(live["path"].as<std::string>(), "/healthz");
  for (const YAML::Node& probe : {ready, live}) {
    EXPECT_EQ(probe["port"].as<int>(), cfg.http.listen.port);
    // hostNetwork: the kubelet reaches a loopback listener on the node's own loopback.
    EXPECT_EQ(probe["host"].as<std::string>(), cfg.http.listen.ip_string());
  }
}

}  // namespace
