// The Kubernetes cluster example (deploy/kubernetes/cluster/) holds together: every manifest
// the kustomization lists parses as a Kubernetes object; the init container's render script,
// run here on the ConfigMap's own text, gives each pod a configuration that callrelay's parser
// accepts, with the pod's name as cluster.instance_id, its node's addresses and the Secret's
// URLs byte for byte, and refuses missing or malformed input; the StatefulSet keeps what a
// drain and one-instance-per-node need; selectors, Secret keys, volumes and Service names
// refer to things that exist. No schema validator is packaged in Debian, so these are the
// fields that matter, checked one by one.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace {

using namespace callrelay;
namespace fs = std::filesystem;

const std::string kDir = std::string(CALLRELAY_DEPLOY_DIR) + "/kubernetes/cluster";

std::string read_text(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// Every document of a manifest file, keyed "Kind/name".
std::map<std::string, YAML::Node> objects(const std::string& file) {
  std::map<std::string, YAML::Node> out;
  for (const YAML::Node& doc : YAML::LoadAllFromFile(kDir + "/" + file)) {
    if (!doc || doc.IsNull()) continue;
    out[doc["kind"].as<std::string>() + "/" + doc["metadata"]["name"].as<std::string>()] = doc;
  }
  return out;
}

/// Every object the kustomization applies, plus the Secret it leaves out on purpose.
std::map<std::string, YAML::Node> all_objects() {
  std::map<std::string, YAML::Node> out = objects("secret.yaml");
  for (const YAML::Node& r : YAML::LoadFile(kDir + "/kustomization.yaml")["resources"]) {
    for (auto& [key, doc] : objects(r.as<std::string>())) out[key] = doc;
  }
  return out;
}

YAML::Node object(const std::string& key) {
  const auto all = all_objects();
  const auto it = all.find(key);
  return it == all.end() ? YAML::Node() : it->second;
}

YAML::Node pod_spec() { return object("StatefulSet/callrelay")["spec"]["template"]["spec"]; }

YAML::Node container(const YAML::Node& list, const std::string& name) {
  for (const YAML::Node& c : list)
    if (c["name"].as<std::string>() == name) return c;
  return YAML::Node();
}

/// A temporary directory laid out as the init container sees it: the ConfigMap's template and
/// script, the Secret's files, the public-address files, and the output.
class KubernetesClusterRender : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/callrelay-k8s-cluster-XXXXXX";
    ASSERT_NE(mkdtemp(name), nullptr);
    dir_ = name;
    for (const char* sub : {"template", "secret", "public", "out"}) fs::create_directory(dir_ / sub);
    const YAML::Node data = object("ConfigMap/callrelay-cluster-config")["data"];
    ASSERT_TRUE(data["callrelay.yaml.in"] && data["render-config.sh"]);
    write_text(dir_ / "template/callrelay.yaml.in", data["callrelay.yaml.in"].as<std::string>());
    write_text(dir_ / "template/render-config.sh", data["render-config.sh"].as<std::string>());
    // A password with every character YAML or a shell could take for syntax.
    secret("postgres-url", "postgresql://callrelay:it's\"#\\$x%25@callrelay-postgres:5432/callrelay\n");
    secret("redis-url", "redis://:p%40ss'word@callrelay-redis:6379/0\n");
    secret("token-secret", "0123456789abcdef0123456789abcdef\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void secret(const std::string& key, const std::string& value) {
    write_text(dir_ / "secret" / key, value);
  }

  /// Runs the script as the init container does; its exit status, its stderr in `log_`.
  int run(const std::map<std::string, std::string>& env) {
    fs::remove(dir_ / "out/callrelay.yaml");
    std::string cmd = "cd '" + dir_.string() + "' && env -i PATH=/usr/bin:/bin" +
                      " TEMPLATE=template/callrelay.yaml.in SECRET_DIR=secret PUBLIC_DIR=public" +
                      " OUT=out/callrelay.yaml";
    for (const auto& [k, v] : env) cmd += " " + k + "='" + v + "'";
    cmd += " /bin/sh template/render-config.sh >/dev/null 2>out/log";
    const int status = std::system(cmd.c_str());
    log_ = read_text(dir_ / "out/log");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::map<std::string, std::string> pod(const std::string& name, const std::string& node) {
    return {{"POD_NAME", name}, {"NODE_NAME", node}, {"HOST_IP", "10.0.0.5"}, {"REGION", "eu-west"}};
  }

  /// The rendered file loaded by callrelay's own loader (what --check-config runs), with the
  /// mounted secret files it names moved into the temporary directory.
  config::Config load() {
    YAML::Node doc = YAML::LoadFile((dir_ / "out/callrelay.yaml").string());
    EXPECT_EQ(doc["auth"]["secret_file"].as<std::string>(), "/etc/callrelay/secret/rest-secret");
    EXPECT_EQ(doc["api"]["keys"][0]["key_file"].as<std::string>(), "/etc/callrelay/secret/api-key");
    write_text(dir_ / "out/rest-secret", "rest-secret-for-the-test\n");
    write_text(dir_ / "out/api-key", "api-key-for-the-test-0123456789\n");
    doc["auth"]["secret_file"] = (dir_ / "out/rest-secret").string();
    doc["api"]["keys"][0]["key_file"] = (dir_ / "out/api-key").string();
    YAML::Emitter out;
    out << doc;
    write_text(dir_ / "out/checked.yaml", out.c_str());
    return config::load_file((dir_ / "out/checked.yaml").string());
  }

  fs::path dir_;
  std::string log_;
};

TEST(KubernetesCluster, EveryListedManifestParses) {
  const YAML::Node k = YAML::LoadFile(kDir + "/kustomization.yaml");
  ASSERT_TRUE(k["resources"] && k["resources"].IsSequence());
  for (const YAML::Node& r : k["resources"]) {
    const std::string file = r.as<std::string>();
    ASSERT_TRUE(fs::exists(kDir + "/" + file)) << file;
    EXPECT_NE(file, "secret.yaml") << "apply -k would put its empty values over the real Secret";
    for (const YAML::Node& doc : YAML::LoadAllFromFile(kDir + "/" + file)) {
      if (!doc || doc.IsNull()) continue;
      EXPECT_TRUE(doc["apiVersion"] && doc["kind"] && doc["metadata"]["name"]) << file;
    }
  }
  for (const auto& entry : fs::directory_iterator(kDir)) {
    const std::string file = entry.path().filename().string();
    if (file == "kustomization.yaml" || file == "secret.yaml") continue;
    EXPECT_TRUE(std::any_of(k["resources"].begin(), k["resources"].end(),
                            [&](const YAML::Node& r) { return r.as<std::string>() == file; }))
        << file << " is not in kustomization.yaml";
  }
}

TEST_F(KubernetesClusterRender, EachPodGetsAValidConfigurationOfItsOwn) {
  write_text(dir_ / "public/node-b", "203.0.113.9\n");
  ASSERT_EQ(run(pod("callrelay-0", "node-a")), 0) << log_;
  const config::Config a = load();
  ASSERT_EQ(run(pod("callrelay-1", "node-b")), 0) << log_;
  const config::Config b = load();

  EXPECT_EQ(a.cluster.instance_id, "callrelay-0");
  EXPECT_EQ(b.cluster.instance_id, "callrelay-1");
  for (const config::Config* c : {&a, &b}) {
    EXPECT_EQ(c->cluster.postgres_url,
              "postgresql://callrelay:it's\"#\\$x%25@callrelay-postgres:5432/callrelay");
    EXPECT_EQ(c->cluster.redis_url, "redis://:p%40ss'word@callrelay-redis:6379/0");
    EXPECT_EQ(c->cluster.region, "eu-west");
    EXPECT_EQ(c->calls.token_secret, "0123456789abcdef0123456789abcdef");
    // Prometheus, the probes and the callrelay-http Service reach the node's own address.
    EXPECT_EQ(c->http.listen.to_string(), "10.0.0.5:9641");
    EXPECT_EQ(c->auth.rest_secrets, std::vector<std::string>{"rest-secret-for-the-test"});
  }
  // A node without a listed public address is reached at its own; one listed, at that.
  for (const auto& [c, ip] : {std::pair{&a, "10.0.0.5"}, std::pair{&b, "203.0.113.9"}}) {
    ASSERT_TRUE(c->relay.external_ipv4);
    EXPECT_EQ(c->relay.external_ipv4->ip_string(), ip);
    EXPECT_EQ(c->api.public_host, ip);
    ASSERT_FALSE(c->cluster.relay_uris.empty());
    for (const std::string& uri : c->cluster.relay_uris)
      EXPECT_EQ(uri.rfind(std::string("turn:") + ip + ":3478?transport=", 0), 0u) << uri;
  }
}

TEST_F(KubernetesClusterRender, RefusesMissingOrMalformedInput) {
  const auto ok = pod("callrelay-0", "node-a");
  ASSERT_EQ(run(ok), 0) << log_;

  auto without = [&](const std::string& key) {
    auto env = ok;
    env.erase(key);
    return env;
  };
  for (const char* key : {"POD_NAME", "NODE_NAME", "HOST_IP"}) {
    EXPECT_NE(run(without(key)), 0) << key;
    EXPECT_NE(log_.find(key), std::string::npos) << log_;
  }
  auto bad_ip = ok;
  bad_ip["HOST_IP"] = "10.0.0.x";
  EXPECT_NE(run(bad_ip), 0);
  write_text(dir_ / "public/node-a", "relay.example.net\n");
  EXPECT_NE(run(ok), 0) << "a public address must be an IPv4 address";
  EXPECT_NE(log_.find("node-a"), std::string::npos) << log_;
  fs::remove(dir_ / "public/node-a");

  // The URLs' failures name the Secret's key; nothing is written.
  secret("redis-url", "");
  EXPECT_NE(run(ok), 0);
  EXPECT_NE(log_.find("redis-url is empty"), std::string::npos) << log_;
  secret("redis-url", "redis://a\nredis://b\n");
  EXPECT_NE(run(ok), 0);
  EXPECT_NE(log_.find("several lines"), std::string::npos) << log_;
  fs::remove(dir_ / "secret/redis-url");
  EXPECT_NE(run(ok), 0);
  EXPECT_NE(log_.find("no key redis-url"), std::string::npos) << log_;
  EXPECT_FALSE(fs::exists(dir_ / "out/callrelay.yaml"));

  // A placeholder the script has no value for is an error, not a literal in the file.
  secret("redis-url", "redis://callrelay-redis:6379/0");
  write_text(dir_ / "template/callrelay.yaml.in", "cluster:\n  region: @NO_SUCH_VALUE@\n");
  EXPECT_NE(run(ok), 0);
  EXPECT_NE(log_.find("@NO_SUCH_VALUE@"), std::string::npos) << log_;
  EXPECT_FALSE(fs::exists(dir_ / "out/callrelay.yaml"));
}

TEST(KubernetesCluster, InstancesRunOnePerNodeOnTheHostNetwork) {
  const YAML::Node sts = object("StatefulSet/callrelay");
  ASSERT_TRUE(sts);
  EXPECT_GE(sts["spec"]["replicas"].as<int>(), 2);
  const YAML::Node spec = pod_spec();
  EXPECT_TRUE(spec["hostNetwork"].as<bool>());
  EXPECT_EQ(spec["dnsPolicy"].as<std::string>(), "ClusterFirstWithHostNet")
      << "callrelay-redis and callrelay-postgres must resolve from the host network";
  const YAML::Node terms =
      spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
  ASSERT_TRUE(terms && terms.size() == 1);
  EXPECT_EQ(terms[0]["topologyKey"].as<std::string>(), "kubernetes.io/hostname");
  const YAML::Node labels = sts["spec"]["template"]["metadata"]["labels"];
  for (const auto& kv : terms[0]["labelSelector"]["matchLabels"])
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>());
}

TEST(KubernetesCluster, DrainAndProbesAsInTheSingleInstanceManifest) {
  const YAML::Node spec = pod_spec();
  const YAML::Node main = container(spec["containers"], "callrelay");
  ASSERT_TRUE(main);
  // The template's drain deadline and HTTP port, read from the template itself.
  const std::string tpl = object("ConfigMap/callrelay-cluster-config")["data"]["callrelay.yaml.in"]
                              .as<std::string>();
  const YAML::Node cfg = YAML::Load(std::regex_replace(tpl, std::regex("@[A-Z0-9_]+@"), "X"));
  const auto deadline = cfg["drain"]["deadline_s"].as<int64_t>();
  EXPECT_GE(spec["terminationGracePeriodSeconds"].as<int64_t>(), deadline + 30);
  std::string joined;
  for (const auto& part : main["lifecycle"]["preStop"]["exec"]["command"])
    joined += part.as<std::string>() + " ";
  EXPECT_NE(joined.find("kill -TERM 1"), std::string::npos) << joined;
  EXPECT_NE(joined.find("while kill -0 1"), std::string::npos) << joined;
  EXPECT_EQ(cfg["http"]["listen"].as<std::string>(), "X:9641");
  EXPECT_EQ(main["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_EQ(main["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    EXPECT_EQ(main[probe]["httpGet"]["port"].as<int>(), 9641);
    // The pod's address, which on the host network is HOST_IP, where http.listen binds.
    EXPECT_FALSE(main[probe]["httpGet"]["host"]) << probe;
  }
  // callrelay reads the file the init container wrote, on a volume both mount.
  const YAML::Node init = container(spec["initContainers"], "render-config");
  ASSERT_TRUE(init);
  std::string init_cmd;
  for (const auto& part : init["command"]) init_cmd += part.as<std::string>() + " ";
  EXPECT_NE(init_cmd.find("render-config.sh"), std::string::npos) << init_cmd;
  EXPECT_NE(init_cmd.find("--config /run/callrelay/callrelay.yaml --check-config"),
            std::string::npos)
      << init_cmd;
  EXPECT_EQ(main["args"][1].as<std::string>(), "/run/callrelay/callrelay.yaml");
  std::set<std::string> fields;
  for (const auto& e : init["env"])
    if (e["valueFrom"] && e["valueFrom"]["fieldRef"])
      fields.insert(e["name"].as<std::string>() + "=" +
                    e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>());
  EXPECT_EQ(fields, (std::set<std::string>{"HOST_IP=status.hostIP", "NODE_NAME=spec.nodeName",
                                           "POD_NAME=metadata.name"}));
}

TEST(KubernetesCluster, MountsVolumesAndSecretKeysThatExist) {
  const YAML::Node spec = pod_spec();
  std::map<std::string, YAML::Node> volumes;
  for (const auto& v : spec["volumes"]) volumes[v["name"].as<std::string>()] = YAML::Node(v);
  std::map<std::string, std::string> mounts;  // path -> volume, over both containers
  for (const char* list : {"initContainers", "containers"}) {
    for (const auto& c : spec[list]) {
      for (const auto& m : c["volumeMounts"]) {
        const std::string name = m["name"].as<std::string>();
        EXPECT_TRUE(volumes.count(name)) << "volume " << name << " is not defined";
        mounts[m["mountPath"].as<std::string>()] = name;
      }
    }
  }
  // Every file the template or the script names lies on a mounted volume.
  EXPECT_EQ(mounts["/run/callrelay"], "rendered");
  EXPECT_EQ(mounts["/etc/callrelay/template"], "template");
  EXPECT_EQ(mounts["/etc/callrelay/cluster-secret"], "cluster-secret");
  EXPECT_EQ(mounts["/etc/callrelay/secret"], "secret");
  EXPECT_EQ(mounts["/etc/callrelay/public"], "public-addresses");
  EXPECT_TRUE(object("ConfigMap/" + volumes["template"]["configMap"]["name"].as<std::string>()));
  EXPECT_TRUE(
      object("ConfigMap/" + volumes["public-addresses"]["configMap"]["name"].as<std::string>()));
  EXPECT_EQ(volumes["rendered"]["emptyDir"]["medium"].as<std::string>(), "Memory")
      << "the rendered file holds the URLs' passwords";

  // Every Secret key referred to (volume items, env) is one secret.yaml documents.
  const YAML::Node secret = object("Secret/callrelay-cluster");
  ASSERT_TRUE(secret);
  std::set<std::string> referred;
  for (const auto& [name, v] : volumes) {
    if (!v["secret"]) continue;
    EXPECT_EQ(v["secret"]["secretName"].as<std::string>(), "callrelay-cluster");
    for (const auto& item : v["secret"]["items"]) referred.insert(item["key"].as<std::string>());
  }
  for (const char* key : {"StatefulSet/callrelay-redis", "StatefulSet/callrelay-postgres"}) {
    for (const auto& c : object(key)["spec"]["template"]["spec"]["containers"]) {
      for (const auto& e : c["env"]) {
        if (!e["valueFrom"] || !e["valueFrom"]["secretKeyRef"]) continue;
        EXPECT_EQ(e["valueFrom"]["secretKeyRef"]["name"].as<std::string>(), "callrelay-cluster");
        referred.insert(e["valueFrom"]["secretKeyRef"]["key"].as<std::string>());
      }
    }
  }
  for (const char* key : {"redis-url", "postgres-url", "token-secret"}) referred.insert(key);
  for (const std::string& key : referred)
    EXPECT_TRUE(secret["stringData"][key]) << "secret.yaml has no key " << key;
}

TEST(KubernetesCluster, ServicesAndBudgetSelectTheirPods) {
  const auto all = all_objects();
  auto pod_labels = [&](const std::string& workload) {
    return all.at(workload)["spec"]["template"]["metadata"]["labels"];
  };
  auto selects = [](const YAML::Node& selector, const YAML::Node& labels) {
    for (const auto& kv : selector)
      if (!labels[kv.first.as<std::string>()] ||
          labels[kv.first.as<std::string>()].as<std::string>() != kv.second.as<std::string>())
        return false;
    return selector.size() > 0;
  };
  const std::map<std::string, std::string> service_of = {
      {"Service/callrelay", "StatefulSet/callrelay"},
      {"Service/callrelay-http", "StatefulSet/callrelay"},
      {"Service/callrelay-redis", "StatefulSet/callrelay-redis"},
      {"Service/callrelay-postgres", "StatefulSet/callrelay-postgres"},
  };
  for (const auto& [service, workload] : service_of) {
    ASSERT_TRUE(all.count(service) && all.count(workload)) << service << " " << workload;
    EXPECT_TRUE(selects(all.at(service)["spec"]["selector"], pod_labels(workload))) << service;
    for (const auto& [other, other_workload] : service_of) {
      if (other_workload == workload) continue;
      EXPECT_FALSE(selects(all.at(service)["spec"]["selector"], pod_labels(other_workload)))
          << service << " also selects " << other_workload;
    }
  }
  EXPECT_EQ(all.at("Service/callrelay")["spec"]["clusterIP"].as<std::string>(), "None");
  // Prometheus' SRV lookup keeps a draining (not ready) instance; clients' Service does not.
  EXPECT_TRUE(all.at("Service/callrelay")["spec"]["publishNotReadyAddresses"].as<bool>());
  EXPECT_FALSE(all.at("Service/callrelay-http")["spec"]["publishNotReadyAddresses"]);
  EXPECT_EQ(all.at("Service/callrelay")["spec"]["ports"][0]["name"].as<std::string>(), "http")
      << "prometheus-kubernetes.yml looks up _http._tcp.callrelay";
  EXPECT_EQ(all.at("StatefulSet/callrelay")["spec"]["serviceName"].as<std::string>(), "callrelay");
  const YAML::Node pdb = all.at("PodDisruptionBudget/callrelay");
  EXPECT_TRUE(selects(pdb["spec"]["selector"]["matchLabels"], pod_labels("StatefulSet/callrelay")));
  EXPECT_EQ(pdb["spec"]["maxUnavailable"].as<int>(), 1);

  // The URLs secret.yaml tells how to make name the bundled servers' Services and ports.
  const std::string how = read_text(kDir + "/secret.yaml");
  for (const char* service : {"callrelay-redis", "callrelay-postgres"}) {
    const int port = all.at(std::string("Service/") + service)["spec"]["ports"][0]["port"].as<int>();
    EXPECT_NE(how.find(std::string("@") + service + ":" + std::to_string(port) + "/"),
              std::string::npos)
        << service;
  }
}

}  // namespace
