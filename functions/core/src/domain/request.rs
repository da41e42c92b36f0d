//! Normalising what starts a deployment: the raw ECR push event or a manual request.
//!
//! Manual requests are strict: an unknown field is refused rather than ignored, because a typo
//! such as `"dryrun": true` must not turn a dry run into a real deployment.

use super::image::{is_valid_digest, ImageRef};
use super::protect;
use crate::error::{DeckhandError, Result};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A well-formed event that deckhand deliberately does nothing for.
    Ignored {
        reason: String,
    },
    Push(Push),
    Deploy(ManualDeploy),
    Rollback(ManualRollback),
    /// `{"reconcile": true}`: the sweep that deploys pushes whose events were missed (started on
    /// a schedule, or by a person; with `"dryRun": true` it only reports what it would deploy).
    Reconcile {
        dry_run: bool,
    },
}

/// A successful ECR push of a tagged image.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// Epoch seconds of the event (`time`).
    pub time: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManualDeploy {
    pub cluster: String,
    pub service: String,
    pub image: ImageRef,
    pub container: Option<String>,
    pub dry_run: bool,
    pub force_new_deployment: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManualRollback {
    pub cluster: String,
    pub service: String,
    pub dry_run: bool,
}

const MANUAL_FIELDS: &[&str] =
    &["cluster", "service", "image", "container", "rollback", "dryRun", "forceNewDeployment", "reconcile"];

pub fn parse_request(input: &Value) -> Result<Request> {
    let object = input
        .as_object()
        .ok_or_else(|| DeckhandError::invalid("input", format!("must be a JSON object, got {}", kind_of(input))))?;
    if object.contains_key("detail-type") || object.contains_key("source") || object.contains_key("detail") {
        parse_ecr_event(object)
    } else {
        parse_manual(object)
    }
}

fn parse_ecr_event(event: &Map<String, Value>) -> Result<Request> {
    let source = required_str(event, "source", "source")?;
    if source != "aws.ecr" {
        return Err(DeckhandError::invalid("source", format!("expected \"aws.ecr\", got {source:?}")));
    }
    let detail_type = required_str(event, "detail-type", "detail-type")?;
    if detail_type != "ECR Image Action" {
        return Err(DeckhandError::invalid(
            "detail-type",
            format!("expected \"ECR Image Action\", got {detail_type:?}"),
        ));
    }
    if !event.get("detail").is_some_and(Value::is_object) {
        return Err(DeckhandError::invalid("detail", "must be an object"));
    }
    // The envelope as aws_lambda_events types it (id, account, region, time, resources); ECR's
    // detail has no type there, so it is read field by field below.
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(Value::Object(event.clone())).map_err(|e| envelope_error(event, e))?;
    let detail = envelope.detail.as_object().ok_or_else(|| DeckhandError::invalid("detail", "must be an object"))?;
    let action = required_str(detail, "action-type", "detail.action-type")?;
    let result = required_str(detail, "result", "detail.result")?;
    if action != "PUSH" || result != "SUCCESS" {
        return Ok(Request::Ignored { reason: format!("ECR {action} with result {result} is not a successful push") });
    }
    // Untagged pushes (manifest lists, attestations) arrive with an empty or absent tag.
    let tag = match detail.get("image-tag") {
        None | Some(Value::Null) => "",
        Some(Value::String(tag)) => tag.as_str(),
        Some(other) => {
            return Err(DeckhandError::invalid("detail.image-tag", format!("must be a string, got {}", kind_of(other))))
        }
    };
    if tag.is_empty() {
        return Ok(Request::Ignored { reason: "untagged push: no tag to match".into() });
    }
    // deckhand tags the images it must keep (protect.rs); ECR reports each such tag as a push.
    // No rule may match it, and looking for one would list every service of the account again
    // after every deployment.
    if tag.starts_with(protect::TAG_PREFIX) {
        return Ok(Request::Ignored { reason: format!("deckhand's own protection tag {tag}: nothing to deploy") });
    }
    let repository = required_str(detail, "repository-name", "detail.repository-name")?;
    ImageRef::parse("detail.repository-name", &format!("{repository}:{tag}"))?;
    let digest = required_str(detail, "image-digest", "detail.image-digest")?;
    if !is_valid_digest(digest) {
        return Err(DeckhandError::invalid(
            "detail.image-digest",
            format!("must be sha256: and 64 hex digits, got {digest:?}"),
        ));
    }
    let time = envelope.time.ok_or_else(|| DeckhandError::invalid("time", "is missing"))?;
    let time = time.timestamp_micros() as f64 / 1e6;
    let present = |value: Option<String>, field: &str| {
        value.filter(|v| !v.is_empty()).ok_or_else(|| DeckhandError::invalid(field, "is missing"))
    };
    Ok(Request::Push(Push {
        event_id: present(envelope.id, "id")?,
        account: present(envelope.account, "account")?,
        region: present(envelope.region, "region")?,
        repository: repository.to_string(),
        tag: tag.to_string(),
        digest: digest.to_string(),
        time,
    }))
}

/// Names the envelope field serde could not read (it says what, not where).
fn envelope_error(event: &Map<String, Value>, error: serde_json::Error) -> DeckhandError {
    for field in ["version", "id", "account", "region"] {
        if event.get(field).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return DeckhandError::invalid(field, "must be a string");
        }
    }
    if let Some(time) = event.get("time").filter(|t| t.as_str().and_then(parse_time).is_none()) {
        return DeckhandError::invalid("time", format!("not an RFC 3339 time: {time}"));
    }
    DeckhandError::invalid("input", format!("not an EventBridge event: {error}"))
}

fn parse_manual(object: &Map<String, Value>) -> Result<Request> {
    if object.is_empty() {
        return Err(DeckhandError::invalid("input", "is empty: give cluster, service and image (or rollback: true)"));
    }
    if let Some(unknown) = object.keys().find(|k| !MANUAL_FIELDS.contains(&k.as_str())) {
        return Err(DeckhandError::invalid(
            unknown.as_str(),
            format!("is not a known field (known: {})", MANUAL_FIELDS.join(", ")),
        ));
    }
    if object.contains_key("reconcile") {
        return parse_reconcile(object);
    }
    let cluster = ecs_name(object, "cluster")?;
    let service = ecs_name(object, "service")?;
    let dry_run = optional_bool(object, "dryRun")?;
    let rollback = optional_bool(object, "rollback")?;
    let force_new_deployment = optional_bool(object, "forceNewDeployment")?;
    let container = match object.get("container") {
        None => None,
        Some(Value::String(c)) if !c.is_empty() && c.len() <= 255 => Some(c.clone()),
        Some(other) => {
            return Err(DeckhandError::invalid("container", format!("must be a container name, got {other}")))
        }
    };
    match (rollback, object.get("image")) {
        (true, Some(_)) => Err(DeckhandError::invalid("image", "must not be given with rollback: true")),
        (true, None) if container.is_some() || force_new_deployment => Err(DeckhandError::invalid(
            if container.is_some() { "container" } else { "forceNewDeployment" },
            "does not apply to a rollback",
        )),
        (true, None) => Ok(Request::Rollback(ManualRollback { cluster, service, dry_run })),
        (false, None) => Err(DeckhandError::invalid("image", "is required (or rollback: true)")),
        (false, Some(Value::String(image))) => Ok(Request::Deploy(ManualDeploy {
            cluster,
            service,
            image: ImageRef::parse("image", image)?,
            container,
            dry_run,
            force_new_deployment,
        })),
        (false, Some(other)) => {
            Err(DeckhandError::invalid("image", format!("must be a string, got {}", kind_of(other))))
        }
    }
}

/// A sweep names no service: it looks at every tracked one.
fn parse_reconcile(object: &Map<String, Value>) -> Result<Request> {
    if !optional_bool(object, "reconcile")? {
        return Err(DeckhandError::invalid("reconcile", "must be true (or left out)"));
    }
    if let Some(other) = object.keys().find(|k| !["reconcile", "dryRun"].contains(&k.as_str())) {
        return Err(DeckhandError::invalid(other.as_str(), "does not apply to a reconcile sweep (only dryRun does)"));
    }
    Ok(Request::Reconcile { dry_run: optional_bool(object, "dryRun")? })
}

/// ECS cluster and service names (1-255 letters, digits, '-', '_') or their ARNs.
fn ecs_name(object: &Map<String, Value>, field: &str) -> Result<String> {
    let value = required_str(object, field, field)?;
    let name_ok = |n: &str| {
        (1..=255).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let arn_ok =
        value.starts_with("arn:") && value.split(':').count() == 6 && value.rsplit('/').next().is_some_and(name_ok);
    if name_ok(value) || arn_ok {
        Ok(value.to_string())
    } else {
        Err(DeckhandError::invalid(field, format!("must be an ECS {field} name or ARN, got {value:?}")))
    }
}

fn required_str<'a>(object: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a str> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(DeckhandError::invalid(field, "must not be empty")),
        Some(other) => Err(DeckhandError::invalid(field, format!("must be a string, got {}", kind_of(other)))),
        None => Err(DeckhandError::invalid(field, "is required")),
    }
}

fn optional_bool(object: &Map<String, Value>, field: &str) -> Result<bool> {
    match object.get(field) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(DeckhandError::invalid(field, format!("must be true or false, got {other}"))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// RFC 3339 time to epoch seconds.
pub fn parse_time(text: &str) -> Option<f64> {
    aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|t| t.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn push_event() -> Value {
        json!({"version":"0","id":"e-1","detail-type":"ECR Image Action","source":"aws.ecr",
            "account":"123456789012","time":"2026-11-16T01:54:34Z","region":"us-east-1","resources":[],
            "detail":{"result":"SUCCESS","repository-name":"flask-backend","image-digest":DIGEST,
                "action-type":"PUSH","image-tag":"main","manifest-media-type":"application/vnd.oci.image.manifest.v1+json"}})
    }

    #[test]
    fn normalises_a_raw_ecr_push_and_tolerates_unknown_fields() {
        let Request::Push(push) = parse_request(&push_event()).unwrap() else { panic!("not a push") };
        assert_eq!(
            (push.repository.as_str(), push.tag.as_str(), push.digest.as_str()),
            ("flask-backend", "main", DIGEST)
        );
        assert_eq!(push.time, 1_794_794_074.0);
        assert_eq!(push.event_id, "e-1");
    }

    #[test]
    fn ignores_non_push_failed_and_untagged_events() {
        for (pointer, value) in [
            ("/detail/action-type", json!("DELETE")),
            ("/detail/result", json!("FAILURE")),
            ("/detail/image-tag", json!("")),
        ] {
            let mut event = push_event();
            *event.pointer_mut(pointer).unwrap() = value;
            assert!(matches!(parse_request(&event).unwrap(), Request::Ignored { .. }), "{pointer}");
        }
        let mut untagged = push_event();
        untagged["detail"].as_object_mut().unwrap().remove("image-tag");
        assert!(matches!(parse_request(&untagged).unwrap(), Request::Ignored { .. }));
    }

    #[test]
    fn ignores_the_push_of_deckhands_own_protection_tag() {
        let mut event = push_event();
        let tag = protect::protection_tag("arn:aws:ecs:us-east-1:123456789012:service/prod/api", DIGEST);
        event["detail"]["image-tag"] = json!(tag);
        let Request::Ignored { reason } = parse_request(&event).unwrap() else { panic!("deckhand's tag planned") };
        assert!(reason.contains(&tag), "{reason}");
    }

    #[test]
    fn parses_manual_deploy_rollback_and_dry_run() {
        let deploy = parse_request(&json!({"cluster":"prod","service":"backend","image":"flask-backend:v2"})).unwrap();
        let Request::Deploy(deploy) = deploy else { panic!() };
        assert_eq!(deploy.image.tag.as_deref(), Some("v2"));
        assert!(!deploy.dry_run);

        let rollback =
            parse_request(&json!({"cluster":"prod","service":"backend","rollback":true,"dryRun":true})).unwrap();
        assert_eq!(
            rollback,
            Request::Rollback(ManualRollback { cluster: "prod".into(), service: "backend".into(), dry_run: true })
        );

        let pinned = parse_request(&json!({"cluster":"arn:aws:ecs:us-east-1:123456789012:cluster/prod","service":"api",
            "image": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/api@{DIGEST}"), "container":"web", "forceNewDeployment": true})).unwrap();
        let Request::Deploy(pinned) = pinned else { panic!() };
        assert_eq!(pinned.container.as_deref(), Some("web"));
        assert!(pinned.force_new_deployment);
    }

    #[test]
    fn parses_a_sweep_and_refuses_it_with_a_service() {
        assert_eq!(parse_request(&json!({"reconcile": true})).unwrap(), Request::Reconcile { dry_run: false });
        assert_eq!(
            parse_request(&json!({"reconcile": true, "dryRun": true})).unwrap(),
            Request::Reconcile { dry_run: true }
        );
        for (input, field) in [
            (json!({"reconcile": false}), "reconcile"),
            (json!({"reconcile": "yes"}), "reconcile"),
            (json!({"reconcile": true, "service": "api"}), "service"),
        ] {
            match parse_request(&input) {
                Err(DeckhandError::InvalidInput { field: got, .. }) => assert_eq!(got, field, "input {input}"),
                other => panic!("input {input} gave {other:?}"),
            }
        }
    }

    /// Every bad input fails with InvalidInput naming the offending field.
    #[test]
    fn bad_inputs_fail_fast_naming_the_field() {
        let event_with = |pointer: &str, value: Value| {
            let mut event = push_event();
            *event.pointer_mut(pointer).unwrap() = value;
            event
        };
        let mut no_repo = push_event();
        no_repo["detail"].as_object_mut().unwrap().remove("repository-name");
        let cases: Vec<(Value, &str)> = vec![
            (json!(null), "input"),
            (json!([1, 2]), "input"),
            (json!("deploy please"), "input"),
            (json!({}), "input"),
            (json!({"service":"api","image":"a:1"}), "cluster"),
            (json!({"cluster":"","service":"api","image":"a:1"}), "cluster"),
            (json!({"cluster":7,"service":"api","image":"a:1"}), "cluster"),
            (json!({"cluster":"prod cluster","service":"api","image":"a:1"}), "cluster"),
            (json!({"cluster":"prod","image":"a:1"}), "service"),
            (json!({"cluster":"prod","service":"api/../x","image":"a:1"}), "service"),
            (json!({"cluster":"prod","service":"api"}), "image"),
            (json!({"cluster":"prod","service":"api","image":42}), "image"),
            (json!({"cluster":"prod","service":"api","image":"Flask:latest"}), "image"),
            (json!({"cluster":"prod","service":"api","image":"flask"}), "image"),
            (json!({"cluster":"prod","service":"api","image":"flask@sha256:1234"}), "image"),
            (json!({"cluster":"prod","service":"api","image":"flask:v 2"}), "image"),
            (json!({"cluster":"prod","service":"api","image":"a:1","rollback":true}), "image"),
            (json!({"cluster":"prod","service":"api","rollback":"yes"}), "rollback"),
            (json!({"cluster":"prod","service":"api","image":"a:1","dryRun":"true"}), "dryRun"),
            (json!({"cluster":"prod","service":"api","image":"a:1","dryrun":true}), "dryrun"),
            (json!({"cluster":"prod","service":"api","image":"a:1","container":""}), "container"),
            (json!({"cluster":"prod","service":"api","rollback":true,"container":"web"}), "container"),
            (event_with("/source", json!("aws.ecs")), "source"),
            (event_with("/detail-type", json!("ECR Scan")), "detail-type"),
            (event_with("/detail", json!("PUSH")), "detail"),
            (event_with("/detail/image-digest", json!("sha256:xyz")), "detail.image-digest"),
            (event_with("/detail/image-tag", json!(5)), "detail.image-tag"),
            (event_with("/detail/repository-name", json!("Bad Repo")), "detail.repository-name"),
            (event_with("/time", json!("yesterday")), "time"),
            (no_repo, "detail.repository-name"),
        ];
        assert!(cases.len() >= 15);
        for (input, field) in cases {
            match parse_request(&input) {
                Err(DeckhandError::InvalidInput { field: got, .. }) => assert_eq!(got, field, "input {input}"),
                other => panic!("input {input} gave {other:?}, expected InvalidInput on {field}"),
            }
        }
    }
}
