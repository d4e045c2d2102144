//! Durations written as in the seed (`10s`, `5m`, `100ms`), for serde.
//!
//! Use as `#[serde(with = "cdn_common::duration")]`. Zero is refused: every
//! duration in our configs is an interval or a timeout, where zero is a typo.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a human duration such as `10s`, refusing zero and bare numbers.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "invalid duration `{text}` ({e}); write it with a unit, for example 10s, 500ms or 5m"
        )
    })?;
    if d.is_zero() {
        return Err(format!("duration `{text}` must be greater than zero"));
    }
    Ok(d)
}

/// Serde deserializer for [`parse`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Serde serializer writing the humantime form.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// Renders a duration compactly for messages (`1.5s`, `250ms`).
pub fn short(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_forms_parse() {
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
    }

    #[test]
    fn zero_and_unitless_are_refused() {
        assert!(parse("0s").is_err());
        assert!(parse("10").is_err());
        assert!(parse("soon").is_err());
    }
}
