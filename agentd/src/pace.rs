//! A ticker whose interval is a key of the configuration in force
//! (`heartbeat.interval`, `status.report_interval`,
//! `status.collect_interval`): when SIGHUP reloads agent.yml with another
//! value, the ticker restarts at the new interval, the next tick one new
//! interval after the reload.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::config::{AgentConfig, LiveConfig};

/// Ticks every `pick(config in force)`; the first tick is at once.
pub struct Pace {
    live: LiveConfig,
    pick: fn(&AgentConfig) -> Duration,
    every: Duration,
    ticker: Interval,
}

impl Pace {
    /// A ticker at the interval `pick` reads from `live`.
    pub fn new(live: LiveConfig, pick: fn(&AgentConfig) -> Duration) -> Self {
        let every = pick(&live.borrow());
        Self {
            live,
            pick,
            every,
            ticker: ticker(Instant::now(), every),
        }
    }

    /// The interval in force.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Waits for the next tick. A tick that came late is not caught up:
    /// the next one is an interval after it.
    pub async fn tick(&mut self) {
        loop {
            tokio::select! {
                _ = self.ticker.tick() => return,
                Ok(()) = self.live.changed() => {
                    let now = (self.pick)(&self.live.borrow_and_update());
                    if now != self.every {
                        self.every = now;
                        self.ticker = ticker(Instant::now() + now, now);
                    }
                }
            }
        }
    }
}

fn ticker(start: Instant, every: Duration) -> Interval {
    let mut t = tokio::time::interval_at(start, every);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn with_interval(ms: u64) -> Arc<AgentConfig> {
        let mut c = AgentConfig::default();
        c.heartbeat.interval = Duration::from_millis(ms);
        Arc::new(c)
    }

    #[tokio::test(start_paused = true)]
    async fn a_reloaded_interval_takes_over_at_once() {
        let (tx, rx) = tokio::sync::watch::channel(with_interval(10_000));
        let mut pace = Pace::new(rx, |c| c.heartbeat.interval);
        let t0 = Instant::now();
        pace.tick().await;
        assert_eq!(t0.elapsed(), Duration::ZERO, "the first tick is at once");
        let waiting = tokio::spawn(async move {
            pace.tick().await;
            pace
        });
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        tx.send_replace(with_interval(500));
        let mut pace = waiting.await.unwrap();
        assert_eq!(t0.elapsed(), Duration::from_millis(1_500));
        assert_eq!(pace.every(), Duration::from_millis(500));
        pace.tick().await;
        assert_eq!(t0.elapsed(), Duration::from_millis(2_000));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_live_configuration_it_keeps_its_interval() {
        let (tx, rx) = tokio::sync::watch::channel(with_interval(300));
        drop(tx);
        let mut pace = Pace::new(rx, |c| c.heartbeat.interval);
        let t0 = Instant::now();
        pace.tick().await;
        pace.tick().await;
        pace.tick().await;
        assert_eq!(t0.elapsed(), Duration::from_millis(600));
    }
}
