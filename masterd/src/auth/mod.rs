//! Who is calling and what they may do, split by what each part owns:
//!
//! - [`credentials`]: issued certificates, join tokens, users, revocations
//!   (the one writer of that state);
//! - [`authn`]: from a client certificate to an operator or a node, with
//!   refusals counted and rate-limited;
//! - [`ratelimit`]: the per-source budgets authentication charges;
//! - [`enrol`]: an agent's first join, token for certificate;
//! - [`bootstrap`]: the admin credential and join token of a first start.
//!
//! The audit log and the event bus are owners of their own
//! ([`crate::audit`], [`crate::events`]).

pub mod authn;
pub mod bootstrap;
pub mod credentials;
pub mod enrol;
pub mod ratelimit;

pub use crate::role::Role;
pub use authn::{AgentIdentity, Authenticator, Caller, PeerFingerprint, peer_of};
pub use bootstrap::{ADMIN_CREDENTIAL, BOOTSTRAP_ADMIN, JOIN_TOKEN_FILE, bootstrap};
pub use credentials::Credentials;
pub use enrol::Enrolment;
