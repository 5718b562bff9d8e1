//! The types a setting can have. Each [`Kind`] is the one place where its values are parsed,
//! its range is checked and what it accepts is said (in errors, `--help`'s neighbour the README
//! table, and [`Setting::accepts`](super::Setting::accepts)), so a declaration in
//! [`SETTINGS`](super::SETTINGS) names a kind and nothing else has to know how it is read.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use super::LogFormat;

/// How the text of a setting becomes its value.
pub trait Kind {
    /// The validated value.
    type Value;
    /// The type of the default as the declaration writes it (a literal).
    type Literal;
    /// Whether values are secrets, never to be printed.
    const SECRET: bool = false;
    /// Parses `text`; the error is the reason, completing "invalid KEY=VALUE: ".
    fn parse(text: &str) -> Result<Self::Value, String>;
    /// What a valid value looks like, for the README table.
    fn accepts() -> String;
}

/// A whole number in `MIN..=MAX`.
pub struct Int<const MIN: u64, const MAX: u64>;

impl<const MIN: u64, const MAX: u64> Kind for Int<MIN, MAX> {
    type Value = u64;
    type Literal = u64;
    fn parse(text: &str) -> Result<u64, String> {
        match text.trim().parse::<u64>() {
            Ok(n) if (MIN..=MAX).contains(&n) => Ok(n),
            _ => Err(format!("expected a whole number from {MIN} to {MAX}")),
        }
    }
    fn accepts() -> String {
        format!("{MIN}–{MAX}")
    }
}

/// `true` or `false`, in any case.
pub struct Flag;

impl Kind for Flag {
    type Value = bool;
    type Literal = bool;
    fn parse(text: &str) -> Result<bool, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected true or false".to_string()),
        }
    }
    fn accepts() -> String {
        "`true`, `false`".to_string()
    }
}

/// A finite number above zero.
pub struct Positive;

impl Kind for Positive {
    type Value = f64;
    type Literal = f64;
    fn parse(text: &str) -> Result<f64, String> {
        match text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err("expected a positive number".to_string()),
        }
    }
    fn accepts() -> String {
        "a number > 0".to_string()
    }
}

/// An IP address to listen on.
pub struct Ip;

impl Kind for Ip {
    type Value = IpAddr;
    type Literal = &'static str;
    fn parse(text: &str) -> Result<IpAddr, String> {
        text.trim()
            .parse()
            .map_err(|_| "expected an IP address such as 0.0.0.0 or 127.0.0.1".to_string())
    }
    fn accepts() -> String {
        "an IP address".to_string()
    }
}

/// A directory that must be given.
pub struct Dir;

impl Kind for Dir {
    type Value = PathBuf;
    type Literal = &'static str;
    fn parse(text: &str) -> Result<PathBuf, String> {
        if text.trim().is_empty() {
            Err("expected a directory path".to_string())
        } else {
            Ok(PathBuf::from(text))
        }
    }
    fn accepts() -> String {
        "a directory".to_string()
    }
}

/// A path that may be left empty (unset).
pub struct OptionalPath;

impl Kind for OptionalPath {
    type Value = Option<PathBuf>;
    type Literal = &'static str;
    fn parse(text: &str) -> Result<Option<PathBuf>, String> {
        Ok(Some(text)
            .filter(|t| !t.trim().is_empty())
            .map(PathBuf::from))
    }
    fn accepts() -> String {
        "a path, or empty".to_string()
    }
}

/// A model's name, which is also a folder name in the registry.
pub struct ModelName;

impl Kind for ModelName {
    type Value = String;
    type Literal = &'static str;
    fn parse(text: &str) -> Result<String, String> {
        if text.is_empty()
            || text.len() > 128
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || text.starts_with('.')
        {
            return Err(
                "expected 1-128 characters of letters, digits, '-', '_' or '.', not starting with '.'"
                    .to_string(),
            );
        }
        Ok(text.to_string())
    }
    fn accepts() -> String {
        "1–128 of `A-Z a-z 0-9 - _ .`, not starting with `.`".to_string()
    }
}

/// Most models one server serves: a bound on what `MODEL_NAMES` lists and on what `*` finds
/// in the registry, so the metric label sets and per-model state stay bounded.
pub const MAX_MODELS: usize = 1000;

/// Which models a server serves beside `MODEL_NAME`: those listed, or every model directory of
/// the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSelection {
    /// These names (none: only `MODEL_NAME`), each valid as a [`ModelName`], each once.
    Listed(Vec<String>),
    /// `*`: every folder of the registry holding a `model.wasm`, as they appear and go.
    EveryDirectory,
}

/// `MODEL_NAMES`: a comma-separated list of model names, or `*`.
pub struct ModelNames;

impl Kind for ModelNames {
    type Value = ModelSelection;
    type Literal = &'static str;
    fn parse(text: &str) -> Result<ModelSelection, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(ModelSelection::EveryDirectory);
        }
        let mut names: Vec<String> = Vec::new();
        if text.is_empty() {
            return Ok(ModelSelection::Listed(names));
        }
        for (position, entry) in text.split(',').enumerate() {
            let entry = entry.trim();
            let name = ModelName::parse(entry)
                .map_err(|reason| format!("entry {} ({entry:?}): {reason}", position + 1))?;
            if names.contains(&name) {
                return Err(format!("model {name:?} is listed twice"));
            }
            names.push(name);
            if names.len() > MAX_MODELS {
                return Err(format!("lists more than {MAX_MODELS} models"));
            }
        }
        Ok(ModelSelection::Listed(names))
    }
    fn accepts() -> String {
        format!("model names separated by `,` (at most {MAX_MODELS}), or `*`")
    }
}

/// A log level or tracing filter directives.
pub struct LogFilter;

impl Kind for LogFilter {
    type Value = String;
    type Literal = &'static str;
    fn parse(text: &str) -> Result<String, String> {
        if super::valid_log_filter(text) {
            Ok(text.to_string())
        } else {
            Err(
                "expected trace, debug, info, warn, error, or tracing filter directives"
                    .to_string(),
            )
        }
    }
    fn accepts() -> String {
        "a level or tracing directives".to_string()
    }
}

/// How log lines are written.
pub struct Format;

impl Kind for Format {
    type Value = LogFormat;
    type Literal = &'static str;
    fn parse(text: &str) -> Result<LogFormat, String> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(LogFormat::Auto),
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            _ => Err("expected auto, json or text".to_string()),
        }
    }
    fn accepts() -> String {
        "`auto`, `json`, `text`".to_string()
    }
}

/// A bearer token; empty is unset.
pub struct Token;

impl Kind for Token {
    type Value = Option<Secret>;
    type Literal = &'static str;
    const SECRET: bool = true;
    fn parse(text: &str) -> Result<Option<Secret>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        super::check_token(text).map_err(str::to_string)?;
        Ok(Some(Secret(text.to_string())))
    }
    fn accepts() -> String {
        "a token without white space at either end".to_string()
    }
}

/// A secret value: it reads as a `str`, and its `Debug` says only that it is set, so a printed
/// [`Config`](super::Config) never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<set>")
    }
}

/// `literal` (a default as the declaration writes it, through `stringify!`) without the quotes
/// of a string literal: the text a default has in `--help`, the README and resolution.
pub(super) const fn unquote(literal: &'static str) -> &'static str {
    let bytes = literal.as_bytes();
    if bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"' {
        let (_, rest) = bytes.split_at(1);
        let (inner, _) = rest.split_at(rest.len() - 1);
        match std::str::from_utf8(inner) {
            Ok(text) => text,
            Err(_) => panic!("a default is UTF-8"),
        }
    } else {
        literal
    }
}
