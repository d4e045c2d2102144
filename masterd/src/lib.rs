//! `masterd`: the control daemon. Agents dial in and keep one long-lived
//! connection; the master tracks them in its registry and serves operators.

pub mod admin_client;
pub mod admin_service;
pub mod agent_service;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod configs;
pub mod conn;
pub mod daemon;
pub mod error;
pub mod etcd;
pub mod events;
pub mod exec;
pub mod exposition;
pub mod gate;
pub mod ha;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod offers;
pub mod offline;
pub mod pki;
pub mod promgate;
pub mod recording;
pub mod reflection;
pub mod registry;
pub mod role;
pub mod rollouts;
pub mod selector;
pub mod server;
pub mod standby;
pub mod store;
pub mod validate;
pub mod wire;

pub use config::MasterConfig;
pub use server::Master;
