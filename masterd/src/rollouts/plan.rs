//! The plan of a staged rollout: a strategy checked against its targets
//! and cut into waves. Pure functions; nothing here touches state.
//!
//! Targets are taken in a stable order (by name). Waves are cumulative: the
//! canary takes the first `canary` nodes and each entry of `waves` says how
//! far the rollout has reached after that wave ("10%" of the targets,
//! rounded up, or a count). With `by`, the targets are grouped by that
//! label's value (sorted, nodes without it last), the canary and waves cut
//! the first group only, and every other group is one wave.

use std::collections::BTreeMap;
use std::time::Duration;

use cdn_proto::v1::{RolloutOnFailure, RolloutStrategy};

use crate::store::{NodePhase, RolloutNodeRecord, RolloutWaveRecord, StrategyRecord, WavePhase};

/// Longest pause, bake or apply timeout a strategy may ask for.
pub const MAX_STEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// One target: its name and labels.
pub struct Target {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The version it desires now (its `previous_version`).
    pub desired: Option<cdn_proto::Version>,
}

/// What a strategy may use of the master's settings.
pub struct Settings {
    /// Whether `rollout.prometheus.url` is set.
    pub prometheus: bool,
    pub default_apply_timeout: Duration,
}

/// A strategy refused, with what is wrong (INVALID_ARGUMENT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rollout strategy: {0}")]
pub struct BadStrategy(pub String);

fn bad(msg: impl Into<String>) -> BadStrategy {
    BadStrategy(msg.into())
}

/// One wave size as given: a share of the targets or a count.
#[derive(Debug, Clone, Copy)]
enum Size {
    Percent(u32),
    Count(usize),
}

impl Size {
    fn parse(text: &str) -> Result<Size, BadStrategy> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            let n: u32 = p.trim().parse().map_err(|_| {
                bad(format!(
                    "wave {text:?} is not a percentage such as 10% or a count such as 5"
                ))
            })?;
            if n == 0 || n > 100 {
                return Err(bad(format!("wave {text:?} is out of range (1% to 100%)")));
            }
            Ok(Size::Percent(n))
        } else {
            let n: usize = t.parse().map_err(|_| {
                bad(format!(
                    "wave {text:?} is not a percentage such as 10% or a count such as 5"
                ))
            })?;
            if n == 0 {
                return Err(bad(format!("wave {text:?} is empty (at least 1 node)")));
            }
            Ok(Size::Count(n))
        }
    }

    /// Nodes of `total` it reaches (percentages rounded up).
    fn of(self, total: usize) -> usize {
        match self {
            Size::Percent(p) => (total * p as usize).div_ceil(100),
            Size::Count(n) => n,
        }
    }

    /// The share as a fraction `num / den` of `total`, for comparing.
    fn share(self, total: usize) -> (u128, u128) {
        match self {
            Size::Percent(p) => (p as u128, 100),
            Size::Count(n) => (n as u128, total.max(1) as u128),
        }
    }
}

/// Checks `gate` reads as "QUERY OP NUMBER".
pub fn check_gate(gate: &str) -> Result<(), BadStrategy> {
    gate.parse::<crate::promgate::PromGate>()
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

/// The stored strategy and the waves of rolling `strategy` out to
/// `targets`, or what is wrong with it.
pub fn plan(
    strategy: &RolloutStrategy,
    mut targets: Vec<Target>,
    settings: &Settings,
) -> Result<(StrategyRecord, Vec<RolloutWaveRecord>), BadStrategy> {
    if targets.is_empty() {
        return Err(bad("no target nodes"));
    }
    let on_failure = RolloutOnFailure::try_from(strategy.on_failure)
        .map_err(|_| bad(format!("unknown on_failure {}", strategy.on_failure)))?;
    for (what, ms) in [
        ("pause", strategy.pause_ms),
        ("bake", strategy.bake_ms),
        ("apply_timeout", strategy.apply_timeout_ms),
    ] {
        if Duration::from_millis(ms) > MAX_STEP {
            return Err(bad(format!(
                "{what} of {} is longer than the 7d allowed",
                cdn_common::duration::short(Duration::from_millis(ms))
            )));
        }
    }
    if !strategy.gates.is_empty() && !settings.prometheus {
        return Err(bad(
            "gates need a Prometheus: set rollout.prometheus.url in master.yml",
        ));
    }
    for g in &strategy.gates {
        check_gate(g)?;
    }
    let sizes: Vec<Size> = strategy
        .waves
        .iter()
        .map(|w| Size::parse(w))
        .collect::<Result<_, _>>()?;
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    targets.dedup_by(|a, b| a.name == b.name);
    // Groups of targets: one, or one per label value (unlabelled last).
    let groups: Vec<(String, Vec<Target>)> = if strategy.by.is_empty() {
        vec![(String::new(), targets)]
    } else {
        let by = &strategy.by;
        if !targets.iter().any(|t| t.labels.contains_key(by)) {
            return Err(bad(format!("no target node has the label `{by}`")));
        }
        let mut grouped: BTreeMap<(bool, String), Vec<Target>> = BTreeMap::new();
        for t in targets {
            let key = match t.labels.get(by) {
                Some(v) => (false, v.clone()),
                None => (true, String::new()),
            };
            grouped.entry(key).or_default().push(t);
        }
        grouped.into_iter().map(|((_, v), ts)| (v, ts)).collect()
    };
    let mut waves = Vec::new();
    for (i, (label, group)) in groups.into_iter().enumerate() {
        if i == 0 {
            for cut in cuts(strategy.canary as usize, &sizes, group.len())? {
                waves.push(wave(&label, &group[cut.0..cut.1]));
            }
        } else {
            waves.push(wave(&label, &group));
        }
    }
    let record = StrategyRecord {
        canary: strategy.canary,
        waves: strategy.waves.clone(),
        pause_ms: strategy.pause_ms,
        bake_ms: strategy.bake_ms,
        max_failed: strategy.max_failed,
        by: strategy.by.clone(),
        gates: strategy.gates.clone(),
        halt_only: on_failure == RolloutOnFailure::Halt,
        apply_timeout_ms: match strategy.apply_timeout_ms {
            0 => settings.default_apply_timeout.as_millis() as u64,
            ms => ms,
        },
        start_paused: strategy.start_paused,
    };
    Ok((record, waves))
}

fn wave(label: &str, nodes: &[Target]) -> RolloutWaveRecord {
    RolloutWaveRecord {
        state: WavePhase::Pending,
        label_value: label.to_string(),
        nodes: nodes
            .iter()
            .map(|t| RolloutNodeRecord {
                node: t.name.clone(),
                state: NodePhase::Waiting,
                previous: t.desired,
                reason: String::new(),
            })
            .collect(),
        started_ms: 0,
        finished_ms: 0,
    }
}

/// The `[from, to)` ranges of `total` nodes: the canary, then each size
/// (cumulative, at least one node more than the one before, the last one
/// stretched to every node).
fn cuts(canary: usize, sizes: &[Size], total: usize) -> Result<Vec<(usize, usize)>, BadStrategy> {
    for pair in sizes.windows(2) {
        let ((a, b), (c, d)) = (pair[0].share(total), pair[1].share(total));
        if c * b <= a * d {
            return Err(bad(format!(
                "waves must grow: {} does not reach further than the wave before it",
                match pair[1] {
                    Size::Percent(p) => format!("{p}%"),
                    Size::Count(n) => n.to_string(),
                }
            )));
        }
    }
    let mut out = Vec::new();
    let mut reached = canary.min(total);
    if reached > 0 {
        out.push((0, reached));
    }
    for s in sizes {
        if reached == total {
            break;
        }
        let to = s.of(total).max(reached + 1).min(total);
        out.push((reached, to));
        reached = to;
    }
    if reached < total {
        match out.last_mut() {
            Some(last) if !sizes.is_empty() => last.1 = total,
            _ => out.push((reached, total)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: usize) -> Vec<Target> {
        (1..=n)
            .map(|i| Target {
                name: format!("n{i:02}"),
                labels: [(
                    "pop".to_string(),
                    if i % 2 == 0 { "ams" } else { "fra" }.to_string(),
                )]
                .into(),
                desired: None,
            })
            .collect()
    }

    const SETTINGS: Settings = Settings {
        prometheus: false,
        default_apply_timeout: Duration::from_secs(60),
    };

    fn sizes(s: RolloutStrategy, n: usize) -> Result<Vec<usize>, BadStrategy> {
        plan(&s, targets(n), &SETTINGS).map(|(_, w)| w.iter().map(|w| w.nodes.len()).collect())
    }

    fn strategy(canary: u32, waves: &[&str]) -> RolloutStrategy {
        RolloutStrategy {
            canary,
            waves: waves.iter().map(|w| w.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn canary_then_cumulative_waves() {
        assert_eq!(sizes(strategy(1, &["50%", "100%"]), 10), Ok(vec![1, 4, 5]));
        assert_eq!(
            sizes(strategy(2, &["10%", "50%", "100%"]), 10),
            Ok(vec![2, 1, 2, 5])
        );
        // The canary alone, then everyone else; no canary, one wave.
        assert_eq!(sizes(strategy(1, &[]), 10), Ok(vec![1, 9]));
        assert_eq!(sizes(strategy(0, &[]), 10), Ok(vec![10]));
        // The last wave reaches every node even when it says less.
        assert_eq!(sizes(strategy(0, &["3", "5"]), 10), Ok(vec![3, 7]));
        // A canary as large as the fleet is the only wave.
        assert_eq!(sizes(strategy(20, &["50%"]), 3), Ok(vec![3]));
    }

    #[test]
    fn the_order_is_by_name_and_the_previous_version_is_kept() {
        let mut t = targets(3);
        t.reverse();
        t[0].desired = cdn_proto::Version::new(4);
        let (_, w) = plan(&strategy(1, &[]), t, &SETTINGS).unwrap();
        assert_eq!(w[0].nodes[0].node, "n01");
        assert_eq!(w[1].nodes[1].node, "n03");
        assert_eq!(w[1].nodes[1].previous, cdn_proto::Version::new(4));
    }

    #[test]
    fn by_label_value_one_wave_each_unlabelled_last() {
        let mut t = targets(5);
        t[4].labels.clear();
        let s = RolloutStrategy {
            canary: 1,
            by: "pop".into(),
            ..Default::default()
        };
        let (_, w) = plan(&s, t, &SETTINGS).unwrap();
        let got: Vec<(String, usize)> = w
            .iter()
            .map(|w| (w.label_value.clone(), w.nodes.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("ams".into(), 1),
                ("ams".into(), 1),
                ("fra".into(), 2),
                ("".into(), 1)
            ]
        );
        let e = plan(
            &RolloutStrategy {
                by: "rack".into(),
                ..Default::default()
            },
            targets(2),
            &SETTINGS,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rollout strategy: no target node has the label `rack`"
        );
    }

    #[test]
    fn bad_strategies_are_named() {
        let e = |s: RolloutStrategy| sizes(s, 10).unwrap_err().to_string();
        assert!(e(strategy(0, &["0%"])).contains("\"0%\" is out of range"));
        assert!(e(strategy(0, &["150%"])).contains("\"150%\" is out of range"));
        assert!(e(strategy(0, &["50%", "10%"])).contains("waves must grow: 10%"));
        assert!(e(strategy(0, &["5", "50%"])).contains("waves must grow: 50%"));
        assert!(e(strategy(0, &["ten"])).contains("\"ten\" is not a percentage"));
        let gated = RolloutStrategy {
            gates: vec!["up < 1".into()],
            ..Default::default()
        };
        assert!(e(gated).contains("set rollout.prometheus.url"));
        let with_prometheus = Settings {
            prometheus: true,
            ..SETTINGS
        };
        let bad_gate = RolloutStrategy {
            gates: vec!["rate(errors[1m])".into()],
            ..Default::default()
        };
        let e = plan(&bad_gate, targets(2), &with_prometheus).unwrap_err();
        assert!(e.to_string().contains("no comparison"), "{e}");
        assert_eq!(
            plan(&strategy(1, &[]), Vec::new(), &SETTINGS)
                .unwrap_err()
                .to_string(),
            "rollout strategy: no target nodes"
        );
    }
}
