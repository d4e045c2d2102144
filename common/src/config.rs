//! Loading a YAML configuration file into a typed struct.
//!
//! Structs use `#[serde(deny_unknown_fields)]` and validating field types, so
//! every problem surfaces during deserialisation where the YAML parser still
//! knows the position; [`ConfigError`] then names file, line, column and key.

use std::fmt;
use std::path::{Path, PathBuf};

use cdn_proto::limits::MAX_YAML_DEPTH;

use crate::yaml::YamlError;
use serde::de::DeserializeOwned;

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML, has an unknown key or a bad value.
    #[error("{}", display_invalid(file, *line, *column, key.as_deref(), message))]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        /// Dotted path of the offending key, when known (`grpc.keepalive.time`).
        key: Option<String>,
        message: String,
    },
}

fn display_invalid(
    file: &Path,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut out = file.display().to_string();
    if let Some(line) = line {
        out.push_str(&format!(":{line}"));
        if let Some(column) = column {
            out.push_str(&format!(":{column}"));
        }
    }
    out.push_str(": ");
    if let Some(key) = key {
        out.push_str(&format!("key `{key}`: "));
    }
    out.push_str(message);
    out
}

/// A check across keys that no single field's type can make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted path of the key to blame (`reconnect.base_delay`).
    pub key: String,
    pub message: String,
}

impl Invalid {
    /// Blames `key` with `message`.
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Config structs implement this for the checks done after parsing.
pub trait Validate {
    /// Checks relations between keys.
    fn validate(&self) -> Result<(), Invalid>;
}

/// Reads, parses and validates `file` as `T`.
///
/// An empty file (or one holding only comments) yields `T::default()`.
pub fn load<T: DeserializeOwned + Default + Validate>(file: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse_and_validate(file, &text)
}

/// [`parse`], then [`Validate::validate`], locating a failed key in `text`.
pub fn parse_and_validate<T: DeserializeOwned + Default + Validate>(
    file: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let value: T = parse(file, text)?;
    value.validate().map_err(|e| {
        let at = locate_key(text, &e.key);
        ConfigError::Invalid {
            file: file.to_path_buf(),
            line: at.map(|(l, _)| l),
            column: at.map(|(_, c)| c),
            key: Some(e.key),
            message: e.message,
        }
    })?;
    Ok(value)
}

/// 1-based line and column of dotted `key` in block-style YAML `text`, if
/// it is written there (a default value has no line).
pub fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let want: Vec<&str> = key.split('.').collect();
    // (indent, key) of the enclosing mappings of the current line.
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some(k) = key_on_line(line) else { continue };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, k));
        if stack.len() == want.len() && stack.iter().zip(&want).all(|((_, a), b)| a == b) {
            return Some((n + 1, indent + 1));
        }
    }
    None
}

/// Parses YAML `text` that came from `file` (used for messages only).
pub fn parse<T: DeserializeOwned + Default>(file: &Path, text: &str) -> Result<T, ConfigError> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(T::default());
    }
    crate::yaml::from_str(text).map_err(|e| invalid(file, text, e))
}

/// Why a text is not YAML: where, and what (without the position suffix
/// the parser appends, so callers can place the position themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlSyntaxError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for YamlSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{} at line {l} column {c}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Checks that `text` is one YAML document, syntax only: the parser's
/// events are read and dropped, no value tree is built (which would double
/// the cost on large configs) and aliases are not expanded. Nesting deeper
/// than [`MAX_YAML_DEPTH`] is refused at the first event past it, before
/// the rest is read. saphyr-parser (pure Rust) is as fast as libyaml here
/// and gives line and column.
pub fn check_yaml_syntax(text: &str) -> Result<(), YamlSyntaxError> {
    use saphyr_parser::{Event, Parser};
    let at = |line: usize, col: usize, message: String| YamlSyntaxError {
        line: Some(line),
        column: Some(col + 1),
        message,
    };
    let (mut depth, mut documents) = (0usize, 0usize);
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            // The scanner has its own bound on flow nesting (`[[[…`).
            let message = match e.info() {
                "recursion limit exceeded" => too_deep(),
                info => info.to_string(),
            };
            at(e.marker().line(), e.marker().col(), message)
        })?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(at(span.start.line(), span.start.col(), too_deep()));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(at(
                        span.start.line(),
                        span.start.col(),
                        "more than one YAML document (`---`); a config is one document".into(),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn too_deep() -> String {
    format!("nested deeper than {MAX_YAML_DEPTH} levels")
}

fn invalid(file: &Path, text: &str, err: YamlError) -> ConfigError {
    // The parser gives a position; the key is the one written there, under
    // the keys whose blocks enclose that line.
    let key = err.line.and_then(|l| key_path_at(text, l));
    ConfigError::Invalid {
        file: file.to_path_buf(),
        line: err.line,
        column: err.column,
        key,
        message: err.message,
    }
}

/// Dotted path of the key written on (1-based) `line` of `text`, or of the
/// innermost key enclosing it when the line has none (a list item, a
/// flow value): `grpc.keepalive.time`.
fn key_path_at(text: &str, line: usize) -> Option<String> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (n, l) in text.lines().enumerate().take(line) {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = l.len() - trimmed.len();
        let Some(k) = key_on_line(l) else {
            continue;
        };
        // A key after `- ` sits deeper than the dash.
        let indent = if trimmed.starts_with("- ") {
            indent + 2
        } else {
            indent
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, k));
        if n + 1 == line {
            break;
        }
    }
    let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
    (!path.is_empty()).then(|| path.join("."))
}

/// The mapping key written on a YAML line (`  time: 10s` gives `time`).
fn key_on_line(line: &str) -> Option<String> {
    let t = line.trim_start().trim_start_matches("- ");
    let (k, _) = t.split_once(':')?;
    let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
    let ok = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    ok.then(|| k.to_string())
}

/// A `host:port` address written as in the seed (`:50051` means every interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP literal; empty for "every interface".
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port`, `[v6]:port` or `:port`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("address `{s}` has no port (expected host:port)"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("address `{s}` has an invalid port `{port}`"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.contains(char::is_whitespace) {
            return Err(format!("address `{s}` has an invalid host"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl<'de> serde::Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HostPort {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A fraction in `0.0..=1.0` (for example reconnect jitter).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct Fraction(pub f64);

impl<'de> serde::Deserialize<'de> for Fraction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range (expected 0.0 to 1.0)"
            )));
        }
        Ok(Self(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Outer {
        grpc: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        #[serde(with = "crate::duration")]
        time: std::time::Duration,
        jitter: Option<Fraction>,
    }

    impl Validate for Outer {
        fn validate(&self) -> Result<(), Invalid> {
            if self.grpc.time > std::time::Duration::from_secs(60) {
                return Err(Invalid::new("grpc.time", "too long"));
            }
            Ok(())
        }
    }

    #[test]
    fn validation_errors_name_the_line_of_the_key() {
        let text = "# c\ngrpc:\n  jitter: 0.1\n  time: 2m\n";
        let e = parse_and_validate::<Outer>(Path::new("m.yml"), text)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "m.yml:4:3: key `grpc.time`: too long");
    }

    #[test]
    fn keys_are_located_by_path() {
        let text = "a:\n  b: 1\nc:\n  b: 2\n  d:\n    e: x\n";
        assert_eq!(locate_key(text, "c.b"), Some((4, 3)));
        assert_eq!(locate_key(text, "c.d.e"), Some((6, 5)));
        assert_eq!(locate_key(text, "a.x"), None);
    }

    fn err(text: &str) -> String {
        parse::<Outer>(Path::new("m.yml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_key_names_line_and_full_key() {
        let e = err("grpc:\n  time: 1s\n  bogus: 3\n");
        assert!(e.starts_with("m.yml:3:"), "{e}");
        assert!(e.contains("key `grpc.bogus`"), "{e}");
    }

    #[test]
    fn bad_duration_names_line_and_key() {
        let e = err("grpc:\n  time: ten\n");
        assert!(e.starts_with("m.yml:2:"), "{e}");
        assert!(e.contains("key `grpc.time`"), "{e}");
    }

    #[test]
    fn out_of_range_fraction_is_refused() {
        let e = err("grpc:\n  jitter: 1.5\n");
        assert!(
            e.contains("grpc.jitter") && e.contains("out of range"),
            "{e}"
        );
    }

    #[test]
    fn bad_yaml_names_line() {
        let e = err("grpc:\n  time: [1s\n");
        assert!(e.starts_with("m.yml:"), "{e}");
    }

    #[test]
    fn empty_file_is_default() {
        let v: Outer = parse(Path::new("m.yml"), "# nothing\n").unwrap();
        assert_eq!(v.grpc.time, std::time::Duration::ZERO);
    }

    #[test]
    fn yaml_syntax_errors_carry_their_position() {
        let e = check_yaml_syntax("a: 1\nb: [2\n").unwrap_err();
        // The parser notices at the end of the text.
        assert_eq!((e.line, e.column), (Some(3), Some(1)), "{e:?}");
        assert!(e.message.contains("flow sequence"), "{e:?}");
        assert!(e.to_string().contains("at line 3 column 1"), "{e}");
        assert!(check_yaml_syntax("a: 1\n").is_ok());
        assert!(check_yaml_syntax("").is_ok());
        assert!(check_yaml_syntax("# only a comment\n").is_ok());
    }

    #[test]
    fn yaml_nesting_is_bounded_before_the_rest_is_read() {
        let ok = format!(
            "k: {}{}\n",
            "[".repeat(MAX_YAML_DEPTH - 1),
            "]".repeat(MAX_YAML_DEPTH - 1)
        );
        check_yaml_syntax(&ok).unwrap();
        // 200,000 levels: refused at level 129, in no time; in flow and in
        // block style.
        let deep = format!("k: {}\n", "[".repeat(200_000));
        let e = check_yaml_syntax(&deep).unwrap_err();
        assert!(e.message.contains("nested deeper than 128"), "{e:?}");
        assert_eq!(e.line, Some(1));
        let block: String = (0..2_000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let e = check_yaml_syntax(&block).unwrap_err();
        assert!(e.message.contains("nested deeper than 128"), "{e:?}");
        assert_eq!(e.line, Some(129));
    }

    #[test]
    fn yaml_with_two_documents_is_refused() {
        let e = check_yaml_syntax("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("more than one YAML document"), "{e:?}");
        assert_eq!(e.line, Some(2));
        check_yaml_syntax("---\na: 1\n...\n").unwrap();
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(HostPort::parse(":50051").unwrap().host, "");
        assert_eq!(HostPort::parse("[::1]:1").unwrap().host, "::1");
        assert_eq!(
            HostPort::parse("master.ai-cdn.local:50051")
                .unwrap()
                .to_string(),
            "master.ai-cdn.local:50051"
        );
        assert!(HostPort::parse("nohost").is_err());
        assert!(HostPort::parse("h:99999").is_err());
    }
}
