//! Which execution's history `deckhand watch` reads next, and when. Pure (the time is passed
//! in, the jitter comes from a seeded generator), so that the pacing is tested without the
//! network.
//!
//! GetExecutionHistory is throttled per account and Region: a bucket of 250 calls refilling 5
//! per second (Step Functions quotas, "API action throttling"), shared with the console, other
//! `deckhand watch`es and every other client. Reading each followed execution once a second
//! does not fit a push to 200 services (200 calls a second), so:
//! - every call, whatever execution and page it is for, spends from one budget, a token
//!   bucket of [`Pacing::rate`] calls a second, under the account's refill;
//! - the executions asked for (roots) come first, at most once per [`Pacing::interval`]: their
//!   histories name the service executions they start and, as each ends, its result;
//! - service executions are read only while they run, least recently read first (round-robin),
//!   those seen failing (a FAILED verdict, a rollback) before the others; one whose end the
//!   parent reported is read once more for its last lines if it was read before (else its
//!   result line says it all), then dropped, and never followed again;
//! - a ThrottlingException pauses every read (the bucket is the account's, not the call's)
//!   for an exponentially growing, jittered time and halves the rate, which grows back by
//!   [`Pacing::recovery`] per successful call.

use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Calls a second, at most (the budget's refill).
    pub rate: f64,
    /// Calls that may be made at once after a quiet spell (the budget's size).
    pub burst: f64,
    /// The rate is never halved below this.
    pub min_rate: f64,
    /// Added back to the rate after each successful call, up to `rate`.
    pub recovery: f64,
    /// Seconds between two reads of the same execution, at least.
    pub interval: f64,
    /// The first pause after a throttling error, in seconds; doubled for each one in a row.
    pub backoff: f64,
    /// The longest pause.
    pub backoff_cap: f64,
}

/// 3 calls a second leaves 2 of the account's 5 to everyone else; a single deployment (the
/// push and its service execution) is still read every second.
pub const PACING: Pacing =
    Pacing { rate: 3.0, burst: 3.0, min_rate: 0.25, recovery: 0.05, interval: 1.0, backoff: 1.0, backoff_cap: 30.0 };

/// What an execution is read for, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// An execution the user asked to follow.
    Root,
    /// A service execution that ended: its last lines, then it is dropped.
    LastRead,
    /// A service execution seen failing: its rollback is what the user wants to see.
    Failing,
    Running,
}

#[derive(Debug)]
struct Entry {
    arn: String,
    class: Class,
    read_at: Option<f64>,
    order: u64,
}

impl Entry {
    fn due(&self, interval: f64) -> f64 {
        self.read_at.map_or(f64::NEG_INFINITY, |at| at + interval)
    }
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Read this execution's new events (one call; further pages ask [`Scheduler::page`]).
    Read(String),
    /// Nothing may be read before this time.
    Wait(f64),
    /// Nothing is followed any more.
    Done,
}

#[derive(Debug)]
pub struct Scheduler {
    pacing: Pacing,
    rate: f64,
    tokens: f64,
    refilled_at: f64,
    entries: Vec<Entry>,
    known: HashSet<String>,
    paused_until: f64,
    throttles: u32,
    seed: u64,
    order: u64,
}

impl Scheduler {
    pub fn new(pacing: Pacing, now: f64, seed: u64) -> Self {
        Scheduler {
            rate: pacing.rate,
            tokens: pacing.burst,
            refilled_at: now,
            pacing,
            entries: Vec::new(),
            known: HashSet::new(),
            paused_until: f64::NEG_INFINITY,
            throttles: 0,
            seed: seed | 1,
            order: 0,
        }
    }

    /// Follows `arn` (a root, or a service execution a root started). False when it was
    /// followed before: an execution dropped is never followed again.
    pub fn follow(&mut self, arn: &str, root: bool) -> bool {
        if !self.known.insert(arn.to_string()) {
            return false;
        }
        self.order += 1;
        let class = if root { Class::Root } else { Class::Running };
        self.entries.push(Entry { arn: arn.to_string(), class, read_at: None, order: self.order });
        true
    }

    /// Whether `arn` is still read.
    #[cfg(test)]
    pub fn following(&self, arn: &str) -> bool {
        self.entries.iter().any(|e| e.arn == arn)
    }

    pub fn next(&mut self, now: f64) -> Next {
        if self.entries.is_empty() {
            return Next::Done;
        }
        if now < self.paused_until {
            return Next::Wait(self.paused_until);
        }
        let interval = self.pacing.interval;
        let due = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.due(interval) <= now)
            .min_by(|(_, a), (_, b)| {
                (a.class, a.read_at.unwrap_or(f64::NEG_INFINITY), a.order)
                    .partial_cmp(&(b.class, b.read_at.unwrap_or(f64::NEG_INFINITY), b.order))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(index, _)| index);
        let Some(index) = due else {
            let soonest = self.entries.iter().map(|e| e.due(interval)).fold(f64::INFINITY, f64::min);
            return Next::Wait(soonest);
        };
        if let Some(until) = self.spend(now) {
            return Next::Wait(until);
        }
        self.entries[index].read_at = Some(now);
        Next::Read(self.entries[index].arn.clone())
    }

    /// Another page of the read under way: it spends from the budget too. `None`: go on;
    /// `Some(t)`: wait until `t` and ask again.
    pub fn page(&mut self, now: f64) -> Option<f64> {
        if now < self.paused_until {
            return Some(self.paused_until);
        }
        self.spend(now)
    }

    fn spend(&mut self, now: f64) -> Option<f64> {
        let elapsed = (now - self.refilled_at).max(0.0);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.pacing.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(now + (1.0 - self.tokens) / self.rate)
        }
    }

    /// A read of `arn` succeeded; `ended`: its history holds its end. An ended execution, or one
    /// that had its last read, is dropped.
    pub fn read(&mut self, arn: &str, ended: bool) {
        self.throttles = 0;
        self.rate = (self.rate + self.pacing.recovery).min(self.pacing.rate);
        self.entries.retain(|e| e.arn != arn || !(ended || e.class == Class::LastRead));
    }

    /// The parent's history says the service execution `arn` ended. True when it is read once
    /// more (it was read before: its last lines are still to be printed); false when it is
    /// dropped now (never read: its result line says it all).
    pub fn ended(&mut self, arn: &str) -> bool {
        let Some(index) = self.entries.iter().position(|e| e.arn == arn) else { return false };
        if self.entries[index].read_at.is_none() {
            self.entries.remove(index);
            return false;
        }
        let entry = &mut self.entries[index];
        entry.class = Class::LastRead;
        true
    }

    /// The service execution `arn` is failing (rolling back): read it before the others.
    pub fn failing(&mut self, arn: &str) {
        for entry in self.entries.iter_mut().filter(|e| e.arn == arn && e.class == Class::Running) {
            entry.class = Class::Failing;
        }
    }

    /// A call was throttled: every read pauses until the returned time, and the rate halves.
    pub fn throttled(&mut self, now: f64) -> f64 {
        self.throttles = self.throttles.saturating_add(1);
        self.rate = (self.rate / 2.0).max(self.pacing.min_rate);
        self.tokens = 0.0;
        self.refilled_at = now;
        let exponent = i32::try_from(self.throttles - 1).unwrap_or(i32::MAX).min(30);
        let ceiling = (self.pacing.backoff * 2f64.powi(exponent)).min(self.pacing.backoff_cap);
        // Equal jitter: at least half the ceiling (a real pause), at most all of it, so that
        // several clients throttled together do not come back together.
        let pause = ceiling / 2.0 + self.random() * ceiling / 2.0;
        self.paused_until = now + pause;
        self.paused_until
    }

    /// The rate now (calls a second).
    #[cfg(test)]
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// xorshift64*: a fraction in [0, 1).
    fn random(&mut self) -> f64 {
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        (self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Runs the scheduler for `seconds` of simulated time; `read` answers each read (true: the
    /// execution has ended). Returns the reads in order, with their times.
    fn run(
        scheduler: &mut Scheduler,
        from: f64,
        seconds: f64,
        mut read: impl FnMut(&str, f64) -> bool,
    ) -> Vec<(f64, String)> {
        let mut now = from;
        let mut reads = Vec::new();
        while now < from + seconds {
            match scheduler.next(now) {
                Next::Done => break,
                Next::Wait(until) => now = until.max(now + 1e-6),
                Next::Read(arn) => {
                    let ended = read(&arn, now);
                    scheduler.read(&arn, ended);
                    reads.push((now, arn));
                }
            }
        }
        reads
    }

    fn children(scheduler: &mut Scheduler, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let arn = format!("child-{i:03}");
                assert!(scheduler.follow(&arn, false));
                arn
            })
            .collect()
    }

    #[test]
    fn the_root_is_read_first_then_the_children_round_robin() {
        let mut scheduler = Scheduler::new(PACING, 0.0, 7);
        scheduler.follow("root", true);
        children(&mut scheduler, 3);
        let reads = run(&mut scheduler, 0.0, 3.0, |_, _| false);
        let names: Vec<&str> = reads.iter().map(|(_, arn)| arn.as_str()).collect();
        assert_eq!(&names[..4], ["root", "child-000", "child-001", "child-002"]);
        // Each second: the root again, then the child read longest ago.
        assert_eq!(names.iter().filter(|n| **n == "root").count(), 3, "{names:?}");
        let at: Vec<f64> = reads.iter().filter(|(_, a)| a == "root").map(|(t, _)| *t).collect();
        assert!(at.windows(2).all(|w| w[1] - w[0] >= PACING.interval - 1e-9), "the root at most once a second: {at:?}");
    }

    #[test]
    fn two_hundred_services_stay_within_the_budget_and_each_is_read() {
        let mut scheduler = Scheduler::new(PACING, 0.0, 7);
        scheduler.follow("root", true);
        let all = children(&mut scheduler, 200);
        let seconds = 110.0;
        let reads = run(&mut scheduler, 0.0, seconds, |_, _| false);
        // Never more than the burst plus the refill, in any window.
        for (index, (start, _)) in reads.iter().enumerate() {
            let in_window = reads[index..].iter().take_while(|(t, _)| *t < start + 10.0).count() as f64;
            assert!(in_window <= PACING.burst + 10.0 * PACING.rate + 1e-9, "{in_window} calls in 10 s from {start}");
        }
        assert!(reads.len() as f64 <= PACING.burst + seconds * PACING.rate);
        let roots = reads.iter().filter(|(_, a)| a == "root").count() as f64;
        assert!(roots >= seconds - 1.0, "the root is read every second however many children: {roots}");
        let mut count: HashMap<&str, usize> = HashMap::new();
        for (_, arn) in &reads {
            *count.entry(arn.as_str()).or_default() += 1;
        }
        assert!(
            all.iter().all(|c| count.get(c.as_str()).copied().unwrap_or(0) >= 1),
            "round-robin reaches every child"
        );
        let (least, most) =
            all.iter().map(|c| count[c.as_str()]).fold((usize::MAX, 0), |(l, m), n| (l.min(n), m.max(n)));
        assert!(most - least <= 1, "fair: {least}..{most}");
    }

    #[test]
    fn finished_executions_are_dropped_and_never_followed_again() {
        let mut scheduler = Scheduler::new(PACING, 0.0, 7);
        scheduler.follow("root", true);
        children(&mut scheduler, 2);
        // child-000 shows its end in its own history: dropped after that read.
        let reads = run(&mut scheduler, 0.0, 5.0, |arn, _| arn == "child-000");
        assert_eq!(reads.iter().filter(|(_, a)| a == "child-000").count(), 1);
        assert!(!scheduler.following("child-000"));
        assert!(!scheduler.follow("child-000", false), "a dropped execution is not followed again");
        // The parent reports child-001's end: read once more (it was read before), then dropped.
        assert!(scheduler.ended("child-001"));
        let reads = run(&mut scheduler, 5.0, 5.0, |_, _| false);
        assert_eq!(reads.iter().filter(|(_, a)| a == "child-001").count(), 1, "{reads:?}");
        assert!(!scheduler.following("child-001"));
        // One never read: dropped at once.
        scheduler.follow("child-002", false);
        assert!(!scheduler.ended("child-002"));
        assert!(!scheduler.following("child-002"));
        // The root's end empties the scheduler.
        let reads = run(&mut scheduler, 10.0, 5.0, |_, _| true);
        assert_eq!(reads.len(), 1);
        assert_eq!(scheduler.next(20.0), Next::Done);
    }

    #[test]
    fn failing_and_ending_children_are_read_before_the_others() {
        let mut scheduler = Scheduler::new(PACING, 0.0, 7);
        let all = children(&mut scheduler, 10);
        run(&mut scheduler, 0.0, 4.0, |_, _| false); // every child read once
        scheduler.failing(&all[7]);
        scheduler.ended(&all[5]);
        let reads = run(&mut scheduler, 10.0, 1.0, |_, _| false);
        let names: Vec<&str> = reads.iter().map(|(_, a)| a.as_str()).collect();
        assert_eq!(&names[..2], [all[5].as_str(), all[7].as_str()], "last read, then failing");
        // The failing one keeps its preference: read every second, the others in turn.
        let reads = run(&mut scheduler, 11.0, 5.0, |_, _| false);
        assert!(reads.iter().filter(|(_, a)| *a == all[7]).count() >= 4, "{reads:?}");
    }

    #[test]
    fn throttling_backs_off_with_jitter_and_halves_the_rate_until_calls_succeed() {
        let mut scheduler = Scheduler::new(PACING, 0.0, 42);
        scheduler.follow("root", true);
        assert_eq!(scheduler.next(0.0), Next::Read("root".into()));
        let mut pauses = Vec::new();
        let mut now = 0.0;
        for _ in 0..8 {
            let until = scheduler.throttled(now);
            pauses.push(until - now);
            assert_eq!(scheduler.next(now), Next::Wait(until), "nothing is read during the pause");
            assert_eq!(scheduler.page(now), Some(until), "nor another page");
            now = until;
        }
        for (n, pause) in pauses.iter().enumerate() {
            let ceiling = (PACING.backoff * 2f64.powi(n as i32)).min(PACING.backoff_cap);
            assert!(*pause >= ceiling / 2.0 && *pause <= ceiling, "pause {n}: {pause} of {ceiling}");
        }
        assert!(pauses[4] > pauses[0], "it grows");
        assert!(pauses.iter().all(|p| *p <= PACING.backoff_cap));
        assert_eq!(scheduler.rate(), PACING.min_rate);
        // Two schedulers with other seeds pause differently (jitter).
        let mut other = Scheduler::new(PACING, 0.0, 43);
        other.throttled(0.0);
        let mut third = Scheduler::new(PACING, 0.0, 44);
        assert_ne!(other.throttled(0.0), third.throttled(0.0));
        // After the pause, reads resume at the lowered rate; each success restores some.
        let reads = run(&mut scheduler, now, 20.0, |_, _| false);
        assert!(!reads.is_empty());
        assert!(scheduler.rate() > PACING.min_rate);
        assert!(scheduler.throttled(now + 20.0) - (now + 20.0) <= PACING.backoff, "a success resets the backoff");
    }

    #[test]
    fn pages_spend_from_the_same_budget() {
        let mut scheduler = Scheduler::new(PACING, 0.0, 7);
        scheduler.follow("root", true);
        assert_eq!(scheduler.next(0.0), Next::Read("root".into()));
        assert_eq!(scheduler.page(0.0), None);
        assert_eq!(scheduler.page(0.0), None);
        let until = scheduler.page(0.0).expect("the burst is spent");
        assert!((until - 1.0 / PACING.rate).abs() < 1e-9, "{until}");
        assert_eq!(scheduler.page(until), None);
    }
}
