//! The monitoring component `k8s/monitoring/` against the server: every metric its Grafana
//! dashboard and its alert rules query is one a real server exposes on `/metrics`, the drift
//! gauges carry the live drift report's figures, the PrometheusRule carries the rules file
//! `promtool` checks, and the scrape configuration reaches the API's port with its token.
//! (`promtool check rules` and `promtool test rules` run in CI, see `.ci/run`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use crate::k8s::{manifest, repo_root};

fn component_file(name: &str) -> PathBuf {
    repo_root().join("k8s/monitoring").join(name)
}

/// A YAML or JSON file of the component as a JSON value.
fn component_value(name: &str) -> Value {
    let path = component_file(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric names a PromQL expression selects: every identifier outside string literals that
/// starts with `modelhost_` (label names, functions and keywords never do). A name inside a
/// label value (`{route="modelhost_x"}`) is text, not a selector, and is skipped.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for (_, d) in chars.by_ref() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' if c != '`' => escaped = true,
                        _ if d == c => break,
                        _ => {}
                    }
                }
            }
            _ if is_start(c) => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if !is_part(d) {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                let word = &expr[i..end];
                if word.starts_with("modelhost_") {
                    names.insert(word.to_string());
                }
            }
            // A number such as `1e3` or a duration such as `5m` is not a name.
            _ if c.is_ascii_digit() => {
                while chars.peek().is_some_and(|&(_, d)| is_part(d) || d == '.') {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    names
}

/// Every query string of a Grafana dashboard: panel targets' `expr` and template variables'
/// `query` (a string, or an object holding one).
fn dashboard_queries(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query", Value::String(query)) => out.push(query.clone()),
                    _ => dashboard_queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| dashboard_queries(item, out)),
        _ => {}
    }
}

/// Every `expr` of a rules file's `groups`.
fn rule_exprs(groups: &Value) -> Vec<String> {
    groups
        .as_array()
        .expect("groups is a list")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("a group's rules").iter())
        .map(|rule| rule["expr"].as_str().expect("a rule's expr").to_string())
        .collect()
}

/// The sample names of an exposition (`name{labels} value` or `name value`), which are the
/// names Prometheus stores: a counter family `x` as `x_total`, a histogram `h` as `h_bucket`,
/// `h_sum` and `h_count`.
fn exposed_samples(text: &str) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut samples: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).expect("a sample line");
        let (labels, value) = match line[name_end..].strip_prefix('{') {
            Some(rest) => {
                let close = rest.rfind('}').expect("closed labels");
                (rest[..close].to_string(), rest[close + 1..].trim())
            }
            None => (String::new(), line[name_end..].trim()),
        };
        let value = value.split(' ').next().unwrap().parse().unwrap_or(f64::NAN);
        samples
            .entry(line[..name_end].to_string())
            .or_default()
            .push((labels, value));
    }
    samples
}

/// Serves the churn model and answers `rows`, then returns `/metrics` and `/monitoring/drift`.
async fn scrape_after(rows: &[Value]) -> (String, Value) {
    let registry = temp_registry(Some(&churn_artifact("v1", 0.0)));
    let server = start_server(registry.path()).await;
    assert!(wait_for_version(&server, "v1", Duration::from_secs(10)).await);
    let base = base_url(&server);
    let client = reqwest::Client::new();
    for row in rows {
        let response = client
            .post(format!("{base}/predict"))
            .json(row)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let drift: Value = client
        .get(format!("{base}/monitoring/drift"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    (metrics, drift)
}

#[test]
fn metric_names_are_read_from_selectors_not_from_strings_numbers_or_functions() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(modelhost_a_bucket{route=~"modelhost_not|x", le!='modelhost_no'}[5m])))
           / on (job) modelhost_b:ratio unless modelhost_c_total offset 1h > 1e3"#,
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "modelhost_a_bucket".to_string(),
            "modelhost_b:ratio".to_string(),
            "modelhost_c_total".to_string(),
        ])
    );
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_rules_query_is_exposed() {
    let mut queries = Vec::new();
    dashboard_queries(&component_value("dashboard.json"), &mut queries);
    assert!(queries.len() >= 10, "the dashboard's queries: {queries:?}");
    let rules = rule_exprs(&component_value("rules.yaml")["groups"]);
    assert!(!rules.is_empty());
    let used: BTreeSet<String> = queries
        .iter()
        .chain(&rules)
        .flat_map(|q| metric_names(q))
        .collect();
    for family in [
        "modelhost_drift_z",
        "modelhost_drift_psi",
        "modelhost_model_info",
        "modelhost_http_request_duration_seconds_bucket",
        "modelhost_prediction_log_lines_dropped_total",
        "modelhost_wasm_call_errors_total",
    ] {
        assert!(used.contains(family), "{family} is not queried: {used:?}");
    }

    // A prediction makes every series exist: the request histogram, the drift figures.
    let (text, _) = scrape_after(&[example_customer()]).await;
    let exposed = exposed_samples(&text);
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !exposed.contains_key(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not on /metrics: {missing:?}\n(exposed: {:?})",
        exposed.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_drift_gauges_are_the_live_drift_reports_figures() {
    let (before, _) = scrape_after(&[]).await;
    let before = exposed_samples(&before);
    assert!(!before.contains_key("modelhost_drift_z"), "{before:?}");
    assert!(!before.contains_key("modelhost_drift_psi"), "{before:?}");
    assert_eq!(
        before["modelhost_drift_window_predictions"],
        [(String::new(), 0.0)]
    );

    let rows: Vec<Value> = (0..6)
        .map(|i| {
            let mut row = example_customer();
            row["tenure_months"] = json!(3 + 20 * i);
            row["plan_type"] = json!(if i % 3 == 0 { "premium" } else { "basic" });
            row
        })
        .collect();
    let (text, report) = scrape_after(&rows).await;
    let exposed = exposed_samples(&text);
    assert_eq!(
        exposed["modelhost_drift_window_predictions"],
        [(String::new(), 6.0)]
    );
    for (family, section, figure) in [
        ("modelhost_drift_z", "numeric", "z"),
        ("modelhost_drift_psi", "categorical", "psi"),
    ] {
        let expected: BTreeMap<String, f64> = report[section]
            .as_object()
            .unwrap()
            .iter()
            .map(|(feature, figures)| {
                (
                    format!("feature=\"{feature}\""),
                    figures[figure].as_f64().unwrap(),
                )
            })
            .collect();
        assert!(!expected.is_empty(), "{report}");
        let got: BTreeMap<String, f64> = exposed[family].iter().cloned().collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{family}: one series per feature"
        );
        for (labels, value) in &expected {
            let exported = got[labels];
            assert!(
                (exported - value).abs() <= 1e-9 * value.abs().max(1.0),
                "{family}{{{labels}}} = {exported}, the report says {value}"
            );
        }
    }
}

#[test]
fn the_prometheus_rule_carries_the_rules_file() {
    let rule = component_value("prometheusrule.yaml");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["spec"]["groups"],
        component_value("rules.yaml")["groups"],
        "prometheusrule.yaml's spec.groups must equal rules.yaml's groups (rules.yaml is the source)"
    );
}

#[test]
fn every_alert_has_a_promtool_test_that_fires_it_and_one_that_does_not() {
    let alerts: BTreeSet<String> = component_value("rules.yaml")["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    let tests = component_value("tests/rules.test.yaml");
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests["tests"].as_array().unwrap() {
        for check in case["alert_rule_test"].as_array().unwrap() {
            let name = check["alertname"].as_str().unwrap().to_string();
            let expected = check["exp_alerts"].as_array().map_or(0, Vec::len);
            if expected > 0 { &mut fired } else { &mut quiet }.insert(name);
        }
    }
    assert_eq!(fired, alerts, "alerts with a firing expectation");
    assert_eq!(quiet, alerts, "alerts with a not-firing expectation");
}

#[test]
fn the_scrape_configuration_reaches_the_api_with_its_token() {
    let service: Service = manifest("service.yaml");
    let secret: Secret = manifest("secret.yaml");
    let deployment: Deployment = manifest("deployment.yaml");
    let monitor = component_value("servicemonitor.yaml");
    let service_patch = component_value("service-patch.yaml");
    let deployment_patch = component_value("deployment-patch.yaml");

    // The ServiceMonitor selects the API's Service by the label the component's patch gives it.
    assert_eq!(
        service_patch["metadata"]["name"],
        json!(service.metadata.name)
    );
    let service_labels = service_patch["metadata"]["labels"].as_object().unwrap();
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(service_labels.get(key), Some(value), "selector label {key}");
    }
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([service.metadata.namespace])
    );
    let service_ports = service.spec.unwrap().ports.unwrap();
    let endpoint = &monitor["spec"]["endpoints"][0];
    let port = service_ports
        .iter()
        .find(|p| p.name.as_deref() == endpoint["port"].as_str())
        .unwrap_or_else(|| panic!("the Service has no port named {}", endpoint["port"]));
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    let http_port = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .unwrap()
        .container_port;
    assert!(
        matches!(
            &port.target_port,
            Some(IntOrString::Int(p)) if *p == http_port
        ) || matches!(&port.target_port, Some(IntOrString::String(name)) if name == "http")
    );
    assert_eq!(endpoint["path"], "/metrics");

    // The token is the Secret's MONITORING_TOKEN, the one the server reads.
    let credentials = &endpoint["authorization"]["credentials"];
    assert_eq!(endpoint["authorization"]["type"], "Bearer");
    assert_eq!(credentials["name"], json!(secret.metadata.name));
    let key = credentials["key"].as_str().unwrap();
    assert_eq!(key, "MONITORING_TOKEN");
    assert!(secret.data.unwrap().contains_key(key));

    // Without the Operator: the pod annotations name the container's port and path.
    let annotations = &deployment_patch["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(
        annotations["prometheus.io/port"],
        json!(http_port.to_string())
    );
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    // Prometheus may reach that port through the network policy the component adds.
    let policy: NetworkPolicy = serde_norway::from_str(
        &std::fs::read_to_string(component_file("networkpolicy.yaml")).unwrap(),
    )
    .unwrap();
    let ingress = policy.spec.unwrap().ingress.unwrap();
    assert!(ingress.iter().any(|rule| {
        rule.ports
            .iter()
            .flatten()
            .any(|p| p.port == Some(IntOrString::Int(http_port)))
    }));
}
