//! The README's configuration table against the settings the binary declares.

use crate::k8s::repo_root;

#[test]
fn the_configuration_table_gives_every_settings_env_flag_toml_key_and_default() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let rows: Vec<Vec<&str>> = readme
        .lines()
        .filter(|line| line.starts_with("| `") && line.contains("` | `--"))
        .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert_eq!(
        rows.len(),
        modelhost::config::SETTINGS.len(),
        "one row per setting"
    );
    for setting in modelhost::config::SETTINGS {
        let row = rows
            .iter()
            .find(|row| row[0] == format!("`{}`", setting.env))
            .unwrap_or_else(|| panic!("no README row for {}", setting.env));
        let flag = format!("--{}", setting.key.replace('_', "-"));
        assert_eq!(
            row[1],
            format!("`{flag}` / `{}`", setting.key),
            "flag and TOML key of {}",
            setting.env
        );
        let default = if setting.default.is_empty() {
            "unset".to_string()
        } else {
            format!("`{}`", setting.default)
        };
        assert!(
            row[2].starts_with(&default),
            "default of {}: README says {}, the binary {default}",
            setting.env,
            row[2]
        );
    }
}

#[test]
fn the_configuration_table_is_the_one_the_declarations_generate() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let table = modelhost::config::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's settings table differs from the declarations in host/src/config.rs; \
         it should read:\n{table}"
    );
}

#[test]
fn the_exit_statuses_are_listed_in_the_readme_and_help() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let table = modelhost::commands::Exit::table();
    assert!(
        readme.contains(&table),
        "README.md should list the exit statuses as:\n{table}"
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_modelhost"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains(&table));
}
