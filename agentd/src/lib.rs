//! `agentd`: the edge agent. It dials the master, registers, keeps one
//! connection with its command stream open, heartbeats, reports system
//! figures, and reconnects by itself whenever the link breaks.

pub mod apply;
pub mod backoff;
pub mod chunks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dialer;
pub mod exec;
pub mod guard;
pub mod health;
pub mod hook;
pub mod identity;
pub mod link;
pub mod pace;
pub mod reload;
pub mod status;

pub use config::AgentConfig;
pub use link::Link;
