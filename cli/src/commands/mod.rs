//! One module per noun; a function per verb.

pub mod audit;
pub mod config;
pub mod context;
pub mod events;
pub mod exec;
pub mod masters;
pub mod nodes;
pub mod rollout;
