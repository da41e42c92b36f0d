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

    /// The phase a state of the deploy or service state machine (statemachine/*.src.json)
    /// belongs to. Choices, passes and the bookkeeping tasks (announce, publish, release)
    /// belong to none: they take no time a person waits on.
    pub fn of_state(state: &str) -> Option<PhaseKind> {
        Some(match state {
            "Plan deployment" | "Plan service" => PhaseKind::Plan,
            "Wait for approval" => PhaseKind::Approval,
            "Acquire service lock" => PhaseKind::Lock,
            "Register revision and update service"
            | "Wait for rollout"
            | "Check rollout health"
            | "Wait for ECS events"
            | "Renew lease"
            | "Note failed lease renewal"
            | "Note inconclusive rollout check" => PhaseKind::Rollout,
            "Bake" | "Final health check" => PhaseKind::Bake,
            "Roll back to last known-good"
            | "Wait for rollback"
            | "Check rollback health"
            | "Wait for rollback events"
            | "Note inconclusive rollback check" => PhaseKind::Rollback,
            _ => return None,
        })
    }
}

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
    let name = from_input
        .or_else(|| line.as_ref().and_then(|l| l.service.as_deref()).map(service_name))
        .unwrap_or_else(|| short(execution).to_string());
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
