//! A push's execution histories as a plain timeline: one row per service, with its phases (plan,
//! approval wait, lock wait, rollout, bake, rollback) on a time axis, its outcome and reason,
//! and the push's verdict. Pure: `report` feeds it the histories it read (from Step Functions or
//! a recorded file), `svg` draws it. What a history means is read as `watch` reads it: the
//! service executions and their ends through `steps`' narration, outcomes and the verdict
//! through `verdict`.

use crate::output::{short, Exit};
use crate::steps::{Event, Narration, Step};
use crate::verdict::{self, Ended, ServiceLine};
use serde_json::Value;
use std::collections::HashMap;

/// One execution's history, oldest event first.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub execution: String,
    pub events: Vec<Event>,
}

/// A stretch of a service's deployment, as a person names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhaseKind {
    Plan,
    Approval,
    Lock,
    Rollout,
    Bake,
    Rollback,
}

impl PhaseKind {
    pub const ALL: [PhaseKind; 6] = [
        PhaseKind::Plan,
        PhaseKind::Approval,
        PhaseKind::Lock,
        PhaseKind::Rollout,
        PhaseKind::Bake,
        PhaseKind::Rollback,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PhaseKind::Plan => "plan",
            PhaseKind::Approval => "approval wait",
            PhaseKind::Lock => "lock wait",
            PhaseKind::Rollout => "rollout",
            PhaseKind::Bake => "bake",
            PhaseKind::Rollback => "rollback",
        }
    }

    /// The phase a state of the deploy or service state machine belongs to ([`STATE_PHASES`]).
    pub fn of_state(state: &str) -> Option<PhaseKind> {
        STATE_PHASES.iter().find(|(name, _)| *name == state).map(|(_, kind)| *kind)
    }
}

/// The states of the deploy and service state machines (statemachine/*.src.json) that a person
/// waits on, by phase. Choices, passes and the bookkeeping tasks (announce, publish, release)
/// belong to none: they take no time worth drawing.
pub const STATE_PHASES: [(&str, PhaseKind); 18] = [
    ("Plan deployment", PhaseKind::Plan),
    ("Plan service", PhaseKind::Plan),
    ("Wait for approval", PhaseKind::Approval),
    ("Acquire service lock", PhaseKind::Lock),
    ("Register revision and update service", PhaseKind::Rollout),
    ("Wait for rollout", PhaseKind::Rollout),
    ("Check rollout health", PhaseKind::Rollout),
    ("Wait for ECS events", PhaseKind::Rollout),
    ("Renew lease", PhaseKind::Rollout),
    ("Note failed lease renewal", PhaseKind::Rollout),
    ("Note inconclusive rollout check", PhaseKind::Rollout),
    ("Bake", PhaseKind::Bake),
    ("Final health check", PhaseKind::Bake),
    ("Roll back to last known-good", PhaseKind::Rollback),
    ("Wait for rollback", PhaseKind::Rollback),
    ("Check rollback health", PhaseKind::Rollback),
    ("Wait for rollback events", PhaseKind::Rollback),
    ("Note inconclusive rollback check", PhaseKind::Rollback),
];

/// The states whose output carries a health check's verdict and reason, and where in it.
fn health_reason_path(state: &str) -> Option<&'static str> {
    match state {
        "Check rollout health" | "Wait for ECS events" | "Final health check" => Some("/health/reason"),
        "Check rollback health" | "Wait for rollback events" => Some("/rollbackHealth/reason"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub kind: PhaseKind,
    pub start: f64,
    pub end: f64,
    /// The last health check's task and target counts, e.g. `2/2 tasks, 2/2 targets`.
    pub counts: Option<String>,
}

/// One service's deployment (one service execution).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `cluster/service`, or what is known of it.
    pub name: String,
    pub execution: String,
    pub start: f64,
    /// None while it runs.
    pub end: Option<f64>,
    /// SUCCEEDED, ROLLED_BACK, ROLLBACK_FAILED, FAILED, SKIPPED, SUPERSEDED, or RUNNING.
    pub status: String,
    pub reason: String,
    pub phases: Vec<Phase>,
}

impl Row {
    /// How long it took (or has taken, up to its last event).
    pub fn seconds(&self) -> f64 {
        let last = self.phases.iter().map(|p| p.end).fold(self.start, f64::max);
        self.end.unwrap_or(last) - self.start
    }
}

/// One execution followed (a push, or a single service execution) as it is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub execution: String,
    /// The execution's status: RUNNING, SUCCEEDED, FAILED, ABORTED, TIMED_OUT.
    pub status: String,
    pub start: f64,
    pub end: Option<f64>,
    /// `verdict`'s last line (what `deploy` and `watch` end with), and its exit code; None
    /// while the execution runs.
    pub verdict: String,
    pub exit: Option<Exit>,
    /// The push's own plan (a deploy execution's "Plan deployment").
    pub plan: Option<Phase>,
    pub rows: Vec<Row>,
}

/// Statuses in the order a summary counts them.
pub const STATUSES: [&str; 7] =
    ["SUCCEEDED", "ROLLED_BACK", "ROLLBACK_FAILED", "FAILED", "SKIPPED", "SUPERSEDED", "RUNNING"];

impl Timeline {
    /// The latest time drawn: the end, else the last phase's end.
    pub fn last(&self) -> f64 {
        let rows = self.rows.iter().map(|r| r.end.unwrap_or(r.start + r.seconds()));
        let plan = self.plan.iter().map(|p| p.end);
        rows.chain(plan).fold(self.end.unwrap_or(self.start), f64::max)
    }

    /// How many services ended (or run) with each status, in [`STATUSES`] order, then any other.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for row in &self.rows {
            match counts.iter_mut().find(|(status, _)| *status == row.status) {
                Some((_, n)) => *n += 1,
                None => counts.push((row.status.clone(), 1)),
            }
        }
        let rank = |status: &str| STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len());
        counts.sort_by_key(|(status, _)| rank(status));
        counts
    }

    /// The `n` services that took longest, longest first.
    pub fn slowest(&self, n: usize) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.seconds().total_cmp(&a.seconds()));
        rows.truncate(n);
        rows
    }
}

/// The service executions a push execution started, in the order it started them.
pub fn children(root: &Recorded) -> Vec<String> {
    let mut found = Vec::new();
    let mut narration = Narration::default();
    for event in &root.events {
        for step in narration.narrate(event) {
            if let Step::Child(child) = step {
                if !found.contains(&child) {
                    found.push(child);
                }
            }
        }
    }
    found
}

/// The timeline of `root` (a deploy or a service execution); `histories` holds the service
/// executions' histories that could be read (a service whose history is missing is drawn from
/// what its parent's history says of it).
pub fn build(root: &Recorded, histories: &HashMap<String, Recorded>) -> Timeline {
    let root_end = ended(root);
    let start = root.events.first().map_or(0.0, |e| e.at);
    let mut submitted: Vec<(String, f64)> = Vec::new();
    let mut child_ends: HashMap<String, (f64, Ended)> = HashMap::new();
    let mut narration = Narration::default();
    for event in &root.events {
        for step in narration.narrate(event) {
            match step {
                Step::Child(child) if !submitted.iter().any(|(known, _)| *known == child) => {
                    submitted.push((child, event.at));
                }
                Step::ChildEnded(end) => {
                    child_ends.insert(end.execution.clone(), (event.at, end));
                }
                _ => {}
            }
        }
    }
    let mut drawn: Vec<(Row, Option<ServiceLine>)> = submitted
        .iter()
        .map(|(child, at)| {
            let parent_said = child_ends.get(child).map(|(at, end)| (*at, end));
            row(child, histories.get(child), parent_said, *at)
        })
        .collect();
    let is_service_execution = started_document(root).and_then(|d| d.get("service")).is_some();
    if drawn.is_empty() && is_service_execution {
        drawn.push(row(&root.execution, Some(root), None, start));
    }
    let (mut rows, lines): (Vec<Row>, Vec<Option<ServiceLine>>) = drawn.into_iter().unzip();
    let lines: Vec<ServiceLine> = lines.into_iter().flatten().collect();
    rows.sort_by(|a, b| a.start.total_cmp(&b.start));
    let plan = if is_service_execution {
        None
    } else {
        phases(root, end_time(root)).into_iter().find(|p| p.kind == PhaseKind::Plan)
    };
    let (status, end, verdict, exit) = match &root_end {
        Some((at, ended)) => {
            let said = verdict::verdict(ended, &lines);
            (ended.status.clone(), Some(*at), said.line, Some(said.exit))
        }
        None => {
            let done = rows.iter().filter(|r| r.end.is_some()).count();
            ("RUNNING".into(), None, format!("running: {done} of {} services ended", rows.len()), None)
        }
    };
    Timeline { execution: root.execution.clone(), status, start, end, verdict, exit, plan, rows }
}

/// A service execution's row, and its service line once it has ended (what `watch` learns of
/// it: the parent's word on its end first, else its own history's).
fn row(
    execution: &str,
    history: Option<&Recorded>,
    parent_said: Option<(f64, &Ended)>,
    submitted_at: f64,
) -> (Row, Option<ServiceLine>) {
    let own_end = history.and_then(ended);
    let end = parent_said.map(|(at, end)| (at, end.clone())).or(own_end);
    let line = end.as_ref().map(|(_, ended)| ServiceLine::of(ended));
    let from_input = history.and_then(started_document).and_then(|d| d.get("service")?.as_str().map(service_name));
    let from_line = line.as_ref().and_then(|l| match (&l.cluster, &l.service) {
        (Some(cluster), Some(service)) => Some(format!("{cluster}/{}", short(service))),
        (None, Some(service)) => Some(service_name(service)),
        _ => None,
    });
    let name = from_input.or(from_line).unwrap_or_else(|| short(execution).to_string());
    let start = history.and_then(|h| h.events.first()).map_or(submitted_at, |e| e.at);
    let (status, reason) = match &line {
        Some(line) => (line.status.clone(), line.reason.clone()),
        None => ("RUNNING".to_string(), history.and_then(last_said).unwrap_or_default()),
    };
    let phases = history.map(|h| phases(h, end.as_ref().map(|(at, _)| *at).unwrap_or(end_time(h)))).unwrap_or_default();
    let row = Row { name, execution: execution.to_string(), start, end: end.map(|(at, _)| at), status, reason, phases };
    (row, line)
}

/// `arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME` → `CLUSTER/NAME`.
fn service_name(service: &str) -> String {
    service.split_once(":service/").map_or_else(|| short(service).to_string(), |(_, path)| path.to_string())
}

fn started_document(recorded: &Recorded) -> Option<&Value> {
    recorded.events.iter().find(|e| e.kind == "ExecutionStarted").and_then(|e| e.document.as_ref())
}

/// What the narration said last: where a running service execution is.
fn last_said(recorded: &Recorded) -> Option<String> {
    let mut narration = Narration::default();
    let mut last = None;
    for event in &recorded.events {
        for step in narration.narrate(event) {
            if let Step::Line(line) = step {
                last = Some(line);
            }
        }
    }
    last
}

/// How and when the execution ended, from its own history; None while it runs.
fn ended(recorded: &Recorded) -> Option<(f64, Ended)> {
    let event = recorded.events.iter().rev().find(|e| end_status(&e.kind).is_some())?;
    let status = end_status(&event.kind)?;
    let ended = Ended {
        execution: recorded.execution.clone(),
        status: status.to_string(),
        error: event.error.clone(),
        cause: event.cause.clone(),
        output: if status == "SUCCEEDED" { event.document.clone() } else { None },
    };
    Some((event.at, ended))
}

fn end_status(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ExecutionSucceeded" => "SUCCEEDED",
        "ExecutionFailed" => "FAILED",
        "ExecutionAborted" => "ABORTED",
        "ExecutionTimedOut" => "TIMED_OUT",
        _ => return None,
    })
}

/// The execution's end, else its last event (where a running execution is now).
fn end_time(recorded: &Recorded) -> f64 {
    recorded.events.last().map_or(0.0, |e| e.at)
}

/// The execution's phases, oldest first: each phase's states from entered to exited, and the
/// states of one phase that follow each other (a rollout's checks and waits) as one bar. A state
/// that never exited (the execution failed or stopped in it, or runs) ends at `until`.
fn phases(recorded: &Recorded, until: f64) -> Vec<Phase> {
    let mut spans: Vec<Phase> = Vec::new();
    let mut open: HashMap<&str, (PhaseKind, f64)> = HashMap::new();
    for event in &recorded.events {
        let Some(state) = event.state.as_deref() else { continue };
        if event.kind.ends_with("StateEntered") {
            if let Some(kind) = PhaseKind::of_state(state) {
                open.insert(state, (kind, event.at));
            }
        } else if event.kind.ends_with("StateExited") {
            if let Some((kind, start)) = open.remove(state) {
                let counts = health_reason_path(state)
                    .and_then(|path| event.document.as_ref()?.pointer(path)?.as_str())
                    .and_then(counts);
                spans.push(Phase { kind, start, end: event.at, counts });
            }
        }
    }
    spans.extend(open.into_values().map(|(kind, start)| Phase { kind, start, end: until.max(start), counts: None }));
    spans.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut merged: Vec<Phase> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if last.kind == span.kind => {
                last.end = last.end.max(span.end);
                last.counts = span.counts.or(last.counts.take());
            }
            _ => merged.push(span),
        }
    }
    merged
}

/// A health check's reason → `2/2 tasks, 1/2 targets` (the check function words its counts
/// `N/M new tasks running`, `N/M tasks running` and `N/M targets healthy`).
fn counts(reason: &str) -> Option<String> {
    let tasks = ratio_before(reason, " new tasks running").or_else(|| ratio_before(reason, " tasks running"));
    let targets = ratio_before(reason, " targets healthy");
    let parts: Vec<String> =
        [tasks.map(|t| format!("{t} tasks")), targets.map(|t| format!("{t} targets"))].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The `N/M` just before `marker` in `text`.
fn ratio_before<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let before = &text[..text.find(marker)?];
    let ratio = before.rsplit(|c: char| c.is_whitespace() || matches!(c, ',' | ':' | '(' | ';')).next()?;
    let (done, of) = ratio.split_once('/')?;
    (done.parse::<u32>().is_ok() && of.parse::<u32>().is_ok()).then_some(ratio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::recorded;
    use crate::steps::Details;

    /// Two pushes recorded on the local cloud (tests/e2e/test_report.py's, trimmed to what the
    /// report reads): api deployed; then a bad image api rolled back while worker waited for an
    /// approval that was refused.
    const TWO_PUSHES: &str = include_str!("fixtures/two-pushes.json");
    const FIRST: &str =
        "arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:f3ab792d-5e52-43aa-a375-440275c03bb7";
    const SECOND: &str =
        "arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:2f832d45-0feb-47ab-a12b-6cc51aa82e78";

    fn recorded() -> HashMap<String, Recorded> {
        recorded::parse(TWO_PUSHES).expect("the fixture parses").into_iter().map(|r| (r.execution.clone(), r)).collect()
    }

    fn kinds(row: &Row) -> Vec<PhaseKind> {
        row.phases.iter().map(|p| p.kind).collect()
    }

    fn counts_of(row: &Row, kind: PhaseKind) -> Option<&str> {
        row.phases.iter().find(|p| p.kind == kind).and_then(|p| p.counts.as_deref())
    }

    #[test]
    fn a_deployed_push_is_one_row_planned_locked_and_rolled_out_with_its_counts() {
        let histories = recorded();
        let timeline = build(&histories[FIRST], &histories);
        assert_eq!((timeline.status.as_str(), timeline.exit), ("SUCCEEDED", Some(Exit::Ok)));
        assert!(timeline.verdict.starts_with("deployed: flask-7c39d0:main pushed as sha256:"), "{}", timeline.verdict);
        assert!(timeline.plan.as_ref().is_some_and(|p| p.kind == PhaseKind::Plan && p.end >= p.start));
        let [api] = &timeline.rows[..] else { panic!("one row: {:?}", timeline.rows) };
        assert_eq!((api.name.as_str(), api.status.as_str()), ("cluster-47ec5b/api", "SUCCEEDED"));
        assert!(api.reason.contains("COMPLETED: 2/2 tasks running, 2/2 targets healthy"), "{}", api.reason);
        assert_eq!(kinds(api), [PhaseKind::Plan, PhaseKind::Lock, PhaseKind::Rollout]);
        assert_eq!(counts_of(api, PhaseKind::Rollout), Some("2/2 tasks, 2/2 targets"));
        let rollout = &api.phases[2];
        assert!(rollout.end - rollout.start > 3.0, "the waits and checks are one bar: {rollout:?}");
        assert!(api.seconds() > 4.0 && api.seconds() < 6.0, "{}", api.seconds());
        assert!(timeline.start <= api.start && api.end <= timeline.end);
    }

    #[test]
    fn a_rolled_back_push_shows_the_rollback_and_the_refused_approval() {
        let histories = recorded();
        let timeline = build(&histories[SECOND], &histories);
        assert_eq!((timeline.status.as_str(), timeline.exit), ("FAILED", Some(Exit::Failed)));
        assert!(timeline.verdict.starts_with("rolled back (DeploymentRolledBack): "), "{}", timeline.verdict);
        let [worker, api] = &timeline.rows[..] else { panic!("two rows: {:?}", timeline.rows) };
        assert_eq!((worker.name.as_str(), worker.status.as_str()), ("cluster-47ec5b/worker", "SKIPPED"));
        assert_eq!(kinds(worker), [PhaseKind::Plan, PhaseKind::Approval]);
        assert!(worker.reason.ends_with("not on a Friday: <b>R&D</b> says \"wait\""), "{}", worker.reason);
        assert_eq!((api.name.as_str(), api.status.as_str()), ("cluster-47ec5b/api", "ROLLED_BACK"));
        assert_eq!(kinds(api), [PhaseKind::Plan, PhaseKind::Lock, PhaseKind::Rollout, PhaseKind::Rollback]);
        assert_eq!(counts_of(api, PhaseKind::Rollout), Some("2/2 tasks, 0/2 targets"));
        assert_eq!(counts_of(api, PhaseKind::Rollback), Some("2/2 tasks, 2/2 targets"));
        assert!(api.reason.contains("rolling back api from api-018fde:3 to api-018fde:2"), "{}", api.reason);
        assert_eq!(timeline.counts(), [("ROLLED_BACK".to_string(), 1), ("SKIPPED".to_string(), 1)]);
        assert_eq!(timeline.slowest(1)[0].name, "cluster-47ec5b/api");
    }

    #[test]
    fn a_service_whose_history_is_missing_is_drawn_from_what_the_push_says_of_it() {
        let histories = recorded();
        let timeline = build(&histories[SECOND], &HashMap::new());
        let statuses: Vec<(&str, &str)> = timeline.rows.iter().map(|r| (r.name.as_str(), r.status.as_str())).collect();
        assert_eq!(statuses, [("cluster-47ec5b/worker", "SKIPPED"), ("cluster-47ec5b/api", "ROLLED_BACK")]);
        assert!(timeline.rows.iter().all(|r| r.phases.is_empty() && r.end.is_some()));
        assert_eq!(timeline.exit, Some(Exit::Failed));
    }

    #[test]
    fn a_running_push_and_its_running_services_say_where_they_are() {
        let mut histories = recorded();
        let api =
            "arn:aws:states:us-east-1:123456789012:execution:deckhand-service:8c9753bd1ecc0a8241b6bf7424a1840d9c0870cb";
        // Both cut short while api's rollout was being checked.
        let cut = |recorded: &mut Recorded, at: f64| recorded.events.retain(|e| e.at < at);
        let when =
            histories[api].events.iter().find(|e| e.state.as_deref() == Some("Check rollout health")).map(|e| e.at);
        let when = when.expect("api's rollout was checked") + 0.01;
        cut(histories.get_mut(SECOND).expect("push"), when);
        cut(histories.get_mut(api).expect("api"), when);
        let timeline = build(&histories[SECOND], &histories);
        assert_eq!((timeline.status.as_str(), timeline.exit, timeline.end), ("RUNNING", None, None));
        assert_eq!(timeline.verdict, "running: 1 of 2 services ended");
        let running = timeline.rows.iter().find(|r| r.status == "RUNNING").expect("api runs");
        assert_eq!(running.end, None);
        assert_eq!(
            running.phases.last().map(|p| p.kind),
            Some(PhaseKind::Rollout),
            "an open state ends at the last event"
        );
        assert!(running.reason.starts_with("health: PENDING"), "the last thing said: {}", running.reason);
    }

    #[test]
    fn a_bake_sent_back_to_the_rollout_is_drawn_as_it_happened() {
        let state = |id: i64, kind: &str, name: &str, at: f64, output: Option<&str>| {
            Event::reduced(id, kind, at, Details { name: Some(name), output, ..Details::default() })
        };
        let healthy = r#"{"health": {"verdict": "HEALTHY", "reason": "deployment d COMPLETED: 3/3 tasks running"}}"#;
        let events = vec![
            state(1, "TaskStateEntered", "Register revision and update service", 0.0, None),
            state(2, "TaskStateExited", "Register revision and update service", 1.0, None),
            state(3, "TaskStateEntered", "Check rollout health", 1.0, None),
            state(4, "TaskStateExited", "Check rollout health", 2.0, Some(healthy)),
            state(5, "WaitStateEntered", "Bake", 2.0, None),
            state(6, "WaitStateExited", "Bake", 12.0, None),
            state(7, "TaskStateEntered", "Final health check", 12.0, None),
            state(8, "TaskStateExited", "Final health check", 13.0, None),
            state(9, "WaitStateEntered", "Wait for rollout", 13.0, None),
            state(10, "WaitStateExited", "Wait for rollout", 14.0, None),
        ];
        let drawn = phases(&Recorded { execution: "x".into(), events }, 14.0);
        let spans: Vec<(PhaseKind, f64, f64)> = drawn.iter().map(|p| (p.kind, p.start, p.end)).collect();
        assert_eq!(
            spans,
            [(PhaseKind::Rollout, 0.0, 2.0), (PhaseKind::Bake, 2.0, 13.0), (PhaseKind::Rollout, 13.0, 14.0)]
        );
        assert_eq!(drawn[0].counts.as_deref(), Some("3/3 tasks"));
    }

    #[test]
    fn counts_are_read_from_the_check_functions_reasons() {
        let reason =
            "rollout IN_PROGRESS: 1/2 new tasks running; 0/2 targets healthy; 1 older deployment(s) still draining";
        assert_eq!(counts(reason).as_deref(), Some("1/2 tasks, 0/2 targets"));
        assert_eq!(
            counts("deployment x COMPLETED: 2/2 tasks running, 2/2 targets healthy").as_deref(),
            Some("2/2 tasks, 2/2 targets")
        );
        assert_eq!(
            counts("timed out after 60s: rollout IN_PROGRESS: 0/1 new tasks running").as_deref(),
            Some("0/1 tasks")
        );
        assert_eq!(counts("alarm api-5xx is in ALARM"), None);
        assert_eq!(counts("a/b tasks running"), None);
    }

    #[test]
    fn every_state_named_is_a_state_of_the_state_machines() {
        let sources = [
            include_str!("../../../statemachine/deploy.src.json"),
            include_str!("../../../statemachine/service.src.json"),
        ];
        let machines: Vec<Value> =
            sources.iter().map(|s| serde_json::from_str(s).expect("state machine JSON")).collect();
        let named = |state: &str| machines.iter().any(|m| m["States"].get(state).is_some());
        for (state, _) in STATE_PHASES {
            assert!(named(state), "{state} is not a state");
        }
        for state in ["Check rollout health", "Wait for ECS events", "Final health check", "Check rollback health"] {
            assert!(named(state) && health_reason_path(state).is_some(), "{state}");
        }
    }
}
