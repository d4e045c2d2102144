//! Label selectors: which nodes a `nodes list`, a push's targets or an
//! exec fan-out pick by their labels. Checked once at the edge
//! ([`Selector::from_wire`]), then matched against each node's labels by
//! the registry.
//!
//! The semantics are kubectl's: every requirement must hold; `!=` and
//! `notin` also pick nodes that lack the label. A request from an older
//! cdnctl carries only the legacy `key=value` map; a newer one carries
//! `label_selector` (and fills the map for older masters, which this
//! master then ignores).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use cdn_proto::limits::MAX_LABEL_BYTES;
use cdn_proto::v1::{LabelRequirement, SelectorOperator};

use crate::error::MasterError;

/// One requirement on a node's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// The label has this value.
    Equals(String, String),
    /// The label has another value, or the node lacks it.
    NotEquals(String, String),
    /// The label has one of these values.
    In(String, Vec<String>),
    /// The label has none of these values, or the node lacks it.
    NotIn(String, Vec<String>),
    /// The node has the label.
    Exists(String),
    /// The node lacks the label.
    DoesNotExist(String),
}

impl Requirement {
    /// Whether `labels` meet it.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Self::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Self::Exists(k) => labels.contains_key(k),
            Self::DoesNotExist(k) => !labels.contains_key(k),
        }
    }

    /// From the wire, checked: the error says what is wrong with it.
    fn from_wire(r: LabelRequirement) -> Result<Self, String> {
        let key = r.key;
        if key.is_empty() || key.len() > MAX_LABEL_BYTES {
            return Err(format!(
                "label key `{}` is empty or longer than {MAX_LABEL_BYTES} bytes",
                key.escape_default()
            ));
        }
        if let Some(v) = r.values.iter().find(|v| v.len() > MAX_LABEL_BYTES) {
            return Err(format!(
                "label value for `{}` is {} bytes, at most {MAX_LABEL_BYTES}",
                key.escape_default(),
                v.len()
            ));
        }
        let operator = SelectorOperator::try_from(r.operator)
            .map_err(|_| format!("unknown selector operator {}", r.operator))?;
        let mut values = r.values;
        let n = values.len();
        let written = match operator {
            SelectorOperator::Equals => "=",
            SelectorOperator::NotEquals => "!=",
            SelectorOperator::In => " in",
            SelectorOperator::NotIn => " notin",
            SelectorOperator::Exists | SelectorOperator::DoesNotExist => "",
            SelectorOperator::Unspecified => {
                return Err(format!("requirement on `{key}` has no operator"));
            }
        };
        let wrong = |want: &str| format!("`{key}{written}` takes {want}, not {n} value(s)");
        Ok(match operator {
            SelectorOperator::Equals | SelectorOperator::NotEquals => {
                let value = values
                    .pop()
                    .filter(|_| n == 1)
                    .ok_or_else(|| wrong("one value"))?;
                if operator == SelectorOperator::Equals {
                    Self::Equals(key, value)
                } else {
                    Self::NotEquals(key, value)
                }
            }
            SelectorOperator::In | SelectorOperator::NotIn => {
                if n == 0 {
                    return Err(wrong("at least one value"));
                }
                if operator == SelectorOperator::In {
                    Self::In(key, values)
                } else {
                    Self::NotIn(key, values)
                }
            }
            _ if n > 0 => return Err(format!("`{key}` exists/does not exist takes no values")),
            SelectorOperator::Exists => Self::Exists(key),
            _ => Self::DoesNotExist(key),
        })
    }
}

impl fmt::Display for Requirement {
    /// As kubectl writes it: `role!=edge`, `pop in (fra,ams)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Equals(k, v) => write!(f, "{k}={v}"),
            Self::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Self::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Self::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Self::Exists(k) => f.write_str(k),
            Self::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// A label selector: every requirement must match. Empty selects every
/// node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// From a request: `label_selector` when set, else the legacy map's
    /// pairs. A bad requirement is `INVALID_ARGUMENT` naming it.
    pub fn from_wire(
        label_selector: Vec<LabelRequirement>,
        legacy: HashMap<String, String>,
    ) -> Result<Self, MasterError> {
        let requirements = if label_selector.is_empty() {
            let mut pairs: Vec<(String, String)> = legacy.into_iter().collect();
            pairs.sort();
            pairs
                .into_iter()
                .map(|(k, v)| Requirement::Equals(k, v))
                .collect()
        } else {
            label_selector
                .into_iter()
                .map(Requirement::from_wire)
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| MasterError::Invalid(format!("bad label selector: {e}")))?
        };
        Ok(Self { requirements })
    }

    /// Whether it has no requirement (it selects every node).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` meet every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    /// `role!=edge,pop in (fra,ams)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, op: SelectorOperator, values: &[&str]) -> LabelRequirement {
        LabelRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector(reqs: Vec<LabelRequirement>) -> Selector {
        Selector::from_wire(reqs, HashMap::new()).unwrap()
    }

    #[test]
    fn every_operator_matches_as_kubectl_does() {
        use SelectorOperator::*;
        let edge_fra = labels(&[("role", "edge"), ("pop", "fra")]);
        let origin = labels(&[("role", "origin")]);
        let bare = labels(&[]);
        let cases = [
            (req("role", Equals, &["edge"]), [true, false, false]),
            // != and notin also pick nodes without the label.
            (req("role", NotEquals, &["edge"]), [false, true, true]),
            (req("pop", In, &["fra", "ams"]), [true, false, false]),
            (req("pop", NotIn, &["fra"]), [false, true, true]),
            (req("pop", Exists, &[]), [true, false, false]),
            (req("pop", DoesNotExist, &[]), [false, true, true]),
        ];
        for (r, want) in cases {
            let s = selector(vec![r]);
            let got = [&edge_fra, &origin, &bare].map(|l| s.matches(l));
            assert_eq!(got, want, "{s}");
        }
        // All requirements must hold.
        let s = selector(vec![
            req("role", NotEquals, &["origin"]),
            req("pop", Exists, &[]),
        ]);
        assert_eq!(s.to_string(), "role!=origin,pop");
        assert!(s.matches(&edge_fra) && !s.matches(&bare));
        assert!(Selector::default().matches(&bare));
    }

    #[test]
    fn older_clients_map_is_read_when_no_requirement_is_sent() {
        let legacy = HashMap::from([("role".to_string(), "edge".to_string())]);
        let s = Selector::from_wire(Vec::new(), legacy.clone()).unwrap();
        assert_eq!(s.to_string(), "role=edge");
        // A newer client's requirements win over the map it fills for
        // older masters.
        let s = Selector::from_wire(
            vec![req("role", SelectorOperator::NotEquals, &["edge"])],
            legacy,
        )
        .unwrap();
        assert_eq!(s.to_string(), "role!=edge");
    }

    #[test]
    fn malformed_requirements_are_invalid_arguments() {
        use SelectorOperator::*;
        let bad = |r: LabelRequirement| {
            Selector::from_wire(vec![r], HashMap::new())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(req("", Exists, &[])).contains("empty"));
        assert_eq!(
            bad(req("role", Equals, &[])),
            "invalid request: bad label selector: `role=` takes one value, not 0 value(s)"
        );
        assert!(
            bad(req("role", NotEquals, &["a", "b"])).contains("`role!=` takes one value, not 2")
        );
        assert!(bad(req("pop", In, &[])).contains("`pop in` takes at least one value"));
        assert!(bad(req("pop", Exists, &["x"])).contains("takes no values"));
        assert!(bad(req("pop", Unspecified, &[])).contains("no operator"));
        let mut r = req("pop", Exists, &[]);
        r.operator = 99;
        assert!(bad(r).contains("unknown selector operator 99"));
        assert!(bad(req(&"k".repeat(254), Exists, &[])).contains("longer than 253"));
    }
}
