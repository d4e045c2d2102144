//! A configuration as its dotted keys (`heartbeat.interval`,
//! `node.labels`): what a reload compares key by key, and what the
//! documentation generator checks its tables against.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Every key of `config` as a dotted path with its value (as JSON).
/// Mappings are walked into, except free-form ones named in `maps` (such
/// as `node.labels`), which count as one key; lists and unset options are
/// one key each.
pub fn dotted<T: Serialize>(config: &T, maps: &[&str]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(config) {
        walk(String::new(), v, maps, &mut out);
    }
    out
}

fn walk(path: String, v: Value, maps: &[&str], out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(fields) if !maps.contains(&path.as_str()) => {
            for (k, v) in fields {
                let key = if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                };
                walk(key, v, maps, out);
            }
        }
        other => {
            out.insert(path, other);
        }
    }
}

/// The keys whose values differ between `old` and `new` (present in one
/// only counts as differing), in order.
pub fn changed(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(new.keys().filter(|k| !old.contains_key(*k)).cloned());
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Inner {
        time: u32,
        labels: BTreeMap<String, String>,
    }

    #[derive(Serialize)]
    struct Outer {
        addr: String,
        inner: Inner,
        token: Option<String>,
    }

    #[test]
    fn keys_are_dotted_and_named_maps_are_one_key() {
        let mut c = Outer {
            addr: "a".into(),
            inner: Inner {
                time: 1,
                labels: BTreeMap::from([("pop".into(), "fra".into())]),
            },
            token: None,
        };
        let before = dotted(&c, &["inner.labels"]);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            ["addr", "inner.labels", "inner.time", "token"]
        );
        c.inner.labels.insert("role".into(), "edge".into());
        c.token = Some("t".into());
        assert_eq!(
            changed(&before, &dotted(&c, &["inner.labels"])),
            ["inner.labels", "token"]
        );
    }
}
