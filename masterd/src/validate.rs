//! Checks on what agents send before it reaches the registry.

use std::collections::BTreeMap;

use crate::error::MasterError;

/// Node id syntax, as shared with agentd.
pub fn node_id(id: &str) -> Result<(), MasterError> {
    cdn_common::check_node_id(id).map_err(MasterError::Invalid)
}

/// Label count and sizes.
pub fn labels(labels: &BTreeMap<String, String>) -> Result<(), MasterError> {
    cdn_common::check_labels(labels.iter()).map_err(MasterError::Invalid)
}
