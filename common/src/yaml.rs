//! YAML through serde-saphyr (pure Rust, maintained; no C port of
//! libyaml): one place that turns its errors into a line, a column and a
//! one-line message that never echoes the source (a wrong file may hold a
//! secret), and that writes YAML.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a text could not be read as YAML into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What is wrong, without the position.
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{} at line {l} column {c}", self.message),
            (Some(l), None) => write!(f, "{} at line {l}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Reads `text` into a `T`. Duplicate keys are refused.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let location = e.location();
        let rendered = e.without_snippet().render();
        YamlError {
            line: location.map(|l| l.line() as usize),
            column: location.map(|l| l.column() as usize),
            message: without_position(&rendered),
        }
    })
}

/// `value` as YAML text.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| e.to_string())
}

/// serde-saphyr renders "message at line L, column C"; keeps "message".
fn without_position(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or_default();
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Doc {
        name: String,
        pem: String,
        port: u16,
    }

    #[test]
    fn errors_carry_line_column_and_no_source() {
        let e = from_str::<Doc>("name: x\nport: secret-value\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(7)), "{e:?}");
        assert!(!e.message.contains("secret-value"), "{e:?}");
        assert!(!e.message.contains("line"), "{e:?}");
        let e = from_str::<Doc>("name: x\nname: y\n").unwrap_err();
        assert!(e.message.contains("duplicate"), "{e:?}");
        let e = from_str::<Doc>("root:x:0:0:root:/root:/bin/bash\n").unwrap_err();
        assert!(!e.to_string().contains("/bin/bash"), "{e}");
    }

    #[test]
    fn multi_line_strings_round_trip() {
        let d = Doc {
            name: "a: b # c".into(),
            pem: "-----BEGIN X-----\nAAAA\n-----END X-----\n".into(),
            port: 443,
        };
        let text = to_string(&d).unwrap();
        assert_eq!(from_str::<Doc>(&text).unwrap(), d, "{text}");
    }
}
