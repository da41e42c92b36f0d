//! Release gates a service opts into with tags: CloudWatch alarms that fail its rollouts, and a
//! person's approval before its service is changed.

use super::model::{Health, Policy, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const ALARMS_TAG: &str = "deckhand:alarms";
pub const APPROVAL_TAG: &str = "deckhand:approval";
pub const APPROVAL_TIMEOUT_TAG: &str = "deckhand:approval-timeout";

/// How long a push waits for its approval when `deckhand:approval-timeout` is not set.
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u64 = 24 * 3600;
/// The longest wait deckhand allows (a week; a standard execution may last a year, but a push
/// nobody looked at for a week is better pushed again).
pub const MAX_APPROVAL_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;
/// DescribeAlarms takes at most 100 alarm names (Amazon CloudWatch API Reference, DescribeAlarms:
/// "AlarmNames ... Maximum number of 100 items").
pub const MAX_ALARMS: usize = 100;
/// PutMetricAlarm: "AlarmName ... Length Constraints: Minimum length of 1. Maximum length of 255."
const MAX_ALARM_NAME_LENGTH: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Gates {
    /// CloudWatch alarms whose ALARM state fails the rollout and the bake.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// Set when a push must be approved before the service changes: how long to wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_seconds: Option<u64>,
}

/// Reads the gate tags. A malformed value is an error, like a malformed `deckhand:track`: a gate
/// that was asked for and cannot be read must not silently become no gate.
pub fn gates_from_tags(tags: &BTreeMap<String, String>) -> Result<Gates, String> {
    let mut gates = Gates::default();
    if let Some(value) = tags.get(ALARMS_TAG) {
        gates.alarms = parse_alarms(value).map_err(|why| format!("{ALARMS_TAG} {why}"))?;
    }
    let timeout = tags.get(APPROVAL_TIMEOUT_TAG);
    match tags.get(APPROVAL_TAG).map(String::as_str) {
        Some("required") => {
            let seconds = match timeout {
                None => DEFAULT_APPROVAL_TIMEOUT_SECONDS,
                Some(raw) => match raw.parse::<u64>() {
                    Ok(s) if (1..=MAX_APPROVAL_TIMEOUT_SECONDS).contains(&s) => s,
                    _ => {
                        return Err(format!(
                            "{APPROVAL_TIMEOUT_TAG}={raw:?}: expected whole seconds from 1 to {MAX_APPROVAL_TIMEOUT_SECONDS}"
                        ))
                    }
                },
            };
            gates.approval_timeout_seconds = Some(seconds);
        }
        Some(other) => return Err(format!("{APPROVAL_TAG}={other:?}: the only value is \"required\"")),
        None if timeout.is_some() => {
            return Err(format!("{APPROVAL_TIMEOUT_TAG} is set but {APPROVAL_TAG} is not \"required\""))
        }
        None => {}
    }
    Ok(gates)
}

fn parse_alarms(value: &str) -> Result<Vec<String>, String> {
    if value.trim().is_empty() {
        return Err("is empty".into());
    }
    let mut names: Vec<String> = Vec::new();
    for name in value.split(' ') {
        if name.is_empty() {
            return Err(format!("{value:?}: separate alarm names with single spaces"));
        }
        if name.len() > MAX_ALARM_NAME_LENGTH || !name.is_ascii() || name.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!("{name:?} is not a CloudWatch alarm name (1-255 printable ASCII characters)"));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("alarm {name:?} is named twice"));
        }
        names.push(name.to_string());
    }
    if names.len() > MAX_ALARMS {
        return Err(format!("names {} alarms; at most {MAX_ALARMS}", names.len()));
    }
    Ok(names)
}

/// A CloudWatch alarm as DescribeAlarms reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSnapshot {
    pub name: String,
    pub in_alarm: bool,
    /// When the alarm's StateValue last changed (StateTransitionedTimestamp; epoch seconds).
    pub state_changed_at: Option<f64>,
    pub state_reason: String,
}

/// What the alarm gate says about a rollout started at `started_at`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlarmVerdict {
    /// Why the rollout fails: alarms that went into ALARM after it started.
    pub failure: Option<String>,
    /// Alarms that were already in ALARM when it started and still are: they are not counted
    /// (see [`judge_alarms`]).
    pub ignored: Vec<String>,
    /// Alarms named by the tag that CloudWatch does not have.
    pub missing: Vec<String>,
}

/// Judges the alarms a rollout watches. Like ECS's own deployment alarms, which fail a
/// deployment when an alarm "has gone into the ALARM state", only an alarm that goes into ALARM
/// after the rollout started counts: one already in ALARM when it started (the incident the
/// push may well be fixing) is not held against it until it has left ALARM and come back.
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html>
pub fn judge_alarms(watched: &[String], observed: &[AlarmSnapshot], started_at: f64) -> AlarmVerdict {
    let mut verdict = AlarmVerdict::default();
    let mut fired = Vec::new();
    for name in watched {
        match observed.iter().find(|a| &a.name == name) {
            None => verdict.missing.push(name.clone()),
            Some(alarm) if !alarm.in_alarm => {}
            // CloudWatch's timestamps have millisecond precision; the rollout's start is the
            // deploy function's clock: a second's slack keeps a same-instant flip counted.
            Some(alarm) if alarm.state_changed_at.is_some_and(|at| at + 1.0 < started_at) => {
                verdict.ignored.push(name.clone())
            }
            Some(alarm) => fired.push(if alarm.state_reason.is_empty() {
                alarm.name.clone()
            } else {
                format!("{} ({})", alarm.name, alarm.state_reason)
            }),
        }
    }
    if !fired.is_empty() {
        verdict.failure = Some(format!("CloudWatch alarm in ALARM: {}", fired.join("; ")));
    }
    verdict
}

/// The alarm gate applied to a check's judgement of a rollout that watches alarms. An alarm that
/// fired fails the rollout. Alarms publish no ECS event, so a pending rollout is polled; and the
/// bake is a watch rather than one wait: the rollout stays PENDING (polled) for `bake_seconds`
/// after it first looked HEALTHY, so that an alarm firing during the bake rolls it back at once.
pub fn gate_health(mut health: Health, alarms: &AlarmVerdict, policy: &Policy, previous: &Health, now: f64) -> Health {
    if let Some(failure) = &alarms.failure {
        return Health {
            verdict: Verdict::Failed,
            reason: failure.clone(),
            needs_poll: false,
            healthy_since: None,
            ..health
        };
    }
    if !alarms.missing.is_empty() {
        let reason = format!("alarm(s) of the alarm gate no longer exist: {}", alarms.missing.join(", "));
        return Health { verdict: Verdict::Failed, reason, needs_poll: false, healthy_since: None, ..health };
    }
    match health.verdict {
        Verdict::Pending => {
            health.needs_poll = true;
            health.healthy_since = None;
        }
        Verdict::Healthy if policy.bake_seconds > 0 && !previous.baked => {
            let since = previous.healthy_since.unwrap_or(now);
            let left = since + policy.bake_seconds as f64 - now;
            if left > 0.0 {
                health.reason = format!(
                    "{}; baking {}s more, watching {} alarm(s)",
                    health.reason,
                    left.ceil(),
                    policy.gates.alarms.len()
                );
                health.verdict = Verdict::Pending;
                health.needs_poll = true;
                health.healthy_since = Some(since);
            } else {
                health.reason = format!("{}; baked {}s with no alarm", health.reason, policy.bake_seconds);
                health.baked = true;
                health.healthy_since = None;
            }
        }
        _ => health.healthy_since = None,
    }
    health
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn no_gate_tags_no_gates() {
        assert_eq!(gates_from_tags(&tags(&[("deckhand:track", "web=a:b")])).unwrap(), Gates::default());
    }

    #[test]
    fn reads_alarms_and_approval() {
        let gates = gates_from_tags(&tags(&[
            (ALARMS_TAG, "api-5xx api-latency-p99"),
            (APPROVAL_TAG, "required"),
            (APPROVAL_TIMEOUT_TAG, "600"),
        ]))
        .unwrap();
        assert_eq!(gates.alarms, ["api-5xx", "api-latency-p99"]);
        assert_eq!(gates.approval_timeout_seconds, Some(600));
        let default = gates_from_tags(&tags(&[(APPROVAL_TAG, "required")])).unwrap();
        assert_eq!(default.approval_timeout_seconds, Some(DEFAULT_APPROVAL_TIMEOUT_SECONDS));
    }

    #[test]
    fn refuses_malformed_gates() {
        for bad in [
            vec![(ALARMS_TAG, "")],
            vec![(ALARMS_TAG, "a  b")],
            vec![(ALARMS_TAG, "a a")],
            vec![(APPROVAL_TAG, "yes")],
            vec![(APPROVAL_TAG, "Required")],
            vec![(APPROVAL_TAG, "required"), (APPROVAL_TIMEOUT_TAG, "0")],
            vec![(APPROVAL_TAG, "required"), (APPROVAL_TIMEOUT_TAG, "1h")],
            vec![(APPROVAL_TAG, "required"), (APPROVAL_TIMEOUT_TAG, "604801")],
            vec![(APPROVAL_TIMEOUT_TAG, "600")],
        ] {
            assert!(gates_from_tags(&tags(&bad)).is_err(), "{bad:?}");
        }
        let long = "a".repeat(256);
        assert!(gates_from_tags(&tags(&[(ALARMS_TAG, &long)])).is_err());
    }

    fn alarm(name: &str, in_alarm: bool, at: f64) -> AlarmSnapshot {
        AlarmSnapshot { name: name.into(), in_alarm, state_changed_at: Some(at), state_reason: String::new() }
    }

    #[test]
    fn an_alarm_that_fires_after_the_start_fails_the_rollout() {
        let watched = vec!["5xx".to_string(), "latency".to_string()];
        let calm = judge_alarms(&watched, &[alarm("5xx", false, 50.0), alarm("latency", false, 10.0)], 100.0);
        assert_eq!(calm, AlarmVerdict::default());
        let fired = judge_alarms(&watched, &[alarm("5xx", true, 130.0), alarm("latency", false, 10.0)], 100.0);
        assert!(fired.failure.unwrap().contains("5xx"));
    }

    #[test]
    fn an_alarm_already_firing_at_the_start_is_not_counted_until_it_fires_again() {
        let watched = vec!["5xx".to_string()];
        let before = judge_alarms(&watched, &[alarm("5xx", true, 40.0)], 100.0);
        assert_eq!((before.failure, before.ignored), (None, vec!["5xx".to_string()]));
        // It recovered during the rollout and fired again: that counts.
        let again = judge_alarms(&watched, &[alarm("5xx", true, 160.0)], 100.0);
        assert!(again.failure.is_some());
    }

    #[test]
    fn missing_alarms_are_reported() {
        let verdict = judge_alarms(&["gone".to_string()], &[], 100.0);
        assert_eq!(verdict.missing, ["gone"]);
        assert_eq!(verdict.failure, None);
    }
}

#[cfg(test)]
mod gate_tests {
    use super::*;

    fn policy(bake_seconds: u64) -> Policy {
        Policy {
            poll_seconds: 5,
            recheck_seconds: 60,
            timeout_seconds: 600,
            bake_seconds,
            max_failed_tasks: 1,
            unhealthy_checks: 3,
            gates: Gates { alarms: vec!["5xx".into()], approval_timeout_seconds: None },
            gated_by_hook: false,
            hook_bake_seconds: 0,
        }
    }

    fn healthy() -> Health {
        Health { verdict: Verdict::Healthy, reason: "COMPLETED".into(), ..Health::default() }
    }

    #[test]
    fn a_fired_alarm_fails_whatever_ecs_says() {
        let fired = AlarmVerdict { failure: Some("CloudWatch alarm in ALARM: 5xx".into()), ..AlarmVerdict::default() };
        let health = gate_health(healthy(), &fired, &policy(0), &Health::default(), 10.0);
        assert_eq!((health.verdict, health.reason.as_str()), (Verdict::Failed, "CloudWatch alarm in ALARM: 5xx"));
        let gone = AlarmVerdict { missing: vec!["5xx".into()], ..AlarmVerdict::default() };
        assert_eq!(gate_health(healthy(), &gone, &policy(0), &Health::default(), 10.0).verdict, Verdict::Failed);
    }

    #[test]
    fn a_pending_rollout_with_alarms_is_polled() {
        let pending = Health { verdict: Verdict::Pending, ..Health::default() };
        let health = gate_health(pending, &AlarmVerdict::default(), &policy(0), &Health::default(), 10.0);
        assert!(health.needs_poll);
    }

    #[test]
    fn the_bake_is_watched_from_the_first_healthy_check() {
        let quiet = AlarmVerdict::default();
        let first = gate_health(healthy(), &quiet, &policy(60), &Health::default(), 100.0);
        assert_eq!((first.verdict, first.needs_poll, first.healthy_since), (Verdict::Pending, true, Some(100.0)));
        let midway = gate_health(healthy(), &quiet, &policy(60), &first, 130.0);
        assert_eq!((midway.verdict, midway.healthy_since), (Verdict::Pending, Some(100.0)));
        let done = gate_health(healthy(), &quiet, &policy(60), &midway, 160.0);
        assert_eq!((done.verdict, done.baked), (Verdict::Healthy, true));
        // Unhealthy in between: the bake starts again once it is healthy again.
        let relapse = gate_health(Health::default(), &quiet, &policy(60), &midway, 140.0);
        assert_eq!(relapse.healthy_since, None);
    }
}
