//! The records the store keeps, as they are serialised (JSON values keyed
//! by name, fingerprint, id or version number). Fields added later carry
//! `#[serde(default)]` so older stores keep loading.

use std::collections::BTreeMap;

use cdn_proto::Version;
use serde::{Deserialize, Serialize};

use crate::role::Role;

/// What the master remembers about a node's identity and liveness across
/// restarts (the registry's part; its config state is a
/// [`NodeConfigRecord`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub agent_version: String,
    /// Unix milliseconds.
    pub first_seen_ms: i64,
    /// Unix milliseconds of the last sign of life.
    pub last_seen_ms: i64,
    /// Unix milliseconds when the last session started.
    pub connected_since_ms: i64,
    pub last_session_id: u64,
    /// Config fields that stores written before the split kept in this
    /// record: read once to make the node's [`NodeConfigRecord`], never
    /// written again.
    #[serde(flatten, default, skip_serializing)]
    pub legacy_config: LegacyConfigFields,
}

/// The config state older stores kept inside [`NodeRecord`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LegacyConfigFields {
    #[serde(default, with = "cdn_proto::version::or_zero")]
    pub desired_version: Option<Version>,
    #[serde(default, with = "cdn_proto::version::or_zero")]
    pub applied_version: Option<Version>,
    #[serde(default)]
    pub disk_hash: String,
    /// `version N: reason`, empty after a success.
    #[serde(default)]
    pub config_error: String,
}

impl LegacyConfigFields {
    /// The node's config state as the split store keeps it.
    pub fn into_record(self, name: &str) -> NodeConfigRecord {
        let last_error = self.config_error.strip_prefix("version ").and_then(|rest| {
            let (v, reason) = rest.split_once(": ")?;
            Some(FailedApply {
                version: v.parse().ok()?,
                reason: reason.to_string(),
            })
        });
        NodeConfigRecord {
            name: name.to_string(),
            desired: self.desired_version,
            applied: self.applied_version,
            disk_hash: self.disk_hash,
            last_error,
        }
    }
}

/// A node's config state: what it should run, what it runs, what is on its
/// disk and why its last apply failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeConfigRecord {
    pub name: String,
    /// The version this node should run; None until one is pushed to it.
    #[serde(default, with = "cdn_proto::version::or_zero")]
    pub desired: Option<Version>,
    /// The version the agent last acknowledged or reported as applied.
    #[serde(default, with = "cdn_proto::version::or_zero")]
    pub applied: Option<Version>,
    /// sha256 of the config file on the node's disk, as last reported.
    #[serde(default)]
    pub disk_hash: String,
    /// The last apply that failed, cleared by a success or a new desired
    /// version.
    #[serde(default)]
    pub last_error: Option<FailedApply>,
}

/// A version a node could not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedApply {
    pub version: Version,
    pub reason: String,
}

/// One immutable pushed config version (metadata; content stored beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: Version,
    /// sha256 of the content, lowercase hex.
    pub hash: String,
    pub size: u64,
    pub author: String,
    pub message: String,
    pub created_ms: i64,
    /// Nodes it was made desired for when pushed.
    pub targets: Vec<String>,
    /// Pushed to the whole fleet: nodes that register later get it too.
    #[serde(default)]
    pub fleet_wide: bool,
    /// The client's key for the push that stored it (empty: none); a push
    /// sent again with it gets this version back instead of a new one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub idempotency_key: String,
}

/// Whom a certificate was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    /// An agent, named by its node id.
    #[default]
    Node,
    /// An operator (cdnctl), with a role.
    User,
}

impl CertKind {
    /// `node` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Node => "node",
            CertKind::User => "user",
        }
    }
}

/// A client certificate the master issued, known by its fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertRecord {
    /// sha256 of the certificate, lowercase hex.
    pub fingerprint: String,
    pub kind: CertKind,
    /// Node id or user name.
    pub name: String,
    /// Role of a user certificate; None for nodes.
    #[serde(default, with = "role_or_empty")]
    pub role: Option<Role>,
    pub issued_ms: i64,
    pub not_after_ms: i64,
    /// Who asked for it: a user name, or `token:<id>` for an enrolment.
    pub issued_by: String,
    /// When it was revoked; 0 while valid.
    #[serde(default)]
    pub revoked_ms: i64,
    /// A revoked node certificate whose name an admin let enrol again.
    #[serde(default)]
    pub readmitted: bool,
}

/// A join token; the secret itself is never stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    /// sha256 of the secret, lowercase hex.
    pub secret_hash: String,
    #[serde(default)]
    pub description: String,
    pub created_ms: i64,
    pub created_by: String,
    /// 0 = never expires.
    pub expires_ms: i64,
    /// 0 = unlimited.
    pub max_uses: u32,
    pub used: u32,
    #[serde(default)]
    pub revoked: bool,
}

/// One audited call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: u64,
    pub time_ms: i64,
    pub user: String,
    /// The caller's role, empty for agents and anonymous callers.
    pub role: String,
    pub peer: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub success: bool,
    pub error: String,
}

/// One exec session, as audited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub exec_id: u64,
    pub user: String,
    /// Address cdnctl connected from.
    pub peer: String,
    pub node: String,
    pub argv: Vec<String>,
    pub started_ms: i64,
    pub duration_ms: u64,
    /// Exit code as cdnctl reports it; -1 when the command never ran.
    pub exit_code: i32,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: String,
    /// The id the session's recording is filed under; 0 when not recorded.
    #[serde(default)]
    pub recording_id: u64,
    /// Size and sha256 (hex) of the recording as written.
    #[serde(default)]
    pub recording_bytes: u64,
    #[serde(default)]
    pub recording_sha256: String,
    /// Cut at exec.recording.max_bytes.
    #[serde(default)]
    pub recording_truncated: bool,
    /// Why the recording is incomplete, if a write failed.
    #[serde(default)]
    pub recording_error: String,
}

/// Where a staged rollout is: the states of `cdn.v1.RolloutState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutPhase {
    #[default]
    Running,
    Paused,
    RollingBack,
    RolledBack,
    Halted,
    Aborted,
    Succeeded,
    Undone,
}

impl RolloutPhase {
    /// Whether the rollout has ended (nothing more happens unless undone).
    pub fn ended(self) -> bool {
        !matches!(
            self,
            RolloutPhase::Running | RolloutPhase::Paused | RolloutPhase::RollingBack
        )
    }
}

/// Where one wave is: the states of `cdn.v1.RolloutWaveState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WavePhase {
    #[default]
    Pending,
    Applying,
    Baking,
    Passed,
    Failed,
    RolledBack,
}

/// Where one node of a rollout is: the states of `cdn.v1.RolloutNodeState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodePhase {
    #[default]
    Waiting,
    Applying,
    Applied,
    Failed,
    RolledBack,
}

/// A rollout strategy as stored (`cdn.v1.RolloutStrategy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrategyRecord {
    #[serde(default)]
    pub canary: u32,
    #[serde(default)]
    pub waves: Vec<String>,
    #[serde(default)]
    pub pause_ms: u64,
    #[serde(default)]
    pub bake_ms: u64,
    #[serde(default)]
    pub max_failed: u32,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub gates: Vec<String>,
    /// Halt and leave the updated nodes (true), or put them back (false).
    #[serde(default)]
    pub halt_only: bool,
    /// The apply timeout in force (the master's default filled in).
    #[serde(default)]
    pub apply_timeout_ms: u64,
    #[serde(default)]
    pub start_paused: bool,
}

/// One node of a rollout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutNodeRecord {
    pub node: String,
    pub state: NodePhase,
    /// The version it desired before the rollout; None = none.
    #[serde(default, with = "cdn_proto::version::or_zero")]
    pub previous: Option<Version>,
    #[serde(default)]
    pub reason: String,
}

/// One wave of a rollout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutWaveRecord {
    pub state: WavePhase,
    #[serde(default)]
    pub label_value: String,
    pub nodes: Vec<RolloutNodeRecord>,
    #[serde(default)]
    pub started_ms: i64,
    #[serde(default)]
    pub finished_ms: i64,
}

/// The latest reading of one gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub gate: String,
    pub wave: u32,
    pub passed: bool,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub detail: String,
    pub time_ms: i64,
}

/// A staged rollout: its plan and how far it got, written at every change
/// so that a restarted (or newly elected) master resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub id: u64,
    pub version: Version,
    pub state: RolloutPhase,
    pub strategy: StrategyRecord,
    #[serde(default)]
    pub current_wave: u32,
    pub waves: Vec<RolloutWaveRecord>,
    pub author: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub gates: Vec<GateRecord>,
    /// Started by a rollback.
    #[serde(default)]
    pub rollback: bool,
    #[serde(default)]
    pub next_wave_ms: i64,
    /// For the whole fleet: on success the fleet's desired version becomes
    /// this rollout's, and an undo puts back `previous_fleet`.
    #[serde(default)]
    pub fleet_wide: bool,
    #[serde(default, with = "cdn_proto::version::or_zero")]
    pub previous_fleet: Option<Version>,
    /// Rolling back because an operator undid it (ends `undone`, not
    /// `rolled_back`).
    #[serde(default)]
    pub undo: bool,
}

impl RolloutRecord {
    /// Every node of the rollout, wave by wave.
    pub fn nodes(&self) -> impl Iterator<Item = &RolloutNodeRecord> {
        self.waves.iter().flat_map(|w| w.nodes.iter())
    }
}

/// A role stored as its word, empty for none (the form stores have always
/// used).
mod role_or_empty {
    use super::Role;

    pub fn serialize<S: serde::Serializer>(r: &Option<Role>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(r.map_or("", Role::as_str))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        if s.is_empty() {
            return Ok(None);
        }
        Role::parse(&s)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_node_record_gives_its_config_state() {
        let old = r#"{"name":"n1","first_seen_ms":1,"last_seen_ms":2,"connected_since_ms":2,
            "last_session_id":4,"config_version":"3","desired_version":5,"applied_version":3,
            "disk_hash":"abc","config_error":"version 5: reload failed: exit 1"}"#;
        let r: NodeRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.last_session_id, 4);
        let c = r.legacy_config.clone().into_record(&r.name);
        assert_eq!(c.desired, Version::new(5));
        assert_eq!(c.applied, Version::new(3));
        assert_eq!(c.disk_hash, "abc");
        assert_eq!(
            c.last_error,
            Some(FailedApply {
                version: Version::new(5).unwrap(),
                reason: "reload failed: exit 1".into()
            })
        );
        let again = serde_json::to_string(&r).unwrap();
        assert!(!again.contains("desired_version"), "{again}");
    }

    #[test]
    fn certificates_keep_their_stored_spelling() {
        let c = CertRecord {
            kind: CertKind::User,
            role: Some(Role::Operator),
            ..Default::default()
        };
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.contains(r#""kind":"user""#) && s.contains(r#""role":"operator""#));
        let node: CertRecord = serde_json::from_str(
            r#"{"fingerprint":"f","kind":"node","name":"n","role":"","issued_ms":1,"not_after_ms":2,"issued_by":"token:x"}"#,
        )
        .unwrap();
        assert_eq!((node.kind, node.role), (CertKind::Node, None));
    }
}
