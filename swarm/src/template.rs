//! The agent template: one agent.yml turned into the configuration of each
//! hollow agent (its node id, its own directory, its managed config file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentd::AgentConfig;

use crate::error::SwarmError;

/// Digits of the number in a node id, at least: ids of several processes
/// splitting one range sort together.
pub const MIN_ID_DIGITS: usize = 5;

/// Managed config file name when the template's `config.path` has none.
const DEFAULT_CONFIG_FILE: &str = "edge.yml";

/// Everything shared by the agents of this process; cheap to read from
/// every agent task.
#[derive(Debug)]
pub struct Template {
    config: AgentConfig,
    prefix: String,
    first: u64,
    count: u64,
    digits: usize,
    root: PathBuf,
    config_file: PathBuf,
}

impl Template {
    /// A template for agents `first .. first + count` named with `prefix`,
    /// each in a directory under `root`. Fails when a node id would be
    /// invalid.
    pub fn new(
        config: AgentConfig,
        prefix: &str,
        first: u64,
        count: u64,
        root: &Path,
    ) -> Result<Self, SwarmError> {
        let last = first
            .checked_add(count.saturating_sub(1))
            .ok_or_else(|| SwarmError::Config("--start-index plus --count overflows".into()))?;
        let digits = last.to_string().len().max(MIN_ID_DIGITS);
        let config_file = config
            .config
            .path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        let template = Self {
            config,
            prefix: prefix.to_string(),
            first,
            count,
            digits,
            root: root.to_path_buf(),
            config_file,
        };
        for n in [first, last] {
            cdn_common::check_node_id(&template.id_of(n))
                .map_err(|e| SwarmError::Config(format!("--prefix: {e}")))?;
        }
        Ok(template)
    }

    /// How many agents this process runs.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The template configuration as loaded (master, heartbeat, status …).
    pub fn base(&self) -> &AgentConfig {
        &self.config
    }

    /// The node id of the agent at `offset` (0-based) in this process.
    pub fn node_id(&self, offset: u64) -> String {
        self.id_of(self.first + offset)
    }

    fn id_of(&self, number: u64) -> String {
        format!("{}{:0width$}", self.prefix, number, width = self.digits)
    }

    /// The directory of agent `node_id`: key, certificate, managed config.
    pub fn agent_dir(&self, node_id: &str) -> PathBuf {
        self.root.join(node_id)
    }

    /// The configuration agent `node_id` runs with: the template with its
    /// node id, its directory and its managed config file inside it.
    pub fn agent_config(&self, node_id: &str) -> Arc<AgentConfig> {
        let mut config = self.config.clone();
        let dir = self.agent_dir(node_id);
        config.node.id = Some(node_id.to_string());
        config.config.path = dir.join(&self.config_file);
        config.data_dir = dir;
        Arc::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(prefix: &str, first: u64, count: u64) -> Result<Template, SwarmError> {
        Template::new(
            AgentConfig::default(),
            prefix,
            first,
            count,
            Path::new("root"),
        )
    }

    #[test]
    fn ids_are_zero_padded_so_they_sort() {
        let t = template("hollow-", 1, 200).unwrap();
        assert_eq!(t.node_id(0), "hollow-00001");
        assert_eq!(t.node_id(6), "hollow-00007");
        assert_eq!(t.node_id(199), "hollow-00200");
        let wide = template("h", 99_999, 2).unwrap();
        assert_eq!(wide.node_id(0), "h099999");
        assert_eq!(wide.node_id(1), "h100000");
    }

    #[test]
    fn each_agent_gets_its_own_directory_and_file() {
        let t = template("hollow-", 10_001, 5).unwrap();
        let c = t.agent_config("hollow-10003");
        assert_eq!(c.node.id.as_deref(), Some("hollow-10003"));
        assert_eq!(c.data_dir, Path::new("root/hollow-10003"));
        assert_eq!(c.config.path, Path::new("root/hollow-10003/edge.yml"));
    }

    #[test]
    fn invalid_prefix_is_refused() {
        let e = template("bad prefix ", 1, 3).unwrap_err();
        assert!(e.to_string().contains("--prefix"), "{e}");
        assert!(template("-x", 1, 3).is_err());
    }
}
