//! Which master address to try next, and when: the agent's connection
//! policy as one small state machine,
//! `Connecting → Connected → Backoff → Connecting …`.
//!
//! The dialer owns the master address list and the rotation through it
//! (`max_retries` failed tries against one address, then the next one,
//! wrapping around), the attempt counter and the jittered, capped
//! exponential delay from [`Backoff`], and the rule that only a *healthy*
//! session (one that got a heartbeat answered) resets that delay: a session
//! that dies at once must not turn into a tight loop of registrations.
//!
//! A caller asks [`Dialer::next`] for the address to try (it sleeps the
//! backoff delay first, and gives up when its [`CancellationToken`] is
//! cancelled), then tells the dialer how the try went: [`Dialer::failed`]
//! (or [`Dialer::failed_because`] when it knows why), or
//! [`Dialer::connected`] and later [`Dialer::session_ended`]. The
//! enrolment retry loop and the link use it alike. Time comes from
//! `tokio::time`, so the policy is tested under paused time.
//!
//! With several masters (active/standby), a try can go wrong in ways that
//! say where to go next ([`Failure`]): a standby names the leader, which is
//! dialled next at once (at most [`MAX_LEADER_HINTS`] times in a row
//! without a registration, so two standbys naming each other cannot keep
//! the agent busy); a standby that knows no leader (an election) sends the
//! agent on to the next address after the base delay; and an address where
//! nothing listens any more (a killed master) is left after one try.

use std::num::NonZeroU32;
use std::time::Duration;

use cdn_common::config::HostPort;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::MasterLink;

/// Leader hints followed in a row without a registration; past this a hint
/// counts as a failed try (normal rotation and backoff).
pub const MAX_LEADER_HINTS: u32 = 3;

/// Rounds through the address list at the base delay while standbys say no
/// master leads (an election is under way); after them such answers count
/// as failed tries.
const ELECTION_ROUNDS: u32 = 2;

/// Why a try failed, as far as the next address and delay go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Anything else: counts against the address (`max_retries` there,
    /// then the next one) and the delay grows.
    Other,
    /// Nothing listens at the address (connection refused): a master that
    /// was stopped or killed does not come back soon, so with several
    /// addresses the next one is tried, after the usual delay.
    Refused,
    /// The master answered UNAVAILABLE: it is a standby. With the leader's
    /// address, that is dialled next, at once; without (an election is
    /// under way), the next address after the base delay.
    Standby(Option<HostPort>),
}

/// The dialer was given no address to dial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no master address to dial: master.addr is empty")]
pub struct NoMasterAddress;

/// Where the dialer is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A try against the current address is due now or under way.
    Connecting,
    /// A try succeeded and its session is up.
    Connected,
    /// The last try failed or the last session ended: the next try waits
    /// for the backoff delay.
    Backoff,
}

/// The connection policy of one agent: addresses, rotation, backoff.
#[derive(Debug)]
pub struct Dialer {
    /// Never empty.
    addrs: Vec<HostPort>,
    policy: Backoff,
    /// The agent's own `master.max_retries`; it wins over the master's.
    own_max_retries: Option<NonZeroU32>,
    rng: StdRng,
    state: State,
    /// The address tried now, an index into `addrs`.
    index: usize,
    /// Failed tries against `addrs[index]` since it was last moved to or
    /// last connected.
    failures_here: u32,
    /// Tries since the last healthy session; sets the backoff delay.
    attempt: u32,
    /// Since when no session has been up (None before the first failure).
    down_since: Option<Instant>,
    /// A leader a standby named that is not in `addrs`: tried instead of
    /// `addrs[index]` until a try there fails.
    leader: Option<HostPort>,
    /// Leader hints followed since the last registration.
    hints_followed: u32,
    /// The leader the last hint named, while its try is under way.
    followed: Option<HostPort>,
    /// A leader a standby named that could not be reached: said to the
    /// standby on the next try, so it answers once the election moved on.
    unreachable: Option<HostPort>,
    /// Standby answers without a leader since the last registration.
    election_answers: u32,
    /// The next delay is the base delay, whatever `attempt` says (an
    /// election is under way).
    short_delay: bool,
}

impl Dialer {
    /// A dialer over `addrs` (tried in order) with `policy`; the first try
    /// is due at once.
    pub fn new(addrs: Vec<HostPort>, policy: Backoff) -> Result<Self, NoMasterAddress> {
        if addrs.is_empty() {
            return Err(NoMasterAddress);
        }
        Ok(Self {
            addrs,
            policy,
            own_max_retries: None,
            rng: StdRng::from_os_rng(),
            state: State::Connecting,
            index: 0,
            failures_here: 0,
            attempt: 0,
            down_since: None,
            leader: None,
            hints_followed: 0,
            followed: None,
            unreachable: None,
            election_answers: 0,
            short_delay: false,
        })
    }

    /// The dialer of an agent configured with `master`: its addresses, the
    /// seed's policy until the master hands out its own, and
    /// `master.max_retries` when set, which wins over any policy.
    pub fn for_master(master: &MasterLink) -> Result<Self, NoMasterAddress> {
        let mut dialer = Self::new(master.addr.0.clone(), Backoff::default())?;
        dialer.own_max_retries = master.max_retries;
        dialer.adopt(Backoff::default());
        Ok(dialer)
    }

    /// Follows `policy` (the master's, from a registration) from the next
    /// delay on; the agent's own `master.max_retries` still wins.
    pub fn adopt(&mut self, policy: Backoff) {
        let max_retries = self.own_max_retries.map_or(policy.max_retries, |n| n.get());
        self.policy = Backoff {
            max_retries,
            ..policy
        };
    }

    /// The policy in force.
    pub fn policy(&self) -> &Backoff {
        &self.policy
    }

    /// Where the dialer is in its cycle.
    pub fn state(&self) -> State {
        self.state
    }

    /// Tries since the last healthy session (0 before the first failure);
    /// for log lines.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The address tried now, or next: a leader a standby named, else the
    /// current one of the list.
    pub fn address(&self) -> &HostPort {
        self.leader.as_ref().unwrap_or(&self.addrs[self.index])
    }

    /// The address to try next, after the backoff delay when the last try
    /// failed or the last session ended; None once `cancel` is cancelled,
    /// at once even in the middle of the delay. Each address it returns
    /// must be answered with [`failed`](Self::failed) or
    /// [`connected`](Self::connected).
    pub async fn next(&mut self, cancel: &CancellationToken) -> Option<HostPort> {
        if cancel.is_cancelled() {
            return None;
        }
        if self.state == State::Connected {
            // The caller did not say how the session went: not healthy.
            self.session_ended(false);
        }
        if self.state == State::Backoff {
            let delay = if std::mem::take(&mut self.short_delay) {
                self.policy.delay(0, &mut self.rng)
            } else {
                let delay = self.policy.delay(self.attempt, &mut self.rng);
                self.attempt = self.attempt.saturating_add(1);
                delay
            };
            debug!(delay_ms = delay.as_millis() as u64, "backing off");
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            self.state = State::Connecting;
        }
        Some(self.address().clone())
    }

    /// The try failed: it counts against the current address, and after
    /// `max_retries` failures there the next address (wrapping around) is
    /// tried. A list of one address is never left.
    pub fn failed(&mut self) {
        self.failed_because(Failure::Other);
    }

    /// The try failed for `why`, which may say where to go next (see
    /// [`Failure`]). A failed try at a leader a standby named returns to
    /// the list where it left it.
    pub fn failed_because(&mut self, why: Failure) {
        self.down_since.get_or_insert_with(Instant::now);
        self.state = State::Backoff;
        self.short_delay = false;
        if let Some(leader) = self.followed.take() {
            // The named leader itself was a standby: not unreachable.
            if !matches!(why, Failure::Standby(_)) {
                self.unreachable = Some(leader);
            }
        }
        match why {
            Failure::Standby(Some(leader)) if self.hints_followed < MAX_LEADER_HINTS => {
                self.follow(leader);
                return;
            }
            Failure::Standby(Some(leader)) => {
                // Said once until the next registration.
                if self.hints_followed == MAX_LEADER_HINTS {
                    self.hints_followed += 1;
                    warn!(
                        %leader,
                        "followed {MAX_LEADER_HINTS} leader hints in a row without registering; back to the usual rotation and backoff"
                    );
                }
            }
            Failure::Standby(None)
                if self.election_answers < ELECTION_ROUNDS.saturating_mul(self.len()) =>
            {
                self.election_answers += 1;
                self.short_delay = true;
                self.leader = None;
                self.move_on();
                return;
            }
            Failure::Refused if self.leader.is_none() && self.addrs.len() > 1 => {
                self.move_on();
                return;
            }
            Failure::Standby(None) | Failure::Refused | Failure::Other => {}
        }
        if self.leader.take().is_some() {
            // The named leader failed: back to the list, where the next try
            // counts as usual.
            return;
        }
        self.failures_here = self.failures_here.saturating_add(1);
        if self.failures_here >= self.policy.max_retries {
            self.move_on();
        }
    }

    /// Dials `leader`, named by a standby, next and at once.
    fn follow(&mut self, leader: HostPort) {
        self.hints_followed += 1;
        self.followed = Some(leader.clone());
        if self.unreachable.as_ref() == Some(&leader) {
            self.unreachable = None;
        }
        info!(
            standby = %self.address(),
            %leader,
            "the master is a standby; dialling the leader it named"
        );
        self.state = State::Connecting;
        self.failures_here = 0;
        match self.addrs.iter().position(|a| *a == leader) {
            Some(i) => {
                self.index = i;
                self.leader = None;
            }
            None => self.leader = Some(leader),
        }
    }

    /// The next address of the list (wrapping around), with its retries
    /// afresh; a list of one address is never left.
    fn move_on(&mut self) {
        self.failures_here = 0;
        if self.addrs.len() > 1 {
            self.index = (self.index + 1) % self.addrs.len();
            info!(next = %self.address(), "moving to the next master address");
        }
    }

    /// A leader a standby named that could not be reached since, to tell
    /// the standby on the next try.
    pub fn unreachable_leader(&self) -> Option<&HostPort> {
        self.unreachable.as_ref()
    }

    /// Addresses in the list.
    fn len(&self) -> u32 {
        u32::try_from(self.addrs.len()).unwrap_or(u32::MAX)
    }

    /// The try succeeded and a session is up: the current address starts
    /// afresh. Returns how long no session was up, None if the link had
    /// never been down. The backoff delay is not reset here, only by a
    /// healthy [`session_ended`](Self::session_ended).
    pub fn connected(&mut self) -> Option<Duration> {
        self.state = State::Connected;
        self.failures_here = 0;
        self.hints_followed = 0;
        self.followed = None;
        self.unreachable = None;
        self.election_answers = 0;
        self.down_since.take().map(|since| since.elapsed())
    }

    /// The session ended. Only a `healthy` one (it got a heartbeat
    /// answered) resets the backoff delay to its base; after any other the
    /// delay keeps growing, so a session that dies at once cannot turn into
    /// a tight loop of registrations.
    pub fn session_ended(&mut self, healthy: bool) {
        if healthy {
            self.attempt = 0;
        }
        self.down_since = Some(Instant::now());
        self.state = State::Backoff;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str) -> HostPort {
        HostPort {
            host: host.into(),
            port: 50051,
        }
    }

    fn policy(base_ms: u64, max_ms: u64, jitter: f64, max_retries: u32) -> Backoff {
        Backoff {
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
            jitter,
            max_retries,
        }
    }

    fn dialer(hosts: &[&str], policy: Backoff) -> Dialer {
        Dialer::new(hosts.iter().map(|h| addr(h)).collect(), policy).unwrap()
    }

    /// `next` under paused time: the address and how long it slept.
    async fn timed_next(d: &mut Dialer) -> (String, Duration) {
        let started = Instant::now();
        let a = d.next(&CancellationToken::new()).await.unwrap();
        (a.host, started.elapsed())
    }

    /// Fails `n` tries and returns the delays slept before each.
    async fn fail_times(d: &mut Dialer, n: usize) -> Vec<Duration> {
        let mut slept = Vec::new();
        for _ in 0..n {
            d.failed();
            slept.push(timed_next(d).await.1);
        }
        slept
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_try_is_at_once_then_delays_double_up_to_the_cap() {
        let mut d = dialer(&["a"], policy(100, 1000, 0.0, 100));
        assert_eq!(timed_next(&mut d).await.1, Duration::ZERO);
        assert_eq!(d.state(), State::Connecting);
        let slept = fail_times(&mut d, 7).await;
        // The cap is a minimum of the doubled delay and the cap, never a
        // maximum: the first delays stay well below it.
        assert_eq!(slept, ms(&[100, 200, 400, 800, 1000, 1000, 1000]));
        let far = fail_times(&mut d, 40).await;
        assert!(far.iter().all(|&s| s == Duration::from_secs(1)), "{far:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_its_bounds_and_under_the_cap() {
        let p = policy(100, 3000, 0.5, 1000);
        let mut d = dialer(&["a"], p);
        timed_next(&mut d).await;
        let slept = fail_times(&mut d, 60).await;
        // Paused time wakes a sleep at its deadline rounded up to the
        // timer's millisecond.
        let tick = Duration::from_millis(1);
        for (attempt, s) in slept.iter().enumerate() {
            let nominal = p.nominal(attempt as u32);
            assert!(*s >= nominal.mul_f64(0.5), "try {attempt}: {s:?}");
            assert!(*s <= nominal.mul_f64(1.5) + tick, "try {attempt}: {s:?}");
            assert!(
                *s <= p.max_delay + tick,
                "try {attempt}: {s:?} above the cap"
            );
        }
        let distinct: std::collections::BTreeSet<_> = slept[..8].iter().collect();
        assert!(distinct.len() > 4, "too little jitter: {slept:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn rotates_after_max_retries_on_one_address_and_wraps_around() {
        let mut d = dialer(&["a", "b", "c"], policy(10, 100, 0.0, 2));
        let mut tried = vec![timed_next(&mut d).await.0];
        for _ in 0..7 {
            d.failed();
            tried.push(timed_next(&mut d).await.0);
        }
        assert_eq!(tried, ["a", "a", "b", "b", "c", "c", "a", "a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_gives_the_address_its_retries_afresh() {
        let mut d = dialer(&["a", "b"], policy(10, 100, 0.0, 2));
        timed_next(&mut d).await;
        d.failed();
        assert_eq!(timed_next(&mut d).await.0, "a");
        d.connected();
        d.session_ended(false);
        assert_eq!(timed_next(&mut d).await.0, "a");
        d.failed();
        assert_eq!(
            timed_next(&mut d).await.0,
            "a",
            "one failure since connecting"
        );
        d.failed();
        assert_eq!(timed_next(&mut d).await.0, "b");
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_address_is_never_left() {
        let mut d = dialer(&["only"], policy(10, 50, 0.0, 1));
        timed_next(&mut d).await;
        for _ in 0..10 {
            d.failed();
            assert_eq!(timed_next(&mut d).await.0, "only");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_healthy_session_resets_the_delay() {
        let mut d = dialer(&["a"], policy(100, 60_000, 0.0, 100));
        timed_next(&mut d).await;
        assert_eq!(fail_times(&mut d, 3).await, ms(&[100, 200, 400]));
        assert_eq!(d.attempt(), 3);

        // A session that dies before any heartbeat was answered: the delay
        // keeps doubling.
        d.connected();
        assert_eq!(d.state(), State::Connected);
        d.session_ended(false);
        assert_eq!(d.state(), State::Backoff);
        assert_eq!(timed_next(&mut d).await.1, Duration::from_millis(800));
        assert_eq!(d.attempt(), 4);

        // A healthy one: back to the base delay.
        d.connected();
        d.session_ended(true);
        assert_eq!(d.attempt(), 0);
        assert_eq!(timed_next(&mut d).await.1, Duration::from_millis(100));
        assert_eq!(fail_times(&mut d, 1).await, ms(&[200]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_left_unreported_counts_as_unhealthy() {
        let mut d = dialer(&["a"], policy(100, 60_000, 0.0, 100));
        timed_next(&mut d).await;
        fail_times(&mut d, 2).await;
        d.connected();
        assert_eq!(timed_next(&mut d).await.1, Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_during_the_delay_returns_at_once() {
        let mut d = dialer(&["a"], policy(60_000, 60_000, 0.0, 3));
        timed_next(&mut d).await;
        d.failed();
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let (next, ()) = tokio::join!(d.next(&cancel), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        });
        assert_eq!(next, None);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // Once cancelled, no more tries.
        assert_eq!(d.next(&cancel).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn connected_tells_how_long_the_link_was_down() {
        let mut d = dialer(&["a"], policy(100, 60_000, 0.0, 100));
        timed_next(&mut d).await;
        assert_eq!(d.connected(), None, "never down before");
        d.session_ended(true);
        timed_next(&mut d).await;
        d.failed();
        timed_next(&mut d).await;
        assert_eq!(d.connected(), Some(Duration::from_millis(300)));
    }

    fn hint(host: &str) -> Failure {
        Failure::Standby(Some(addr(host)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_standbys_leader_hint_is_dialled_at_once() {
        let mut d = dialer(&["a", "b", "c"], policy(100, 60_000, 0.0, 3));
        timed_next(&mut d).await;
        d.failed();
        timed_next(&mut d).await;
        d.failed_because(hint("c"));
        assert_eq!(d.state(), State::Connecting);
        assert_eq!(timed_next(&mut d).await, ("c".into(), Duration::ZERO));
        // The rotation goes on from the leader's place in the list.
        d.failed_because(Failure::Refused);
        assert_eq!(timed_next(&mut d).await.0, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn a_named_leader_that_cannot_be_reached_is_told_to_the_standby() {
        let mut d = dialer(&["a", "b"], policy(100, 60_000, 0.0, 3));
        // a was killed; b, a standby, still names it (a's lease runs on).
        timed_next(&mut d).await;
        d.failed_because(Failure::Refused);
        assert_eq!(timed_next(&mut d).await.0, "b");
        assert_eq!(d.unreachable_leader(), None);
        d.failed_because(hint("a"));
        assert_eq!(timed_next(&mut d).await.0, "a");
        d.failed_because(Failure::Refused);
        // Back to b, saying a did not answer (b holds its answer until the
        // election names another leader).
        assert_eq!(timed_next(&mut d).await.0, "b");
        assert_eq!(d.unreachable_leader(), Some(&addr("a")));
        // b was elected and names itself: dialled at once, and a is
        // forgotten once registered.
        d.failed_because(hint("b"));
        assert_eq!(timed_next(&mut d).await, ("b".into(), Duration::ZERO));
        d.connected();
        assert_eq!(d.unreachable_leader(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_outside_the_list_is_tried_until_a_try_there_fails() {
        let mut d = dialer(&["a", "b"], policy(100, 60_000, 0.0, 3));
        timed_next(&mut d).await;
        d.failed_because(hint("elsewhere"));
        assert_eq!(
            timed_next(&mut d).await,
            ("elsewhere".into(), Duration::ZERO)
        );
        // Registered there: a session that ends comes back to it.
        d.connected();
        d.session_ended(true);
        assert_eq!(timed_next(&mut d).await.0, "elsewhere");
        // Nothing listens there any more: back to the list where it was.
        d.failed_because(Failure::Refused);
        assert_eq!(d.address().host, "a");
        assert_eq!(timed_next(&mut d).await.0, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn standbys_naming_each_other_are_followed_only_a_few_times() {
        let mut d = dialer(&["a", "b"], policy(100, 60_000, 0.0, 2));
        let mut tried = vec![timed_next(&mut d).await];
        // a names b, b names a, and so on.
        for _ in 0..6 {
            let other = if tried.last().unwrap().0 == "a" {
                "b"
            } else {
                "a"
            };
            d.failed_because(hint(other));
            tried.push(timed_next(&mut d).await);
        }
        let hosts: Vec<&str> = tried.iter().map(|(h, _)| h.as_str()).collect();
        let slept: Vec<Duration> = tried.iter().map(|(_, s)| *s).collect();
        // Three hints at once; then each counts as a failed try: two at
        // one address (max_retries), then the next, with growing delays.
        assert_eq!(hosts, ["a", "b", "a", "b", "b", "a", "a"]);
        assert_eq!(slept, ms(&[0, 0, 0, 0, 100, 200, 400]));
        // A registration gives the hints back.
        d.connected();
        d.session_ended(true);
        timed_next(&mut d).await;
        d.failed_because(hint("b"));
        assert_eq!(timed_next(&mut d).await, ("b".into(), Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn an_election_moves_on_after_the_base_delay_for_two_rounds() {
        let mut d = dialer(&["a", "b"], policy(100, 60_000, 0.0, 3));
        timed_next(&mut d).await;
        // The delay has grown before the election started.
        assert_eq!(fail_times(&mut d, 3).await, ms(&[100, 200, 400]));
        assert_eq!(d.address().host, "b");
        let mut tried = Vec::new();
        for _ in 0..5 {
            d.failed_because(Failure::Standby(None));
            tried.push(timed_next(&mut d).await);
        }
        assert_eq!(
            tried,
            [
                ("a".into(), Duration::from_millis(100)),
                ("b".into(), Duration::from_millis(100)),
                ("a".into(), Duration::from_millis(100)),
                ("b".into(), Duration::from_millis(100)),
                // Two rounds done: an ordinary failure, the delay grows on.
                ("b".into(), Duration::from_millis(800)),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_leaves_the_address_when_there_are_others() {
        let mut d = dialer(&["a", "b"], policy(100, 60_000, 0.0, 3));
        timed_next(&mut d).await;
        d.connected();
        // The master was killed: its session ends, the next try is refused.
        d.session_ended(true);
        assert_eq!(
            timed_next(&mut d).await,
            ("a".into(), Duration::from_millis(100))
        );
        d.failed_because(Failure::Refused);
        assert_eq!(
            timed_next(&mut d).await,
            ("b".into(), Duration::from_millis(200))
        );

        // One address: refusals count as any failure, and it is never left.
        let mut d = dialer(&["only"], policy(100, 60_000, 0.0, 2));
        timed_next(&mut d).await;
        for _ in 0..3 {
            d.failed_because(Failure::Refused);
            assert_eq!(timed_next(&mut d).await.0, "only");
        }
    }

    #[test]
    fn the_agents_own_max_retries_wins_over_the_masters() {
        let mut master = MasterLink::default();
        let mut d = Dialer::for_master(&master).unwrap();
        assert_eq!(*d.policy(), Backoff::default());
        d.adopt(policy(5, 50, 0.1, 7));
        assert_eq!(d.policy().max_retries, 7);
        assert_eq!(d.policy().base_delay, Duration::from_millis(5));

        master.max_retries = NonZeroU32::new(2);
        let mut d = Dialer::for_master(&master).unwrap();
        assert_eq!(d.policy().max_retries, 2);
        d.adopt(policy(5, 50, 0.1, 7));
        assert_eq!(d.policy().max_retries, 2);
        assert_eq!(d.policy().base_delay, Duration::from_millis(5));
    }

    #[test]
    fn an_empty_address_list_is_refused() {
        assert_eq!(
            Dialer::new(Vec::new(), Backoff::default()).unwrap_err(),
            NoMasterAddress
        );
    }
}
