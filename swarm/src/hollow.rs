//! One hollow agent: waits for its turn in the ramp, gets its identity,
//! then runs the real agentd link (with a real applier writing into its own
//! directory and a real executor) until shutdown. Its [`Slot`] is what the
//! swarm's statistics read.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agentd::Link;
use agentd::apply::Applier;
use agentd::exec::Executor;
use agentd::link::LinkCounters;
use agentd::status::Snapshot;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::enrol::{Enroller, NoIdentity};
use crate::error::SwarmError;
use crate::template::Template;

/// What the swarm knows of one agent; a few words each, filled in once.
#[derive(Debug, Default)]
pub struct Slot {
    enrolled_in: OnceLock<Duration>,
    link_started: OnceLock<Instant>,
    counters: OnceLock<Arc<LinkCounters>>,
}

impl Slot {
    /// The link's counters, once the link runs.
    pub fn counters(&self) -> Option<&LinkCounters> {
        self.counters.get().map(Arc::as_ref)
    }

    /// Whether the link has been started.
    pub fn started(&self) -> bool {
        self.link_started.get().is_some()
    }

    /// From the link's start to its first successful registration.
    pub fn registration_latency(&self) -> Option<Duration> {
        let started = *self.link_started.get()?;
        let first = self.counters()?.first_registered()?;
        Some(first.saturating_duration_since(started))
    }

    /// When the link first registered.
    pub fn first_registered(&self) -> Option<Instant> {
        self.counters()?.first_registered()
    }

    /// How long this run's enrolment took (None if the agent was enrolled
    /// before, or has not enrolled yet).
    pub fn enrolment(&self) -> Option<Duration> {
        self.enrolled_in.get().copied()
    }
}

/// What every agent task shares.
pub struct Shared {
    pub template: Template,
    pub enroller: Enroller,
    /// The one status collector all agents report from.
    pub status: watch::Receiver<Snapshot>,
    /// One per agent, by offset.
    pub slots: Box<[Slot]>,
    /// Owner of the agents' appliers.
    pub tasks: TaskTracker,
    /// Where an agent reports an error that must stop the swarm.
    pub fatal: mpsc::Sender<SwarmError>,
}

/// Runs agent `offset` from `start_at` until `shutdown`.
pub async fn run(
    shared: Arc<Shared>,
    offset: u64,
    start_at: tokio::time::Instant,
    shutdown: CancellationToken,
) {
    let node_id = shared.template.node_id(offset);
    let span = tracing::info_span!("agent", node = %node_id);
    run_agent(shared, offset, node_id, start_at, shutdown)
        .instrument(span)
        .await;
}

async fn run_agent(
    shared: Arc<Shared>,
    offset: u64,
    node_id: String,
    start_at: tokio::time::Instant,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep_until(start_at) => {}
    }
    let Some(slot) = shared.slots.get(offset as usize) else {
        return;
    };
    let config = shared.template.agent_config(&node_id);
    let began = Instant::now();
    let identity = match shared.enroller.identity(&config, &node_id, &shutdown).await {
        Ok((id, enrolled)) => {
            if enrolled {
                let _ = slot.enrolled_in.set(began.elapsed());
            }
            id.map(Arc::new)
        }
        Err(NoIdentity::Stopped) => return,
        Err(NoIdentity::Refused(message)) => {
            let _ = shared.fatal.try_send(SwarmError::Enrolment {
                node: node_id,
                message,
            });
            return;
        }
    };
    let applier = Applier::start(config.config.clone(), shutdown.clone(), &shared.tasks);
    let executor = Executor::new(config.exec.clone()).without_warm_guard();
    let name = node_id.clone();
    let link = Link::new(
        config,
        node_id,
        shared.status.clone(),
        applier,
        executor,
        identity,
    );
    let _ = slot.counters.set(link.counters());
    let _ = slot.link_started.set(Instant::now());
    if let Some(why) = link.run(shutdown).await {
        tracing::warn!(node = %name, "hollow agent stopped: {why}");
    }
}
