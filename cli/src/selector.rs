//! Label selectors as the `-l/--selector` flags of `nodes list`, `config`
//! and `exec` take them: `key=value[,key=value...]`, repeatable; a node
//! matches when every pair matches.

use std::collections::HashMap;

/// Parses one `--selector` value, `key=value[,key=value...]`.
pub fn parse(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(format!("`{pair}` has an empty key"));
            }
            Ok((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Every pair of every `--selector` given, as the master's requests carry
/// them.
pub fn merge(flags: &[Vec<(String, String)>]) -> HashMap<String, String> {
    flags.iter().flatten().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        assert_eq!(
            parse("region=eu,role=edge").unwrap(),
            vec![
                ("region".into(), "eu".into()),
                ("role".into(), "edge".into())
            ]
        );
        assert!(parse("region").is_err());
        assert!(parse("=x").is_err());
    }

    #[test]
    fn repeated_flags_merge() {
        let flags = [parse("pop=fra").unwrap(), parse("role=edge").unwrap()];
        let m = merge(&flags);
        assert_eq!(m.len(), 2);
        assert_eq!(m["pop"], "fra");
    }
}
