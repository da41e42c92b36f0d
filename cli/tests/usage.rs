//! The built command answers `--help` with every subcommand, and refuses an unknown one with a
//! usage error, without touching AWS. (Being an integration test, this also makes `cargo test`
//! build `target/debug/deckhand` with the workspace's test features: the end-to-end tests run
//! that binary, and a separate `cargo build -p deckhand-cli` would compile the SDKs again.)

use std::process::Command;

fn deckhand(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(args)
        // Nowhere to go: a command that reached for AWS would fail, not hang or find credentials.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "none")
        .env("AWS_SECRET_ACCESS_KEY", "none")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the deckhand binary runs")
}

#[test]
fn help_lists_every_command() {
    let help = deckhand(&["--help"]);
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    for command in [
        "deploy", "rollback", "watch", "status", "history", "track", "untrack", "doctor", "approve", "reject", "report",
    ] {
        assert!(text.contains(command), "--help does not mention {command}:\n{text}");
    }
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let refused = deckhand(&["deplyo"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("deplyo"));
}

#[test]
fn a_report_is_drawn_from_a_recorded_history_without_aws() {
    let out = std::env::temp_dir().join(format!("deckhand-report-{}.html", std::process::id()));
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/src/report/fixtures/two-pushes.json");
    let drawn = deckhand(&["report", "--from-history", fixture, "--html", out.to_str().expect("a UTF-8 path")]);
    assert!(drawn.status.success(), "{drawn:?}");
    assert!(String::from_utf8_lossy(&drawn.stdout).contains("rolled back (DeploymentRolledBack)"), "{drawn:?}");
    let page = std::fs::read_to_string(&out).expect("the page was written");
    let _ = std::fs::remove_file(&out);
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("cluster-47ec5b/worker"), "{page}");
    let neither = deckhand(&["report", "--from-history", fixture]);
    assert_eq!(neither.status.code(), Some(2), "--html or --svg is required: {neither:?}");
}
