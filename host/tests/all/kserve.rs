//! modelhost as a KServe serving runtime: `k8s/kserve/` against the binary. The
//! ClusterServingRuntime's container (parsed into the Kubernetes API's `Container`) is played
//! as KServe plays it: `{{.Name}}` replaced by an InferenceService's name, its args through the
//! real command line parser, its environment over the image's, `/mnt/models` a read-only
//! directory holding `model.wasm` itself, then `serve::start`. CI validates the manifests
//! against KServe's CRD schemas (`.ci/kserve/`); this checks them against modelhost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use modelhost::cli::{Cli, Command, KSERVE_FLAGS};
use modelhost::config::{self, Config, DECLARED};
use modelhost::serve;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{churn_artifact, eventually};
use crate::k8s::{
    container, container_env, deployment, manifest, map_path, mounts, pod_spec, probe_path,
    repo_root,
};
use crate::oip::{customers, get, infer_inputs};

/// Where KServe puts the model's directory (its storage initializer, or the PVC's mount).
const MOUNT: &str = "/mnt/models";

/// The parts of a ClusterServingRuntime (serving.kserve.io/v1alpha1) this test reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServingRuntime {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: RuntimeSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeSpec {
    supported_model_formats: Vec<ModelFormat>,
    protocol_versions: Vec<String>,
    containers: Vec<Container>,
    #[serde(default)]
    volumes: Vec<k8s_openapi::api::core::v1::Volume>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelFormat {
    name: String,
    version: Option<String>,
    auto_select: Option<bool>,
}

/// The parts of an InferenceService (serving.kserve.io/v1beta1) this test reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InferenceService {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: IsvcSpec,
}

#[derive(Debug, Deserialize)]
struct IsvcSpec {
    predictor: Predictor,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Predictor {
    canary_traffic_percent: Option<i64>,
    model: PredictorModel,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PredictorModel {
    model_format: ModelFormat,
    runtime: Option<String>,
    protocol_version: Option<String>,
    storage_uri: String,
}

fn kserve<T: serde::de::DeserializeOwned>(file: &str) -> T {
    manifest(&format!("kserve/{file}"))
}

fn runtime() -> ServingRuntime {
    kserve("clusterservingruntime.yaml")
}

/// The example InferenceServices: (file, resource).
fn inference_services() -> Vec<(&'static str, InferenceService)> {
    ["inferenceservice.yaml", "inferenceservice-canary.yaml"]
        .into_iter()
        .map(|file| (file, kserve(file)))
        .collect()
}

/// The runtime's one container.
fn runtime_container() -> Container {
    let runtime = runtime();
    assert_eq!(runtime.spec.containers.len(), 1, "one container");
    runtime.spec.containers[0].clone()
}

/// The runtime's args as KServe passes them for the InferenceService `name`.
fn args_for(name: &str) -> Vec<String> {
    let args = runtime_container().args.unwrap();
    assert!(
        args.iter().any(|a| a.contains("{{.Name}}")),
        "the model's name is KServe's {{{{.Name}}}}: {args:?}"
    );
    args.iter()
        .map(|arg| arg.replace("{{.Name}}", name))
        .collect()
}

/// `args` (the program name first) through the real parser, as `serve` flags.
fn serve_flags(args: impl IntoIterator<Item = String>) -> config::Flags {
    let cli = Cli::try_parse_from(std::iter::once("modelhost".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("the args do not parse: {e}"));
    let Command::Serve(serve) = cli.into_command() else {
        panic!("the runtime does not run `serve`");
    };
    assert!(serve.config.is_none());
    serve.flags
}

/// The port of an HTTP probe (a number: Knative accepts no port names).
fn probe_port(probe: &Option<Probe>) -> i32 {
    match &probe.as_ref().unwrap().http_get.as_ref().unwrap().port {
        IntOrString::Int(port) => *port,
        IntOrString::String(name) => panic!("probe port {name}: use the number"),
    }
}

/// The runtime's configuration for the InferenceService `name` on this machine: its args and
/// environment over the image's, with `/mnt/models` at `model_dir`, the mounted volumes under
/// `scratch`, and port 0 on loopback instead of the runtime's port.
fn runtime_config(name: &str, model_dir: &Path, scratch: &Path) -> Config {
    let container = runtime_container();
    let mut moved = vec![(PathBuf::from(MOUNT), model_dir.to_path_buf())];
    for mount in container.volume_mounts.iter().flatten() {
        let outside = scratch.join(&mount.name);
        std::fs::create_dir_all(&outside).unwrap();
        moved.push((PathBuf::from(&mount.mount_path), outside));
    }
    let args = args_for(name)
        .into_iter()
        .map(|arg| match arg.split_once('=') {
            Some((flag, value)) => format!("{flag}={}", map_path(&moved, value)),
            None => arg,
        })
        .collect::<Vec<_>>();
    let mut flags = serve_flags(args);
    assert_eq!(flags.insert("port", "0".to_string()), Some("8080".into()));
    flags.insert("host", "127.0.0.1".to_string());
    flags.insert("poll_interval_ms", "100".to_string());
    flags.insert("shutdown_delay_ms", "0".to_string());
    let env: BTreeMap<String, String> = container_env(&container, "churn-predictor-0")
        .into_iter()
        .map(|(key, value)| {
            let value = map_path(&moved, &value);
            (key, value)
        })
        .collect();
    config::resolve(None, &|key| env.get(key).cloned(), &flags).unwrap()
}

#[test]
fn the_runtime_serves_modelhosts_format_over_v2_and_the_inference_services_use_it() {
    let runtime = runtime();
    assert_eq!(runtime.api_version, "serving.kserve.io/v1alpha1");
    assert_eq!(runtime.kind, "ClusterServingRuntime");
    assert_eq!(runtime.metadata.namespace, None, "cluster-scoped");
    let runtime_name = runtime.metadata.name.clone().unwrap();
    let wasm = ModelFormat {
        name: "modelhost-wasm".into(),
        version: Some(modelhost_abi::ABI_VERSION.to_string()),
        auto_select: Some(true),
    };
    assert!(
        runtime.spec.supported_model_formats.contains(&wasm),
        "{:?}",
        runtime.spec.supported_model_formats
    );
    assert_eq!(runtime.spec.protocol_versions, ["v2"]);

    // The PVC and the sub path the Deployment serves the registry from.
    let claim: PersistentVolumeClaim = manifest("pvc.yaml");
    let claim = claim.metadata.name.unwrap();
    let serving = mounts(container(pod_spec(&deployment())));
    let registry_sub_path = serving
        .iter()
        .find(|(_, mount)| **mount == "/data/registry")
        .map(|(sub, _)| sub.clone())
        .unwrap();

    let mut canaries = 0;
    let mut storage = BTreeSet::new();
    for (file, isvc) in inference_services() {
        assert_eq!(isvc.api_version, "serving.kserve.io/v1beta1", "{file}");
        assert_eq!(isvc.kind, "InferenceService", "{file}");
        assert_eq!(
            isvc.metadata.namespace.as_deref(),
            Some("churn-mlops"),
            "{file}"
        );
        let name = isvc.metadata.name.unwrap();
        let model = &isvc.spec.predictor.model;
        assert_eq!(
            model.runtime.as_deref(),
            Some(runtime_name.as_str()),
            "{file}"
        );
        assert!(
            runtime.spec.supported_model_formats.iter().any(|f| {
                f.name == model.model_format.name && f.version == model.model_format.version
            }),
            "{file}: model format {:?} is not the runtime's",
            model.model_format
        );
        assert_eq!(model.protocol_version.as_deref(), Some("v2"), "{file}");
        // pvc://<claim>/<registry sub path>/<model folder>: a folder the registry holds.
        let path = model
            .storage_uri
            .strip_prefix(&format!("pvc://{claim}/{registry_sub_path}/"))
            .unwrap_or_else(|| panic!("{file}: {} is not in the registry", model.storage_uri));
        assert!(!path.is_empty() && !path.contains('/'), "{file}: {path}");
        storage.insert(model.storage_uri.clone());
        // The name the model answers under is a valid MODEL_NAME.
        let flags = serve_flags(args_for(&name));
        let config = config::resolve(None, &|_| None, &flags).unwrap();
        assert_eq!(config.model_name, name, "{file}");
        if let Some(percent) = isvc.spec.predictor.canary_traffic_percent {
            assert!((1..100).contains(&percent), "{file}: {percent}");
            canaries += 1;
        }
    }
    assert_eq!(canaries, 1, "one example is a canary");
    assert!(storage.contains("pvc://churn-storage/registry/churn"));
    assert_eq!(storage.len(), 2, "the canary serves another model");

    // `kubectl apply -k k8s/kserve` applies the runtime and the first InferenceService; the
    // lab's `kubectl apply -k k8s/` none of it.
    let text = std::fs::read_to_string(repo_root().join("k8s/kserve/kustomization.yaml")).unwrap();
    let kustomization: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(
        kustomization["resources"],
        json!(["clusterservingruntime.yaml", "inferenceservice.yaml"])
    );
    let text = std::fs::read_to_string(repo_root().join("k8s/kustomization.yaml")).unwrap();
    assert!(!text.contains("kserve"), "k8s/ must not include k8s/kserve");
}

#[test]
fn the_runtime_runs_hardened_like_the_deployment() {
    let deployment = deployment();
    let spec = pod_spec(&deployment);
    let pod = spec.security_context.as_ref().unwrap();
    let served = container(spec);
    let expected = served.security_context.as_ref().unwrap();
    let container = runtime_container();
    let security = container.security_context.as_ref().unwrap();
    // A ServingRuntime has no pod security context: the pod's settings are the container's.
    assert_eq!(security.run_as_non_root, pod.run_as_non_root);
    assert_eq!(security.run_as_user, pod.run_as_user);
    assert_eq!(security.run_as_group, pod.run_as_group);
    assert_eq!(security.seccomp_profile, pod.seccomp_profile);
    assert_eq!(
        security.allow_privilege_escalation,
        expected.allow_privilege_escalation
    );
    assert_eq!(
        security.read_only_root_filesystem,
        expected.read_only_root_filesystem
    );
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.capabilities, expected.capabilities);
    assert_eq!(container.resources, served.resources);
    assert_eq!(container.image, served.image);
    assert!(container.command.is_none(), "the image's entrypoint runs");

    // With a read-only root, everything the server writes is on a mounted volume: the
    // prediction log's directory is the pod's own scratch volume.
    let env = container_env(&container, "churn-predictor-0");
    let log_dir = &env[DECLARED.log_dir.env];
    let runtime = runtime();
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == *log_dir)
        .unwrap_or_else(|| panic!("LOG_DIR {log_dir} is not a mounted volume"));
    let volume = runtime
        .spec
        .volumes
        .iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    assert!(volume.empty_dir.is_some(), "{volume:?}");
}

#[test]
fn the_runtime_args_are_kserves_and_mean_model_name_model_dir_and_port() {
    let args = args_for("churn");
    for (_, flag) in KSERVE_FLAGS {
        assert!(
            args.iter().any(|a| a.starts_with(&format!("--{flag}="))),
            "--{flag}: {args:?}"
        );
    }
    let container = runtime_container();
    let env = container_env(&container, "churn-predictor-0");
    let flags = serve_flags(args);
    let config = config::resolve(None, &|key| env.get(key).cloned(), &flags).unwrap();
    assert_eq!(config.model_name, "churn");
    assert_eq!(config.model_dir(), PathBuf::from(MOUNT));
    assert!(config.model_dir_given);
    assert_eq!(
        config.seed_dir, None,
        "the image's seed is not for KServe's directory"
    );
    // The probes and the container port are the port the server listens on.
    let ports: Vec<i32> = container
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [i32::from(config.port)]);
    assert_eq!(config.port, 8080);
    assert_eq!(probe_port(&container.readiness_probe), 8080);
    assert_eq!(probe_port(&container.liveness_probe), 8080);
    assert_eq!(probe_path(&container.readiness_probe), "/v2/health/ready");
    assert_eq!(probe_path(&container.liveness_probe), "/v2/health/live");

    // Both of argparse's forms, and the settings' own flags, mean the same.
    let spaced = serve_flags(
        ["--model_name", "x", "--model_dir", "/m", "--http_port", "9"].map(String::from),
    );
    let own = serve_flags(["--model-name=x", "--model-dir=/m", "--port=9"].map(String::from));
    assert_eq!(spaced, own);
    // `serve --help` lists KServe's spellings beside the flags.
    let mut cli = Cli::command();
    let help = cli
        .find_subcommand_mut("serve")
        .unwrap()
        .render_long_help()
        .to_string();
    for (_, flag) in KSERVE_FLAGS {
        assert!(help.contains(&format!("--{flag}")), "--{flag} in {help}");
    }
}

async fn status(client: &reqwest::Client, url: &str) -> StatusCode {
    client.get(url).send().await.unwrap().status()
}

/// Makes `dir` and its files read-only (or writable again), as KServe's mount is.
fn set_read_only(dir: &Path, read_only: bool) {
    use std::os::unix::fs::PermissionsExt;
    let (dirs, files) = if read_only {
        (0o555, 0o444)
    } else {
        (0o755, 0o644)
    };
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = if path.is_dir() { dirs } else { files };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dirs)).unwrap();
}

/// Every file under `dir`, with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(contents(&path));
        } else {
            found.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    found
}

/// A new model.wasm arrives in `dir` as an atomic rename, the way a PVC's writer (train,
/// publish, rollback) replaces it; the directory is read-only again afterwards.
fn replace_model(dir: &Path, bytes: &[u8]) {
    set_read_only(dir, false);
    modelhost::registry::write_atomic(&dir.join("model.wasm"), bytes).unwrap();
    set_read_only(dir, true);
}

/// The runtime's container on a read-only `/mnt/models`: the probes answer as KServe expects
/// before and after the model arrives, v2 infer answers under the InferenceService's name, a
/// new model.wasm is swapped in, a broken one refused, and the server writes nothing in the
/// directory.
#[tokio::test]
async fn the_runtime_serves_a_read_only_model_dir_and_swaps_in_a_new_model() {
    let root = tempfile::tempdir().unwrap();
    let model_dir = root.path().join("models");
    std::fs::create_dir(&model_dir).unwrap();
    set_read_only(&model_dir, true);
    let config = runtime_config("churn-kserve", &model_dir, &root.path().join("scratch"));
    assert_eq!(config.model_dir(), model_dir);
    let server = serve::start(&config).await.unwrap();
    let container = runtime_container();
    let ready = probe_path(&container.readiness_probe);
    let live = probe_path(&container.liveness_probe);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", server.addr);

    // No model yet: alive, not ready.
    assert_eq!(status(&client, &url(&live)).await, StatusCode::OK);
    assert_eq!(
        status(&client, &url(&ready)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    replace_model(&model_dir, &churn_artifact("v-kserve-1", 0.0));
    let before = contents(&model_dir);
    let serving = eventually(Duration::from_secs(20), || async {
        status(&client, &url(&ready)).await == StatusCode::OK
    })
    .await;
    assert!(serving, "the model in the read-only directory never served");
    assert_eq!(status(&client, &url(&live)).await, StatusCode::OK);
    let infer = || async {
        let response = client
            .post(url("/v2/models/churn-kserve/infer"))
            .json(&json!({"inputs": infer_inputs(&customers())}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["model_name"], "churn-kserve");
        body["model_version"].as_str().unwrap().to_string()
    };
    assert_eq!(infer().await, "v-kserve-1");
    assert_eq!(
        status(&client, &url("/v2/models/churn-kserve/ready")).await,
        StatusCode::OK
    );

    // A new model.wasm (a PVC written by train or publish, a modelcar's new image) swaps in.
    replace_model(&model_dir, &churn_artifact("v-kserve-2", 0.3));
    let after = contents(&model_dir);
    let swapped = eventually(Duration::from_secs(20), || async {
        infer().await == "v-kserve-2"
    })
    .await;
    assert!(swapped, "the new model.wasm never served");

    // Nothing was refused, and nothing written: the directory holds what was put there.
    let (_, model) = get(&url("/model")).await;
    assert_eq!(model["last_error"], Value::Null, "{model}");
    assert_eq!(model["path"], json!(model_dir.join("model.wasm")));
    assert_eq!(contents(&model_dir), after);
    assert_ne!(before, after);

    // A broken model.wasm is refused (reported, not recorded in the directory) and the
    // serving model stays.
    replace_model(&model_dir, b"not a wasm module");
    let broken = contents(&model_dir);
    let refused = eventually(Duration::from_secs(20), || async {
        get(&url("/model")).await.1["last_error"].is_string()
    })
    .await;
    assert!(refused, "the broken model.wasm was never refused");
    assert_eq!(infer().await, "v-kserve-2");
    assert_eq!(status(&client, &url(&ready)).await, StatusCode::OK);
    server.shutdown().await.unwrap();
    assert_eq!(contents(&model_dir), broken, "the server wrote nothing");
    set_read_only(&model_dir, false);
}
