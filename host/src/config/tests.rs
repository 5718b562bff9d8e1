//! Precedence and every error path of the configuration.

use super::*;
use std::io::Write;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |key| map.get(key).cloned()
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn flags(pairs: &[(&'static str, &str)]) -> Flags {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.model_name, "churn");
    assert_eq!(config.log_level, "info");
    assert_eq!(config.port, 8000);
    assert_eq!(config.registry_dir, PathBuf::from("./registry"));
    assert_eq!(config.log_dir, PathBuf::from("./logs"));
    assert_eq!(config.monitoring_token, None);
    assert_eq!(config.wasm_timeout, Duration::from_millis(50));
    assert_eq!(config.wasm_memory_bytes, 64 << 20);
    assert_eq!(config.poll_interval, Duration::from_secs(2));
    assert_eq!(config.max_body_bytes, 1 << 20);
    assert!(config.prediction_log);
    assert_eq!(config.log_max_bytes, 50 << 20);
    assert_eq!(config.log_keep, 5);
    assert_eq!(config.drift_window, 200);
    assert_eq!(config.drift_z_threshold, 2.5);
    assert_eq!(config.drift_psi_threshold, 0.2);
    assert_eq!(config.shutdown_delay, Duration::from_secs(3));
    assert_eq!(config.drain_timeout, Duration::from_secs(20));
}

#[test]
fn precedence_is_defaults_toml_env_flags() {
    let file = toml_file(
        "port = 7000\nmodel_name = \"from-toml\"\nlog_level = \"warn\"\nregistry_dir = \"/toml\"\n",
    );
    let env = env_of(&[
        ("PORT", "7001"),
        ("MODEL_NAME", "from-env"),
        ("LOG_LEVEL", "debug"),
    ]);
    let config = resolve(Some(file.path()), &env, &flags(&[("port", "7002")])).unwrap();
    assert_eq!(config.port, 7002, "flag beats env and toml");
    assert_eq!(config.model_name, "from-env", "env beats toml");
    assert_eq!(config.log_level, "debug");
    assert_eq!(
        config.registry_dir,
        PathBuf::from("/toml"),
        "toml beats default"
    );
    assert_eq!(
        config.log_dir,
        PathBuf::from("./logs"),
        "default when nothing is set"
    );
}

#[test]
fn bad_values_name_the_key_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "PORT",
            "eighty",
            "invalid PORT=\"eighty\": expected a whole number from 0 to 65535",
        ),
        ("PORT", "70000", "invalid PORT=\"70000\""),
        ("MODEL_NAME", "../etc", "invalid MODEL_NAME=\"../etc\""),
        ("MODEL_NAME", "", "invalid MODEL_NAME=\"\""),
        ("LOG_LEVEL", "loud=", "invalid LOG_LEVEL=\"loud=\""),
        ("LOG_LEVEL", "verbose", "invalid LOG_LEVEL=\"verbose\""),
        ("LOG_LEVEL", "info,modelhost=lots", "invalid LOG_LEVEL"),
        ("LOG_FORMAT", "xml", "invalid LOG_FORMAT=\"xml\""),
        ("HOST", "localhost:80", "invalid HOST=\"localhost:80\""),
        ("REGISTRY_DIR", " ", "invalid REGISTRY_DIR=\" \""),
        (
            "MODELHOST_WASM_TIMEOUT_MS",
            "0",
            "invalid MODELHOST_WASM_TIMEOUT_MS=\"0\"",
        ),
        (
            "MODELHOST_WASM_MEMORY_MIB",
            "-1",
            "invalid MODELHOST_WASM_MEMORY_MIB=\"-1\"",
        ),
        (
            "MODELHOST_MAX_CONCURRENCY",
            "lots",
            "invalid MODELHOST_MAX_CONCURRENCY",
        ),
        (
            "MODELHOST_POLL_INTERVAL_MS",
            "5",
            "invalid MODELHOST_POLL_INTERVAL_MS",
        ),
        (
            "MODELHOST_MAX_BODY_BYTES",
            "1",
            "invalid MODELHOST_MAX_BODY_BYTES",
        ),
        (
            "MODELHOST_PREDICTION_LOG",
            "yes",
            "invalid MODELHOST_PREDICTION_LOG=\"yes\": expected true or false",
        ),
        (
            "MODELHOST_LOG_MAX_MIB",
            "0",
            "invalid MODELHOST_LOG_MAX_MIB=\"0\"",
        ),
        (
            "MODELHOST_LOG_KEEP",
            "-2",
            "invalid MODELHOST_LOG_KEEP=\"-2\"",
        ),
        (
            "MODELHOST_DRIFT_WINDOW",
            "0",
            "invalid MODELHOST_DRIFT_WINDOW=\"0\"",
        ),
        (
            "MODELHOST_DRIFT_Z_THRESHOLD",
            "NaN",
            "invalid MODELHOST_DRIFT_Z_THRESHOLD=\"NaN\": expected a positive number",
        ),
        (
            "MODELHOST_DRIFT_PSI_THRESHOLD",
            "-0.1",
            "invalid MODELHOST_DRIFT_PSI_THRESHOLD=\"-0.1\"",
        ),
        (
            "MODELHOST_SHUTDOWN_DELAY_MS",
            "soon",
            "invalid MODELHOST_SHUTDOWN_DELAY_MS=\"soon\"",
        ),
        (
            "MODELHOST_DRAIN_TIMEOUT_MS",
            "9999999",
            "invalid MODELHOST_DRAIN_TIMEOUT_MS=\"9999999\"",
        ),
    ];
    for (key, value, expected) in cases {
        let err = resolve(None, &env_of(&[(key, value)]), &Flags::new()).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with(expected), "{key}={value}: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[test]
fn log_level_takes_levels_and_directives() {
    for filter in [
        "info",
        "DEBUG",
        "warn,modelhost=debug",
        "modelhost::watch=trace",
    ] {
        let config = resolve(None, &env_of(&[("LOG_LEVEL", filter)]), &Flags::new()).unwrap();
        assert_eq!(config.log_level, filter);
    }
}

#[test]
fn flag_errors_name_the_flag() {
    let err = resolve(None, &env_of(&[]), &flags(&[("port", "x")])).unwrap_err();
    assert!(err.to_string().starts_with("invalid --port=\"x\""), "{err}");
}

#[test]
fn a_bad_secret_is_named_but_never_printed() {
    let env = env_of(&[("MONITORING_TOKEN", " s3cr3t-value ")]);
    let err = resolve(None, &env, &Flags::new()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("MONITORING_TOKEN"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    let config = resolve(
        None,
        &env_of(&[("MONITORING_TOKEN", "s3cr3t")]),
        &Flags::new(),
    )
    .unwrap();
    assert_eq!(config.monitoring_token.as_deref(), Some("s3cr3t"));
    assert!(!format!("{config:?}").contains("s3cr3t"));
}

#[test]
fn unknown_toml_keys_and_bad_toml_are_errors() {
    let file = toml_file("port = 8000\nmodle_name = \"typo\"\n");
    let err = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "modle_name"),
        "{err}"
    );
    assert!(err.to_string().contains("unknown key `modle_name`"));

    let file = toml_file("port = [1, 2]\n");
    let err = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("`port` must be a string or a number"),
        "{err}"
    );

    let file = toml_file("port = \n");
    let err = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap_err();
    assert!(matches!(err, ConfigError::File { .. }), "{err}");

    let file = toml_file("port = \"abc\"\n");
    let err = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap_err();
    assert!(err.to_string().starts_with("invalid port=\"abc\""), "{err}");

    let missing = Path::new("/nonexistent/modelhost.toml");
    let err = resolve(Some(missing), &env_of(&[]), &Flags::new()).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/modelhost.toml"),
        "{err}"
    );
}

#[test]
fn every_setting_has_a_unique_key_and_env() {
    for (i, s) in SETTINGS.iter().enumerate() {
        assert!(
            SETTINGS[..i]
                .iter()
                .all(|o| o.key != s.key && o.env != s.env)
        );
    }
}

#[test]
fn watch_events_is_on_by_default_and_can_be_turned_off() {
    let config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert!(config.watch_events, "events speed up the poll by default");
    for (value, expected) in [
        ("false", false),
        ("FALSE", false),
        ("true", true),
        (" True ", true),
    ] {
        let pairs = [("MODELHOST_WATCH_EVENTS", value)];
        let env = env_of(&pairs);
        let config = resolve(None, &env, &Flags::new()).unwrap();
        assert_eq!(config.watch_events, expected, "{value:?}");
    }
    let file = toml_file("watch_events = false\n");
    let config = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap();
    assert!(!config.watch_events, "a TOML boolean");
    let config = resolve(None, &env_of(&[]), &flags(&[("watch_events", "false")])).unwrap();
    assert!(!config.watch_events, "a flag");
    let env = env_of(&[("MODELHOST_WATCH_EVENTS", "sometimes")]);
    let err = resolve(None, &env, &Flags::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid MODELHOST_WATCH_EVENTS=\"sometimes\": expected true or false"
    );
}

#[test]
fn max_batch_rows_defaults_to_1000_and_is_bounded() {
    let config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.max_batch_rows, 1000);
    let file = toml_file("max_batch_rows = 250\n");
    let config = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.max_batch_rows, 250, "from TOML");
    let env = env_of(&[("MODELHOST_MAX_BATCH_ROWS", "5000")]);
    let config = resolve(Some(file.path()), &env, &Flags::new()).unwrap();
    assert_eq!(config.max_batch_rows, 5000, "env beats TOML");
    let config = resolve(None, &env, &flags(&[("max_batch_rows", "7")])).unwrap();
    assert_eq!(config.max_batch_rows, 7, "flag beats env");
    for bad in ["0", "100001", "many"] {
        let err = resolve(
            None,
            &env_of(&[("MODELHOST_MAX_BATCH_ROWS", bad)]),
            &Flags::new(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid MODELHOST_MAX_BATCH_ROWS={bad:?}: expected a whole number from 1 to 100000"
            )
        );
    }
}

#[test]
fn seed_dir_is_unset_by_default_and_an_empty_value_turns_it_off() {
    let config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.seed_dir, None);
    let env = env_of(&[("MODELHOST_SEED_DIR", "/opt/modelhost/registry")]);
    let config = resolve(None, &env, &Flags::new()).unwrap();
    assert_eq!(
        config.seed_dir,
        Some(PathBuf::from("/opt/modelhost/registry"))
    );
    // The image sets it; a ConfigMap entry with an empty value switches seeding off.
    let config = resolve(None, &env, &flags(&[("seed_dir", "")])).unwrap();
    assert_eq!(config.seed_dir, None);
    let file = toml_file("seed_dir = \"seed\"\n");
    let config = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.seed_dir, Some(PathBuf::from("seed")));
}

#[test]
fn edge_time_limits_have_defaults_and_bounds() {
    let config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.request_timeout, Duration::from_secs(10));
    assert_eq!(config.queue_timeout, Duration::from_secs(1));
    let env = env_of(&[
        ("MODELHOST_REQUEST_TIMEOUT_MS", "250"),
        ("MODELHOST_QUEUE_TIMEOUT_MS", "0"),
    ]);
    let config = resolve(None, &env, &Flags::new()).unwrap();
    assert_eq!(config.request_timeout, Duration::from_millis(250));
    assert_eq!(config.queue_timeout, Duration::ZERO, "0 refuses at once");
    let err = resolve(
        None,
        &env_of(&[("MODELHOST_REQUEST_TIMEOUT_MS", "0")]),
        &Flags::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid MODELHOST_REQUEST_TIMEOUT_MS=\"0\": expected a whole number from 1 to 3600000"
    );
    let err = resolve(None, &env_of(&[]), &flags(&[("queue_timeout_ms", "soon")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid --queue-timeout-ms=\"soon\": expected a whole number from 0 to 600000"
    );
}

#[test]
fn bad_toml_names_its_line_and_column() {
    let file = toml_file("port = 8000\nmodel_name = \"churn\"\nlog_level = info\n");
    let err = resolve(Some(file.path()), &env_of(&[]), &Flags::new()).unwrap_err();
    assert!(err.to_string().contains(": line 3, column "), "{err}");
    assert!(
        err.to_string().contains(&file.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn the_default_registry_is_found_above_the_working_directory() {
    let checkout = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(checkout.path().join("registry/churn")).unwrap();
    let deep = checkout.path().join("host/src");
    std::fs::create_dir_all(&deep).unwrap();

    let mut config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert!(config.registry_dir_is_default);
    let found = config.locate_default_registry(&deep);
    assert_eq!(found, Some(checkout.path().join("registry")));
    assert_eq!(config.registry_dir, checkout.path().join("registry"));

    // A registry in the working directory itself wins, as `./registry` always did.
    let mut config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.locate_default_registry(checkout.path()), None);
    assert_eq!(config.registry_dir, PathBuf::from("./registry"));

    // A registry above that lacks MODEL_NAME is not taken.
    let mut config = resolve(None, &env_of(&[("MODEL_NAME", "fraud")]), &Flags::new()).unwrap();
    assert_eq!(config.locate_default_registry(&deep), None);

    // An explicit setting is never replaced, even when it does not exist.
    for (env, flags) in [
        (env_of(&[("REGISTRY_DIR", "./registry")]), Flags::new()),
        (env_of(&[]), flags(&[("registry_dir", "./registry")])),
    ] {
        let mut config = resolve(None, &env, &flags).unwrap();
        assert!(!config.registry_dir_is_default);
        assert_eq!(config.locate_default_registry(&deep), None);
        assert_eq!(config.registry_dir, PathBuf::from("./registry"));
    }
}

/// A file holding `bytes`, as a Secret volume or `echo token > file` leaves it.
fn token_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    file
}

#[test]
fn the_monitoring_token_can_come_from_a_file() {
    let config = resolve(None, &env_of(&[]), &Flags::new()).unwrap();
    assert_eq!(config.monitoring_token, None, "unset by default");
    for (content, expected) in [
        (&b"s3cr3t-from-file"[..], "s3cr3t-from-file"),
        (b"s3cr3t-from-file\n", "s3cr3t-from-file"),
        (b"s3cr3t-from-file\r\n", "s3cr3t-from-file"),
    ] {
        let file = token_file(content);
        let path = file.path().to_str().unwrap();
        let pairs = [("MONITORING_TOKEN_FILE", path)];
        let config = resolve(None, &env_of(&pairs), &Flags::new()).unwrap();
        assert_eq!(
            config.monitoring_token.as_deref(),
            Some(expected),
            "{content:?}"
        );
        assert!(!format!("{config:?}").contains("s3cr3t"), "{config:?}");

        let toml = toml_file(&format!("monitoring_token_file = {path:?}\n"));
        let config = resolve(Some(toml.path()), &env_of(&[]), &Flags::new()).unwrap();
        assert_eq!(config.monitoring_token.as_deref(), Some(expected), "TOML");
        let flags = flags(&[("monitoring_token_file", path)]);
        let config = resolve(None, &env_of(&[]), &flags).unwrap();
        assert_eq!(config.monitoring_token.as_deref(), Some(expected), "flag");
    }
    // An empty value is no file, as a ConfigMap entry `MONITORING_TOKEN_FILE: ""` means.
    let env = env_of(&[("MONITORING_TOKEN_FILE", "")]);
    assert_eq!(
        resolve(None, &env, &Flags::new()).unwrap().monitoring_token,
        None
    );
}

#[test]
fn a_bad_token_file_is_named_but_its_content_never_printed() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"s3cr3t\n\n", "must not contain white space at either end"),
        (b" s3cr3t", "must not contain white space at either end"),
        (b"s3cr3t\tvalue", "control characters"),
        (b"s3cr3t\xff", "is not UTF-8 text"),
    ];
    for (content, reason) in cases {
        let file = token_file(content);
        let path = file.path().display().to_string();
        let pairs = [("MONITORING_TOKEN_FILE", path.as_str())];
        let err = resolve(None, &env_of(&pairs), &Flags::new()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid MONITORING_TOKEN_FILE: {path}: ")),
            "{content:?}: {message}"
        );
        assert!(message.contains(reason), "{content:?}: {message}");
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }

    let too_large = token_file(&[b'a'; 4097]);
    let flags = flags(&[("monitoring_token_file", too_large.path().to_str().unwrap())]);
    let err = resolve(None, &env_of(&[]), &flags).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid --monitoring-token-file: ")
            && err.to_string().contains("larger than 4096 bytes"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("token");
    let pairs = [("MONITORING_TOKEN_FILE", missing.to_str().unwrap())];
    let err = resolve(None, &env_of(&pairs), &Flags::new()).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "invalid MONITORING_TOKEN_FILE: {}: cannot read it: ",
            missing.display()
        )),
        "{err}"
    );
    let pairs = [("MONITORING_TOKEN_FILE", dir.path().to_str().unwrap())];
    let err = resolve(None, &env_of(&pairs), &Flags::new()).unwrap_err();
    assert!(
        err.to_string().contains("cannot read it: "),
        "a directory: {err}"
    );
}

#[test]
fn the_monitoring_token_and_its_file_are_not_both_set() {
    let file = token_file(b"from-file\n");
    let path = file.path().to_str().unwrap();
    let pairs = [
        ("MONITORING_TOKEN", "s3cr3t"),
        ("MONITORING_TOKEN_FILE", path),
    ];
    let err = resolve(None, &env_of(&pairs), &Flags::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "MONITORING_TOKEN and MONITORING_TOKEN_FILE are both set: set only one of them"
    );
    // Each is named as it was set, in whichever layer.
    let toml = toml_file("monitoring_token = \"s3cr3t\"\n");
    let err = resolve(
        Some(toml.path()),
        &env_of(&[]),
        &flags(&[("monitoring_token_file", path)]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "monitoring_token and --monitoring-token-file are both set: set only one of them"
    );
}

#[test]
fn a_model_dir_is_served_as_model_name_and_replaces_the_images_registry_and_seed() {
    // The image's environment sets REGISTRY_DIR and MODELHOST_SEED_DIR; KServe passes flags.
    let env = env_of(&[
        ("REGISTRY_DIR", "/data/registry"),
        ("MODELHOST_SEED_DIR", "/opt/modelhost/registry"),
    ]);
    let given = flags(&[("model_dir", "/mnt/models"), ("model_name", "churn-isvc")]);
    let config = resolve(None, &env, &given).unwrap();
    assert_eq!(config.model_name, "churn-isvc");
    assert_eq!(config.registry_dir, PathBuf::from("/mnt"));
    assert_eq!(config.model_folder, "models");
    assert_eq!(config.model_dir(), PathBuf::from("/mnt/models"));
    assert!(config.model_dir_given);
    assert_eq!(config.seed_dir, None, "a model directory is never seeded");
    assert!(!config.registry_dir_is_default);

    // From the environment too, and a trailing `/.` or `/` names the same directory.
    for dir in ["/mnt/models/", "/mnt/models/."] {
        let pairs = [
            ("MODELHOST_MODEL_DIR", dir),
            ("REGISTRY_DIR", "/data/registry"),
        ];
        let env = env_of(&pairs);
        let config = resolve(None, &env, &Flags::new()).unwrap();
        assert_eq!(config.model_dir(), PathBuf::from("/mnt/models"), "{dir}");
    }
    // A relative directory is taken from the working directory.
    let config = resolve(None, &env_of(&[]), &flags(&[("model_dir", "models/churn")])).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(config.model_dir(), cwd.join("models/churn"));

    // Without it, the folder is the model's name, as always.
    let config = resolve(None, &env, &flags(&[("model_name", "fraud")])).unwrap();
    assert_eq!(config.model_folder, "fraud");
    assert_eq!(config.model_dir(), PathBuf::from("/data/registry/fraud"));
    assert!(!config.model_dir_given);
    assert!(config.seed_dir.is_some());
}

#[test]
fn a_model_dir_beside_a_registry_or_seed_given_on_purpose_is_an_error_naming_both() {
    let env = env_of(&[]);
    let error = resolve(
        None,
        &env,
        &flags(&[
            ("model_dir", "/mnt/models"),
            ("registry_dir", "/data/registry"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("--model-dir and --registry-dir are both set and disagree")
            && error.contains("/mnt/models is not in the registry /data/registry"),
        "{error}"
    );
    // The same directory either way is no disagreement.
    let config = resolve(
        None,
        &env,
        &flags(&[
            ("model_dir", "/data/registry/churn"),
            ("registry_dir", "/data/registry"),
        ]),
    )
    .unwrap();
    assert_eq!(config.model_dir(), PathBuf::from("/data/registry/churn"));
    // A flag above the model directory's layer was set on purpose.
    let env = env_of(&[("MODELHOST_MODEL_DIR", "/mnt/models")]);
    let error = resolve(None, &env, &flags(&[("registry_dir", "/data/registry")]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("MODELHOST_MODEL_DIR and --registry-dir"),
        "{error}"
    );
    let error = resolve(
        None,
        &env_of(&[]),
        &flags(&[("model_dir", "/mnt/models"), ("seed_dir", "/seed")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("--model-dir and --seed-dir are both set and disagree")
            && error.contains("cannot be seeded"),
        "{error}"
    );
    for bad in ["/", "/mnt/models/.."] {
        let error = resolve(None, &env_of(&[]), &flags(&[("model_dir", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!(
                "invalid --model-dir={bad:?}: expected the model's directory"
            )),
            "{error}"
        );
    }
}
