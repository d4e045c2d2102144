//! One module per noun; a function per verb.

pub mod config;
pub mod exec;
pub mod nodes;
