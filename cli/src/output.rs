//! Exit codes, errors and how results are printed (text for people, JSON for scripts).

use crate::Format;
use aws_smithy_types::date_time::{DateTime, Format as DateFormat};
use comfy_table::{presets::NOTHING, Table};
use deckhand_core::DeckhandError;
use serde_json::Value;
use std::process::ExitCode;

/// What the command's exit code says (README "The `deckhand` command", exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every service deployed (or rolled back on request), a dry run, or the check passed.
    Ok = 0,
    /// Rolled back, failed, stopped, or a check failed.
    Failed = 1,
    /// The request was refused as InvalidInput: nothing was started.
    BadInput = 2,
    /// Nothing failed, but something was not deployed: no service to deploy, or a service
    /// SKIPPED (already on its image, held by a gate, rejected, no longer tracked) or SUPERSEDED.
    NothingDeployed = 3,
}

impl Exit {
    /// The exit code of several executions: the worst of theirs (failed, then refused, then
    /// not deployed, then ok).
    pub fn worst(exits: impl IntoIterator<Item = Exit>) -> Exit {
        let rank = |exit: &Exit| match exit {
            Exit::Ok => 0,
            Exit::NothingDeployed => 1,
            Exit::BadInput => 2,
            Exit::Failed => 3,
        };
        exits.into_iter().max_by_key(rank).unwrap_or(Exit::Ok)
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Refused before anything started (the message is InvalidInput's, as the functions say it).
    #[error("InvalidInput: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    Aws(#[from] DeckhandError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::InvalidInput(_) | Error::Aws(DeckhandError::InvalidInput { .. }) => Exit::BadInput,
            _ => Exit::Failed,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Prints `message` on stderr and returns `exit`.
pub fn fail(exit: Exit, message: &str) -> ExitCode {
    eprintln!("deckhand: {message}");
    exit.into()
}

/// Prints a document as JSON (one line per document, so that scripts can stream them).
pub fn json(value: &Value) {
    println!("{value}");
}

/// A table without borders, as `kubectl get` or `docker ps` print them.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_style(NOTHING).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    // comfy-table pads every cell by one space on both sides; the first column's is dropped.
    table
        .to_string()
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints `rows` as a table (text) or as a JSON array of `documents` (json).
pub fn listing(format: Format, header: &[&str], rows: Vec<Vec<String>>, documents: Vec<Value>) {
    match format {
        Format::Json => json(&Value::Array(documents)),
        Format::Text if rows.is_empty() => println!("(none)"),
        Format::Text => println!("{}", table(header, rows)),
    }
}

/// `arn:…:task-definition/api:7` → `api:7`; `arn:…:execution:machine:name` → `name`;
/// `arn:…:service/prod/api` → `api`.
pub fn short(arn: &str) -> &str {
    match arn.rsplit_once(":task-definition/") {
        Some((_, revision)) => revision,
        None => arn.rsplit(['/', ':']).next().unwrap_or(arn),
    }
}

/// Epoch seconds as RFC 3339 UTC, whole seconds.
pub fn time(epoch: f64) -> String {
    DateTime::from_secs(epoch.floor() as i64).fmt(DateFormat::DateTime).unwrap_or_else(|_| epoch.to_string())
}

/// Epoch seconds now.
pub fn now() -> f64 {
    deckhand_core::runtime::now()
}

/// Seconds as `1h02m`, `3m05s` or `42s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339_and_durations_short() {
        assert_eq!(time(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_795_910_400.7), "2026-11-29T00:00:00Z");
        assert_eq!(time(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!((duration(42.4), duration(185.0), duration(3725.0)), ("42s".into(), "3m05s".into(), "1h02m".into()));
    }

    #[test]
    fn arns_are_shortened_to_what_people_name_them() {
        assert_eq!(short("arn:aws:ecs:us-east-1:1:task-definition/api:7"), "api:7");
        assert_eq!(short("arn:aws:states:us-east-1:1:execution:deckhand-deploy:abc"), "abc");
        assert_eq!(short("arn:aws:ecs:us-east-1:1:service/prod/api"), "api");
    }

    #[test]
    fn several_executions_exit_with_the_worst_code() {
        assert_eq!(Exit::worst([Exit::Ok, Exit::NothingDeployed, Exit::Ok]), Exit::NothingDeployed);
        assert_eq!(Exit::worst([Exit::NothingDeployed, Exit::Failed, Exit::BadInput]), Exit::Failed);
        assert_eq!(Exit::worst([]), Exit::Ok);
    }

    #[test]
    fn tables_have_a_header_and_no_borders() {
        let text = table(&["SERVICE", "REVISION"], vec![vec!["api".into(), "api:7".into()]]);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("SERVICE"), "{text}");
    }
}
