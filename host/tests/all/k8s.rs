//! The contract between `k8s/`, the `Dockerfile` and the host: the manifests are parsed into the
//! Kubernetes API's own types and checked against what the binary really reads, parses and
//! answers. `kubernetes-validate` (in CI) checks the manifests against the API schema; this
//! checks them against modelhost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodSpec, Probe, Secret, Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use modelhost::cli::{Cli, Command};
use modelhost::config::{self, Config, Flags, SETTINGS};
use modelhost::serve;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::common::{churn_artifact, eventually, publish};

/// The lab's names, which its users type.
const NAMESPACE: &str = "churn-mlops";
const DEPLOYMENT: &str = "churn-api";
const SERVICE: &str = "churn-api-service";
const CONFIG_MAP: &str = "churn-config";
const SECRET: &str = "churn-secret";
const CLAIM: &str = "churn-storage";
const JOB: &str = "churn-train";
const NETWORK_POLICY: &str = "allow-internal-services";
const NODE_PORT: i32 = 30080;
const IMAGE: &str = "churn-api:v1";

/// The only environment variable the manifests set that the host does not read: the pod's name,
/// used to give each replica its own log directory (`subPathExpr`).
const POD_NAME: &str = "POD_NAME";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `k8s/<file>` parsed as `T` (which also checks its `apiVersion` and `kind`).
pub fn manifest<T: DeserializeOwned>(file: &str) -> T {
    let path = repo_root().join("k8s").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn deployment() -> Deployment {
    manifest("deployment.yaml")
}

pub fn job() -> Job {
    manifest("job-train.yaml")
}

fn cron_job() -> CronJob {
    manifest("cronjob-drift.yaml")
}

pub fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

pub fn job_pod_spec(job: &Job) -> &PodSpec {
    job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn cron_pod_spec(cron: &CronJob) -> &PodSpec {
    cron.spec
        .as_ref()
        .unwrap()
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

/// The one container of a pod.
pub fn container(spec: &PodSpec) -> &Container {
    assert_eq!(spec.containers.len(), 1, "one container per pod");
    &spec.containers[0]
}

/// Every workload that runs the image: (what, pod spec).
fn workloads() -> Vec<(&'static str, PodSpec)> {
    vec![
        ("Deployment", pod_spec(&deployment()).clone()),
        ("Job", job_pod_spec(&job()).clone()),
        ("CronJob", cron_pod_spec(&cron_job()).clone()),
    ]
}

/// The ConfigMap's data.
pub fn config_map_data() -> BTreeMap<String, String> {
    let map: ConfigMap = manifest("configmap.yaml");
    map.data.unwrap_or_default()
}

/// The Secret's data, decoded.
pub fn secret_data() -> BTreeMap<String, String> {
    let secret: Secret = manifest("secret.yaml");
    let mut data: BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect();
    data.extend(secret.string_data.unwrap_or_default());
    data
}

/// The lines of the Dockerfile, with `\` continuations joined.
fn dockerfile_instructions() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
}

/// The instructions of the Dockerfile's last stage (the image that runs).
fn runtime_stage() -> Vec<String> {
    let all = dockerfile_instructions();
    let last_from = all.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    all[last_from..].to_vec()
}

/// The environment the image sets (`ENV` of the runtime stage).
pub fn image_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for instruction in runtime_stage() {
        if let Some(pairs) = instruction.strip_prefix("ENV ") {
            for pair in pairs.split_whitespace() {
                let (key, value) = pair.split_once('=').expect("ENV KEY=VALUE");
                env.insert(key.to_string(), value.trim_matches('"').to_string());
            }
        }
    }
    env
}

/// A JSON-array instruction of the runtime stage (`ENTRYPOINT`, `CMD`).
fn exec_form(keyword: &str) -> Vec<String> {
    let prefix = format!("{keyword} ");
    let instruction = runtime_stage()
        .into_iter()
        .find_map(|i| i.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("the runtime stage has no {keyword}"));
    serde_json::from_str(&instruction).unwrap()
}

/// The environment a container gets: the image's, then `envFrom` (ConfigMap, Secret), then
/// `env` (literal values; `POD_NAME` as `pod_name`).
pub fn container_env(container: &Container, pod_name: &str) -> BTreeMap<String, String> {
    let mut env = image_env();
    for source in container.env_from.iter().flatten() {
        if let Some(map) = &source.config_map_ref {
            assert_eq!(map.name, CONFIG_MAP);
            env.extend(config_map_data());
        }
        if let Some(secret) = &source.secret_ref {
            assert_eq!(secret.name, SECRET);
            env.extend(secret_data());
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), None) => value.clone(),
            (None, Some(from)) => {
                let field = from.field_ref.as_ref().expect("only fieldRef is used");
                assert_eq!(field.field_path, "metadata.name");
                pod_name.to_string()
            }
            other => panic!("{}: unexpected value {other:?}", var.name),
        };
        env.insert(var.name.clone(), value);
    }
    env
}

/// The Secret volumes of `spec` that its container mounts, written under `dir` as the kubelet
/// writes them (one file per key, or per `items` entry under its `path`): (mount path in the
/// container, directory on this machine).
pub fn secret_mounts(spec: &PodSpec, dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut found = Vec::new();
    for mount in container(spec).volume_mounts.iter().flatten() {
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap_or_else(|| panic!("the volume mount {} names no volume", mount.name));
        let Some(source) = &volume.secret else {
            continue;
        };
        assert_eq!(source.secret_name.as_deref(), Some(SECRET));
        let data = secret_data();
        let files: Vec<(String, String)> = match &source.items {
            Some(items) => items
                .iter()
                .map(|item| {
                    let value = data
                        .get(&item.key)
                        .unwrap_or_else(|| panic!("the Secret has no key {} to mount", item.key));
                    (item.path.clone(), value.clone())
                })
                .collect(),
            None => data.into_iter().collect(),
        };
        let on_disk = dir.join(&volume.name);
        std::fs::create_dir_all(&on_disk).unwrap();
        for (file, value) in files {
            std::fs::write(on_disk.join(file), value).unwrap();
        }
        found.push((PathBuf::from(&mount.mount_path), on_disk));
    }
    found
}

/// `value` with a path under one of `mounts`' container paths moved onto this machine.
pub fn map_path(mounts: &[(PathBuf, PathBuf)], value: &str) -> String {
    for (inside, outside) in mounts {
        if let Ok(rest) = Path::new(value).strip_prefix(inside) {
            return outside.join(rest).display().to_string();
        }
    }
    value.to_string()
}

/// The environment of `spec`'s container ([`container_env`]) as it works on this machine: the
/// Secret volumes are written under `dir` and the values naming a file in them point there.
pub fn pod_env(spec: &PodSpec, pod_name: &str, dir: &Path) -> BTreeMap<String, String> {
    let secrets = secret_mounts(spec, dir);
    container_env(container(spec), pod_name)
        .into_iter()
        .map(|(key, value)| {
            let value = map_path(&secrets, &value);
            (key, value)
        })
        .collect()
}

/// Mount path by sub path (`subPath`, or `subPathExpr` with `$(POD_NAME)` left in).
pub fn mounts(container: &Container) -> BTreeMap<String, String> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let sub = m
                .sub_path
                .clone()
                .or_else(|| m.sub_path_expr.clone())
                .unwrap_or_default();
            (sub, m.mount_path.clone())
        })
        .collect()
}

fn probe_port(probe: &Probe) -> i32 {
    let container = container(pod_spec(&deployment())).clone();
    match &probe.http_get.as_ref().unwrap().port {
        IntOrString::Int(port) => *port,
        IntOrString::String(name) => {
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no container port is named {name}"))
                .container_port
        }
    }
}

fn setting_default(env: &str) -> &'static str {
    SETTINGS.iter().find(|s| s.env == env).unwrap().default
}

#[test]
fn kustomization_lists_every_manifest_and_only_those() {
    let text = std::fs::read_to_string(repo_root().join("k8s/kustomization.yaml")).unwrap();
    let kustomization: serde_json::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(kustomization["namespace"], NAMESPACE);
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo_root().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn names_are_the_labs() {
    let namespace: Namespace = manifest("namespace.yaml");
    assert_eq!(namespace.metadata.name.as_deref(), Some(NAMESPACE));

    let deployment = deployment();
    assert_eq!(deployment.metadata.name.as_deref(), Some(DEPLOYMENT));
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let app = BTreeMap::from([("app".to_string(), DEPLOYMENT.to_string())]);
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&app));
    let pod_labels = spec.template.metadata.as_ref().unwrap().labels.clone();
    assert_eq!(pod_labels.as_ref(), Some(&app));

    let service: Service = manifest("service.yaml");
    assert_eq!(service.metadata.name.as_deref(), Some(SERVICE));
    assert_eq!(service.spec.as_ref().unwrap().selector.as_ref(), Some(&app));

    let map: ConfigMap = manifest("configmap.yaml");
    assert_eq!(map.metadata.name.as_deref(), Some(CONFIG_MAP));
    let data = config_map_data();
    assert!(data.contains_key("MODEL_NAME") && data.contains_key("LOG_LEVEL"));

    let secret: Secret = manifest("secret.yaml");
    assert_eq!(secret.metadata.name.as_deref(), Some(SECRET));
    assert!(!secret_data()["MONITORING_TOKEN"].is_empty());

    let claim: PersistentVolumeClaim = manifest("pvc.yaml");
    assert_eq!(claim.metadata.name.as_deref(), Some(CLAIM));
    let claim_spec = claim.spec.unwrap();
    assert_eq!(claim_spec.access_modes, Some(vec!["ReadWriteOnce".into()]));
    let storage = &claim_spec.resources.unwrap().requests.unwrap()["storage"];
    assert_eq!(storage.0, "5Gi");

    let job = job();
    assert_eq!(job.metadata.name.as_deref(), Some(JOB));
    let job_spec = job.spec.as_ref().unwrap();
    assert_eq!(job_spec.backoff_limit, Some(1));
    assert_eq!(job_pod_spec(&job).restart_policy.as_deref(), Some("Never"));

    let policy: NetworkPolicy = manifest("networkpolicy.yaml");
    assert_eq!(policy.metadata.name.as_deref(), Some(NETWORK_POLICY));
    let policy_spec = policy.spec.unwrap();
    assert_eq!(
        policy_spec.pod_selector.unwrap().match_labels.as_ref(),
        Some(&app)
    );
    let rules = policy_spec.ingress.unwrap();
    assert_eq!(rules.len(), 1);
    let from = rules[0].from.as_ref().unwrap();
    assert_eq!(from.len(), 1, "only pods of the namespace");
    let peer = &from[0];
    assert!(peer.namespace_selector.is_none() && peer.ip_block.is_none());
    let selector = peer.pod_selector.as_ref().unwrap();
    assert!(selector.match_labels.as_ref().is_none_or(|l| l.is_empty()));
    let ports = rules[0].ports.as_ref().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, Some(IntOrString::Int(8000)));
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));

    // Every workload runs the same image, pulled only if the node does not have it (so an
    // image loaded with `minikube image load` is used as it is).
    for (what, spec) in workloads() {
        let container = container(&spec);
        assert_eq!(container.image.as_deref(), Some(IMAGE), "{what}");
        assert_eq!(
            container.image_pull_policy.as_deref(),
            Some("IfNotPresent"),
            "{what}"
        );
        for volume in spec.volumes.iter().flatten() {
            match (&volume.persistent_volume_claim, &volume.secret) {
                (Some(claim), None) => assert_eq!(claim.claim_name, CLAIM, "{what}"),
                (None, Some(secret)) => {
                    assert_eq!(secret.secret_name.as_deref(), Some(SECRET), "{what}")
                }
                _ => panic!(
                    "{what}: {} is neither the claim nor the Secret",
                    volume.name
                ),
            }
        }
    }
}

#[test]
fn every_resource_is_in_the_namespace() {
    let namespaces = [
        (
            "configmap.yaml",
            manifest::<ConfigMap>("configmap.yaml").metadata.namespace,
        ),
        (
            "secret.yaml",
            manifest::<Secret>("secret.yaml").metadata.namespace,
        ),
        (
            "pvc.yaml",
            manifest::<PersistentVolumeClaim>("pvc.yaml")
                .metadata
                .namespace,
        ),
        ("deployment.yaml", deployment().metadata.namespace),
        (
            "service.yaml",
            manifest::<Service>("service.yaml").metadata.namespace,
        ),
        (
            "networkpolicy.yaml",
            manifest::<NetworkPolicy>("networkpolicy.yaml")
                .metadata
                .namespace,
        ),
        ("job-train.yaml", job().metadata.namespace),
        (
            "networkpolicy-train.yaml",
            manifest::<NetworkPolicy>("networkpolicy-train.yaml")
                .metadata
                .namespace,
        ),
        ("cronjob-drift.yaml", cron_job().metadata.namespace),
        (
            "networkpolicy-drift.yaml",
            manifest::<NetworkPolicy>("networkpolicy-drift.yaml")
                .metadata
                .namespace,
        ),
        (
            "hpa.yaml",
            manifest::<HorizontalPodAutoscaler>("hpa.yaml")
                .metadata
                .namespace,
        ),
        (
            "pdb.yaml",
            manifest::<PodDisruptionBudget>("pdb.yaml")
                .metadata
                .namespace,
        ),
    ];
    for (file, namespace) in namespaces {
        assert_eq!(namespace.as_deref(), Some(NAMESPACE), "{file}");
    }
}

#[test]
fn the_container_port_is_the_serve_port_and_the_service_targets_it() {
    let deployment = deployment();
    let container = container(pod_spec(&deployment));
    let ports = container.ports.as_ref().unwrap();
    assert_eq!(ports.len(), 1);
    let port = ports[0].container_port;
    assert_eq!(port.to_string(), setting_default("PORT"));
    let env = container_env(container, "churn-api-0");
    assert_eq!(env.get("PORT").map(String::as_str), Some("8000"));
    let exposed = runtime_stage()
        .into_iter()
        .find_map(|i| i.strip_prefix("EXPOSE ").map(str::to_string))
        .unwrap();
    assert_eq!(exposed.trim(), port.to_string());

    let service: Service = manifest("service.yaml");
    let spec = service.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    let service_ports = spec.ports.unwrap();
    assert_eq!(service_ports.len(), 1);
    let service_port = &service_ports[0];
    assert_eq!(service_port.port, 80);
    assert_eq!(service_port.node_port, Some(NODE_PORT));
    // The port serves REST and gRPC, both over h2c (host/tests/all/grpc/infer.rs).
    assert_eq!(
        service_port.app_protocol.as_deref(),
        Some("kubernetes.io/h2c")
    );
    let target = match service_port.target_port.clone().unwrap() {
        IntOrString::Int(port) => port,
        IntOrString::String(name) => {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(&name))
                .unwrap()
                .container_port
        }
    };
    assert_eq!(target, port);
}

#[test]
fn every_environment_variable_set_is_one_the_host_reads() {
    let read: BTreeSet<&str> = SETTINGS.iter().map(|s| s.env).collect();
    let known = |name: &str| read.contains(name);
    for key in config_map_data().keys().chain(secret_data().keys()) {
        assert!(
            known(key),
            "the ConfigMap or Secret sets {key}, which modelhost does not read"
        );
    }
    for key in image_env().keys() {
        assert!(
            known(key),
            "the Dockerfile sets {key}, which modelhost does not read"
        );
    }
    for (what, spec) in workloads() {
        let container = container(&spec);
        for var in container.env.iter().flatten() {
            if var.name == POD_NAME {
                // Only there to name each replica's log directory.
                let used = container.volume_mounts.iter().flatten().any(|m| {
                    m.sub_path_expr
                        .as_deref()
                        .is_some_and(|e| e.contains("$(POD_NAME)"))
                });
                assert!(used, "{what} sets POD_NAME but uses it in no subPathExpr");
            } else {
                assert!(
                    known(&var.name),
                    "{what} sets {}, which modelhost does not read",
                    var.name
                );
            }
        }
    }
}

/// The Deployment's environment resolves to a valid configuration (a bad value would make
/// every pod exit 64), with the registry and log directories where the volume is mounted.
#[test]
fn the_deployment_environment_is_a_valid_configuration_on_the_mounted_directories() {
    let deployment = deployment();
    let container = container(pod_spec(&deployment));
    let secrets = tempfile::tempdir().unwrap();
    let env = pod_env(
        pod_spec(&deployment),
        "churn-api-7d9c-abcde",
        secrets.path(),
    );
    let config = config::resolve(None, &|key| env.get(key).cloned(), &Flags::new())
        .unwrap_or_else(|e| panic!("the Deployment's environment is refused: {e}"));
    assert_eq!(config.model_name, config_map_data()["MODEL_NAME"]);
    assert_eq!(config.port, 8000);
    assert_eq!(
        config.monitoring_token.as_deref(),
        Some(secret_data()["MONITORING_TOKEN"].as_str())
    );

    let mounts = mounts(container);
    assert_eq!(
        config.registry_dir,
        PathBuf::from(&mounts["registry"]),
        "REGISTRY_DIR is where the registry is mounted"
    );
    assert_eq!(
        config.log_dir,
        PathBuf::from(&mounts["logs/$(POD_NAME)"]),
        "LOG_DIR is where this pod's log directory is mounted"
    );
    // The image's defaults name the same directories, so `docker run` and the Job agree.
    assert_eq!(image_env()["REGISTRY_DIR"], mounts["registry"]);
    assert_eq!(image_env()["LOG_DIR"], mounts["logs/$(POD_NAME)"]);
    // Seeding, when on, reads from the image, never from the volume.
    if let Some(seed) = &config.seed_dir {
        assert!(
            !seed.starts_with(&config.registry_dir)
                && !mounts.values().any(|m| seed.starts_with(m)),
            "the seed directory {} is on the volume",
            seed.display()
        );
    }
}

/// The Secret reaches the server as a file, never through the environment (where the process's
/// children and anyone reading `/proc/<pid>/environ` would see it): the Deployment mounts
/// `churn-secret` read-only, `MONITORING_TOKEN_FILE` names the token's file in that mount, and the
/// token the server then requires is the Secret's `MONITORING_TOKEN`. No other workload gets it.
#[test]
fn the_monitoring_token_reaches_the_server_as_a_mounted_file() {
    for (what, spec) in workloads() {
        let container = container(&spec);
        assert!(
            container
                .env_from
                .iter()
                .flatten()
                .all(|source| source.secret_ref.is_none()),
            "{what} takes a Secret into its environment"
        );
        assert!(
            container.env.iter().flatten().all(|var| var
                .value_from
                .as_ref()
                .is_none_or(|f| f.secret_key_ref.is_none())),
            "{what} takes a Secret key into its environment"
        );
        let secret_volumes = spec.volumes.iter().flatten().filter(|v| v.secret.is_some());
        if what != "Deployment" {
            assert_eq!(secret_volumes.count(), 0, "{what} needs no token");
        }
    }

    let deployment = deployment();
    let spec = pod_spec(&deployment);
    let container = container(spec);
    let env = container_env(container, "churn-api-7d9c-abcde");
    assert!(!env.contains_key("MONITORING_TOKEN"));
    let file = PathBuf::from(&env["MONITORING_TOKEN_FILE"]);
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| file.starts_with(&m.mount_path))
        .unwrap_or_else(|| panic!("MONITORING_TOKEN_FILE {} is in no mount", file.display()));
    assert_eq!(
        mount.read_only,
        Some(true),
        "the Secret is mounted read-only"
    );
    assert!(mount.sub_path.is_none() && mount.sub_path_expr.is_none());
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap();
    let source = volume
        .secret
        .as_ref()
        .expect("the token's mount is a Secret");
    assert_eq!(source.secret_name.as_deref(), Some(SECRET));
    // Readable by the pod's group (the volume's files belong to fsGroup), not by others.
    assert_eq!(source.default_mode, Some(0o440));
    assert!(spec.security_context.as_ref().unwrap().fs_group.is_some());

    let secrets = tempfile::tempdir().unwrap();
    let env = pod_env(spec, "churn-api-7d9c-abcde", secrets.path());
    let config = config::resolve(None, &|key| env.get(key).cloned(), &Flags::new())
        .unwrap_or_else(|e| panic!("the Deployment's environment is refused: {e}"));
    assert_eq!(
        config.monitoring_token.as_deref(),
        Some(secret_data()["MONITORING_TOKEN"].as_str())
    );
}

/// No workload's pod gets a service-account token (modelhost never calls the Kubernetes API),
/// and every workload's pods are selected by a NetworkPolicy: the API's admits the namespace on
/// its port, the Job's and the CronJob's, whose pods only use the volume, admit nothing either
/// way.
#[test]
fn every_pod_goes_without_an_api_token_and_under_a_network_policy() {
    let template_labels = |template: &Option<ObjectMeta>| {
        template
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default()
    };
    let deployment = deployment();
    let job = job();
    let cron = cron_job();
    let pods = [
        (
            "Deployment",
            template_labels(&deployment.spec.as_ref().unwrap().template.metadata),
            pod_spec(&deployment).clone(),
            false,
        ),
        (
            "Job",
            template_labels(&job.spec.as_ref().unwrap().template.metadata),
            job_pod_spec(&job).clone(),
            true,
        ),
        (
            "CronJob",
            template_labels(
                &cron
                    .spec
                    .as_ref()
                    .unwrap()
                    .job_template
                    .spec
                    .as_ref()
                    .unwrap()
                    .template
                    .metadata,
            ),
            cron_pod_spec(&cron).clone(),
            true,
        ),
    ];
    let policies: Vec<NetworkPolicy> = std::fs::read_dir(repo_root().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let value: serde_json::Value = serde_norway::from_str(&text).unwrap();
            (value["kind"] == "NetworkPolicy").then(|| serde_json::from_value(value).unwrap())
        })
        .collect();
    for (what, labels, spec, isolated) in pods {
        assert_eq!(
            spec.automount_service_account_token,
            Some(false),
            "{what} mounts a service-account token"
        );
        assert!(!labels.is_empty(), "{what}'s pods have no labels");
        let selecting: Vec<&NetworkPolicy> = policies
            .iter()
            .filter(|policy| {
                let selector = &policy.spec.as_ref().unwrap().pod_selector;
                let wanted = selector.as_ref().and_then(|s| s.match_labels.clone());
                assert!(
                    selector
                        .as_ref()
                        .is_none_or(|s| s.match_expressions.is_none()),
                    "{:?}: only matchLabels",
                    policy.metadata.name
                );
                wanted
                    .unwrap_or_default()
                    .iter()
                    .all(|(key, value)| labels.get(key) == Some(value))
            })
            .collect();
        assert!(
            !selecting.is_empty(),
            "no NetworkPolicy selects {what}'s pods"
        );
        if isolated {
            for policy in selecting {
                let spec = policy.spec.as_ref().unwrap();
                let types = spec.policy_types.clone().unwrap_or_default();
                assert!(
                    types.contains(&"Ingress".to_string()) && types.contains(&"Egress".to_string()),
                    "{what}: {:?} must govern both directions",
                    policy.metadata.name
                );
                assert!(
                    spec.ingress.as_ref().is_none_or(|r| r.is_empty())
                        && spec.egress.as_ref().is_none_or(|r| r.is_empty()),
                    "{what}: {:?} admits traffic its pods do not need",
                    policy.metadata.name
                );
            }
        }
    }
}

/// The Job's and the CronJob's commands are ones the CLI accepts, and every path they name is
/// where the volume is mounted, on the same sub path the Deployment serves from.
#[test]
fn job_and_cron_job_commands_parse_and_use_the_mounted_directories() {
    let deployment = deployment();
    let serving = mounts(container(pod_spec(&deployment)));

    let job = job();
    let train = container(job_pod_spec(&job));
    assert!(train.command.is_none(), "the image's entrypoint runs");
    let args = train.args.clone().unwrap();
    let cli = Cli::try_parse_from(std::iter::once("modelhost".to_string()).chain(args.clone()))
        .unwrap_or_else(|e| panic!("the Job's args {args:?} do not parse: {e}"));
    let Command::Train(train_args) = cli.into_command() else {
        panic!("the Job does not run `train`: {args:?}");
    };
    let job_mounts = mounts(train);
    assert_eq!(
        train_args.registry.registry_dir,
        PathBuf::from(&job_mounts["registry"])
    );
    assert_eq!(
        job_mounts["registry"], serving["registry"],
        "the Job writes where the servers read"
    );
    assert!(
        train
            .volume_mounts
            .iter()
            .flatten()
            .all(|m| m.read_only != Some(true)),
        "the Job writes the registry"
    );

    let cron = cron_job();
    let drift = container(cron_pod_spec(&cron));
    assert!(drift.command.is_none(), "the image's entrypoint runs");
    let args = drift.args.clone().unwrap();
    Cli::try_parse_from(std::iter::once("modelhost".to_string()).chain(args.clone()))
        .unwrap_or_else(|e| panic!("the CronJob's args {args:?} do not parse: {e}"));
    let cron_mounts = mounts(drift);
    for flag in ["--registry-dir", "--log"] {
        let path = args
            .iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
            .unwrap_or_else(|| panic!("the CronJob names no {flag}"));
        assert!(
            cron_mounts.values().any(|m| *m == path),
            "{flag} {path} is not a mount path"
        );
    }
    assert_eq!(cron_mounts["registry"], serving["registry"]);
    assert_eq!(
        cron_mounts["logs"], serving["logs/$(POD_NAME)"],
        "the CronJob sees every replica's log directory where a replica sees its own"
    );

    // The image's own default command.
    let mut image = exec_form("ENTRYPOINT");
    assert!(image[0].ends_with("/modelhost"), "{image:?}");
    image.extend(exec_form("CMD"));
    let cli = Cli::try_parse_from(image.clone()).unwrap();
    assert!(matches!(cli.into_command(), Command::Serve(_)), "{image:?}");
    let deployment_args = container(pod_spec(&deployment)).args.clone().unwrap();
    let cli = Cli::try_parse_from(std::iter::once("modelhost".to_string()).chain(deployment_args))
        .unwrap();
    assert!(matches!(cli.into_command(), Command::Serve(_)));
}

#[test]
fn workloads_run_hardened_as_the_images_user_with_resources() {
    let user = runtime_stage()
        .into_iter()
        .find_map(|i| i.strip_prefix("USER ").map(str::to_string))
        .unwrap();
    let uid: i64 = user.split(':').next().unwrap().parse().unwrap();
    for (what, spec) in workloads() {
        let pod = spec.security_context.as_ref().unwrap();
        assert_eq!(pod.run_as_non_root, Some(true), "{what}");
        assert_eq!(pod.run_as_user, Some(uid), "{what}: the image's user");
        assert!(
            pod.fs_group.is_some(),
            "{what}: the volume is writable by the pod's group"
        );
        assert_eq!(
            pod.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault"),
            "{what}"
        );
        let container = container(&spec);
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false), "{what}");
        assert_eq!(security.read_only_root_filesystem, Some(true), "{what}");
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_string()]),
            "{what}"
        );
        let resources = container.resources.as_ref().unwrap();
        for key in ["cpu", "memory"] {
            assert!(
                resources.requests.as_ref().unwrap().contains_key(key),
                "{what}"
            );
            assert!(
                resources.limits.as_ref().unwrap().contains_key(key),
                "{what}"
            );
        }
    }
    let deployment = deployment();
    let strategy = deployment.spec.unwrap().strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(
        strategy.rolling_update.unwrap().max_unavailable,
        Some(IntOrString::Int(0))
    );
}

/// Kubernetes sends SIGTERM and kills the pod `terminationGracePeriodSeconds` later; the server
/// must have stopped by then: `/ready` answers 503 for the shutdown delay, then in-flight
/// requests get the drain timeout.
#[test]
fn the_grace_period_covers_the_shutdown_delay_and_the_drain() {
    let deployment = deployment();
    let spec = pod_spec(&deployment);
    let secrets = tempfile::tempdir().unwrap();
    let env = pod_env(spec, "churn-api-0", secrets.path());
    let config = config::resolve(None, &|key| env.get(key).cloned(), &Flags::new()).unwrap();
    let grace = Duration::from_secs(spec.termination_grace_period_seconds.unwrap() as u64);
    let needed = config.shutdown_delay + config.drain_timeout;
    assert!(
        needed + Duration::from_secs(2) <= grace,
        "shutdown delay {:?} + drain {:?} leaves no margin in a grace period of {grace:?}",
        config.shutdown_delay,
        config.drain_timeout
    );
    // Endpoints are withdrawn when the pod starts terminating; the delay covers the time the
    // nodes take to notice, so it must not be zero.
    assert!(config.shutdown_delay >= Duration::from_secs(1));
}

/// The probes' timings are at least as tolerant as the lab's.
#[test]
fn probe_timings_are_at_least_as_tolerant_as_the_labs() {
    let deployment = deployment();
    let container = container(pod_spec(&deployment));
    let seconds = |v: Option<i32>, default: i32| v.unwrap_or(default);
    let startup = container.startup_probe.as_ref().unwrap();
    // The lab: failureThreshold 30, period 5 s: 150 s to start.
    assert!(seconds(startup.failure_threshold, 3) * seconds(startup.period_seconds, 10) >= 150);
    let liveness = container.liveness_probe.as_ref().unwrap();
    // The lab: initialDelay 10 s, period 30 s (failureThreshold 3: 90 s to be declared dead).
    assert!(seconds(liveness.initial_delay_seconds, 0) >= 10);
    assert!(seconds(liveness.period_seconds, 10) * seconds(liveness.failure_threshold, 3) >= 90);
    let readiness = container.readiness_probe.as_ref().unwrap();
    // The lab: initialDelay 5 s, period 10 s.
    assert!(
        seconds(readiness.initial_delay_seconds, 0) <= 5,
        "ready as soon as the lab"
    );
    assert!(seconds(readiness.period_seconds, 10) * seconds(readiness.failure_threshold, 3) >= 30);
    for probe in [startup, liveness, readiness] {
        assert_eq!(probe_port(probe), 8000);
        assert!(seconds(probe.timeout_seconds, 1) >= 1);
    }
}

/// The path of an HTTP probe.
pub fn probe_path(probe: &Option<Probe>) -> String {
    probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .path
        .clone()
        .unwrap()
}

/// What each probe expects of a path: (path, answers before a model serves, answers after).
fn probe_expectations() -> Vec<(String, StatusCode, StatusCode)> {
    let deployment = deployment();
    let container = container(pod_spec(&deployment));
    let path = probe_path;
    vec![
        // A startup probe fails until the app has started: a model must serve.
        (
            path(&container.startup_probe),
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK,
        ),
        // Liveness never depends on the model: a missing model must not restart the pod.
        (
            path(&container.liveness_probe),
            StatusCode::OK,
            StatusCode::OK,
        ),
        // Readiness follows the model.
        (
            path(&container.readiness_probe),
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK,
        ),
    ]
}

/// The Deployment's environment, with the directories moved to `registry` and `logs` (the
/// Secret's files to `secrets` beside `registry`) and the server on a free loopback port;
/// `settings` override, by key.
fn deployment_config(registry: &Path, logs: &Path, settings: &[(&'static str, &str)]) -> Config {
    let deployment = deployment();
    let secrets = registry.with_file_name("secrets");
    let env = pod_env(pod_spec(&deployment), "churn-api-0", &secrets);
    let mut flags: Flags = [
        ("registry_dir", registry.display().to_string()),
        ("log_dir", logs.display().to_string()),
        ("host", "127.0.0.1".to_string()),
        ("port", "0".to_string()),
        ("poll_interval_ms", "100".to_string()),
        ("shutdown_delay_ms", "0".to_string()),
    ]
    .into_iter()
    .collect();
    if let Some(seed) = env.get("MODELHOST_SEED_DIR").filter(|s| !s.is_empty()) {
        // The image's seed is the repository's registry directory.
        assert_eq!(seed, "/opt/modelhost/registry");
        flags.insert(
            "seed_dir",
            repo_root().join("registry").display().to_string(),
        );
    }
    for (key, value) in settings {
        flags.insert(*key, value.to_string());
    }
    config::resolve(None, &|key| env.get(key).cloned(), &flags).unwrap()
}

async fn status(client: &reqwest::Client, url: &str) -> StatusCode {
    client.get(url).send().await.unwrap().status()
}

/// On a registry with no model (the image's seed switched off, as the ConfigMap explains), every
/// probe path answers as its probe expects before and after the first model arrives.
#[tokio::test]
async fn probe_paths_answer_as_the_probes_expect_on_an_empty_registry() {
    let root = tempfile::tempdir().unwrap();
    let registry = root.path().join("registry");
    let config = deployment_config(&registry, &root.path().join("logs"), &[("seed_dir", "")]);
    let server = serve::start(&config).await.unwrap();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", server.addr);

    // The volume is not mounted yet: the registry directory does not exist.
    for (path, before, _) in probe_expectations() {
        assert_eq!(
            status(&client, &url(&path)).await,
            before,
            "{path} before the mount"
        );
    }
    std::fs::create_dir_all(registry.join("churn")).unwrap();
    for (path, before, _) in probe_expectations() {
        assert_eq!(
            status(&client, &url(&path)).await,
            before,
            "{path} with no model"
        );
    }
    publish(&registry, &churn_artifact("v-first", 0.0));
    let all_pass = eventually(Duration::from_secs(20), || async {
        let mut ok = true;
        for (path, _, after) in probe_expectations() {
            ok &= status(&client, &url(&path)).await == after;
        }
        ok
    })
    .await;
    assert!(all_pass, "the probes did not pass once a model arrived");
    server.shutdown().await.unwrap();
}

/// With the image's settings, an empty volume is seeded with the image's default model, so
/// every probe passes without waiting for the training Job; a volume that already has a model
/// keeps it.
#[tokio::test]
async fn the_image_seeds_an_empty_volume_and_keeps_an_existing_model() {
    let default_version = {
        let text =
            std::fs::read_to_string(repo_root().join("registry/churn/history.jsonl")).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        line["version"].as_str().unwrap().to_string()
    };
    let client = reqwest::Client::new();

    let root = tempfile::tempdir().unwrap();
    let registry = root.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let config = deployment_config(&registry, &root.path().join("logs"), &[]);
    assert!(config.seed_dir.is_some(), "the image seeds by default");
    let server = serve::start(&config).await.unwrap();
    let all_pass = eventually(Duration::from_secs(20), || async {
        let mut ok = true;
        for (path, _, after) in probe_expectations() {
            ok &= status(&client, &format!("http://{}{path}", server.addr)).await == after;
        }
        ok
    })
    .await;
    assert!(all_pass, "the seeded model did not serve");
    let ready: serde_json::Value = client
        .get(format!("http://{}/ready", server.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["version"], default_version.as_str());
    server.shutdown().await.unwrap();

    // A second start on the same volume, after the Job trained another model: it is kept.
    publish(&registry, &churn_artifact("v-trained", 0.3));
    let server = serve::start(&config).await.unwrap();
    let served = eventually(Duration::from_secs(20), || async {
        let response = client
            .get(format!("http://{}/ready", server.addr))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        body["version"] == "v-trained"
    })
    .await;
    assert!(served, "the volume's own model must win over the seed");
    server.shutdown().await.unwrap();
}

/// The image's build stage caches dependencies by copying every workspace manifest first; a
/// member it forgets would make `docker build` fail.
#[test]
fn the_dockerfile_dependency_layer_covers_every_workspace_member() {
    let workspace: toml::Table = std::fs::read_to_string(repo_root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = workspace["workspace"]["members"].as_array().unwrap();
    let instructions = dockerfile_instructions();
    let text = instructions.join("\n");
    for member in members {
        let member = member.as_str().unwrap();
        let copy = format!("COPY {member}/Cargo.toml {member}/");
        assert!(text.contains(&copy), "the Dockerfile lacks `{copy}`");
        let manifest: toml::Table =
            std::fs::read_to_string(repo_root().join(member).join("Cargo.toml"))
                .unwrap()
                .parse()
                .unwrap();
        // Every explicitly declared target needs a stub source in the dependency layer.
        for kind in ["bin", "bench", "example", "test"] {
            for target in manifest
                .get(kind)
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
            {
                let name = target["name"].as_str().unwrap();
                let path = match target.get("path").and_then(|p| p.as_str()) {
                    Some(path) => path.to_string(),
                    None => match kind {
                        "bin" => format!("src/bin/{name}.rs"),
                        "bench" => format!("benches/{name}.rs"),
                        "example" => format!("examples/{name}.rs"),
                        _ => format!("tests/{name}.rs"),
                    },
                };
                let stub = format!("{member}/{path}");
                assert!(
                    text.contains(&stub),
                    "the dependency layer has no stub for {stub}"
                );
            }
        }
    }
    // The kernel template is committed, so the image builds without the wasm target, and the
    // dependency layer has build.rs (its build-dependencies are part of the feature set).
    assert!(!text.contains("wasm32-unknown-unknown"));
    assert!(text.contains("COPY host/Cargo.toml host/build.rs host/"));
    let toolchain = std::fs::read_to_string(repo_root().join("rust-toolchain.toml")).unwrap();
    let toolchain: toml::Table = toolchain.parse().unwrap();
    let channel = toolchain["toolchain"]["channel"].as_str().unwrap();
    assert!(
        instructions
            .iter()
            .any(|i| i.starts_with(&format!("FROM rust:{channel}-"))),
        "the build stage uses the pinned toolchain {channel}"
    );
}
