//! Checks on what agents send before it reaches the registry.

use std::collections::BTreeMap;

use crate::error::MasterError;

use cdn_proto::limits::{MAX_LABEL_BYTES, MAX_LABELS};

/// Node id syntax, as shared with agentd.
pub fn node_id(id: &str) -> Result<(), MasterError> {
    cdn_common::check_node_id(id).map_err(MasterError::Invalid)
}

/// Label count and sizes.
pub fn labels(labels: &BTreeMap<String, String>) -> Result<(), MasterError> {
    if labels.len() > MAX_LABELS {
        return Err(MasterError::Invalid(format!(
            "{} labels given, at most {MAX_LABELS} allowed",
            labels.len()
        )));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > MAX_LABEL_BYTES || v.len() > MAX_LABEL_BYTES {
            return Err(MasterError::Invalid(format!(
                "label `{}` is empty or longer than {MAX_LABEL_BYTES} bytes",
                k.escape_default()
            )));
        }
    }
    Ok(())
}
