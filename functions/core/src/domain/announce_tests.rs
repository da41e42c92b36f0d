use super::*;
use crate::domain::events::Timings;
use crate::domain::model::Trigger;

fn event(status: Status) -> DeploymentEvent {
    DeploymentEvent {
        cluster: "prod".into(),
        service: "api".into(),
        image: "web=123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:ab12".into(),
        status,
        reason: "2 task(s) of api:8 stopped with a failure".into(),
        task_definition: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/api:8".into()),
        previous_task_definition: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/api:7".into()),
        execution_arn: "arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:push-1".into(),
        service_execution_arn: Some("arn:aws:states:us-east-1:123456789012:execution:deckhand-service:svc-1".into()),
        trigger: Trigger::Push,
        changes: None,
        ecs_deployment: None,
        timings: Timings {
            pushed_at: Some(1000.0),
            started_at: Some(1010.0),
            healthy_at: None,
            judged_at: Some(1075.5),
        },
    }
}

const ORIGIN: Origin<'static> = Origin { region: "us-east-1" };

#[test]
fn a_rollback_message_names_the_outcome_service_image_revision_reason_and_what_to_do() {
    let message = chat_message(&event(Status::RolledBack), &ORIGIN);
    assert_eq!((message["version"].as_str(), message["source"].as_str()), (Some("1.0"), Some("custom")));
    let content = &message["content"];
    assert_eq!(content["textType"], "client-markdown");
    assert_eq!(content["title"], ":leftwards_arrow_with_hook: ROLLED_BACK prod/api");
    let description = content["description"].as_str().unwrap();
    for part in ["shop@sha256:ab12", "`api:8`", "`api:7`", "2 task(s) of api:8 stopped with a failure", "push"] {
        assert!(description.contains(part), "{part}: {description}");
    }
    let steps: Vec<&str> = content["nextSteps"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(steps.iter().any(|s| s.contains("deckhand history prod api")), "{steps:?}");
    let link = steps.last().unwrap();
    assert!(
        link.ends_with("https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn%3Aaws%3Astates%3Aus-east-1%3A123456789012%3Aexecution%3Adeckhand-service%3Asvc-1"),
        "{link}"
    );
    assert_eq!(message["metadata"]["threadId"], "deckhand-svc-1");
    assert_eq!(message["metadata"]["eventType"], "DeckhandRolledBack");
}

#[test]
fn a_push_awaiting_approval_says_how_to_approve_or_reject_it() {
    let mut waiting = event(Status::AwaitingApproval);
    waiting.changes = Some(vec!["web: shop:1.4.0 -> shop:1.5.0".into()]);
    let message = chat_message(&waiting, &ORIGIN);
    let steps = message["content"]["nextSteps"].to_string();
    assert!(steps.contains("deckhand approve prod api") && steps.contains("deckhand reject prod api"), "{steps}");
    assert!(message["content"]["description"].as_str().unwrap().contains("shop:1.5.0"));
    assert!(
        is_chat_worthy(Status::AwaitingApproval) && is_chat_worthy(Status::Started) && is_chat_worthy(Status::Skipped)
    );
}

#[test]
fn the_console_link_follows_the_partition() {
    let cn = "arn:aws-cn:states:cn-north-1:123456789012:execution:m:e";
    assert!(console_link(cn, "cn-north-1")
        .unwrap()
        .starts_with("https://console.amazonaws.cn/states/home?region=cn-north-1#"));
    assert_eq!(console_link("not-an-arn", "us-east-1"), None);
}

#[test]
fn a_terminal_event_is_one_emf_record_of_its_outcome_and_timings() {
    let record = metrics_record(&event(Status::RolledBack), 1_700_000_000_000).unwrap();
    let directives = record["_aws"]["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives[0]["Dimensions"], json!([["Cluster", "Service", "Outcome"], ["Outcome"]]));
    assert_eq!(
        (record["Outcome"].as_str(), record["Deployments"].as_i64(), record["Rollbacks"].as_i64()),
        (Some("ROLLED_BACK"), Some(1), Some(1))
    );
    assert_eq!(record["TimeToDetectFailure"], json!(65.5), "judged 65.5 s after the rollout started");
    assert!(record.get("PushToHealthy").is_none());
    // Every metric a directive names is a member of the record (CloudWatch drops the rest).
    for directive in directives {
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(record.get(metric["Name"].as_str().unwrap()).is_some(), "{metric}");
        }
    }
    let mut healthy = event(Status::Succeeded);
    healthy.timings.healthy_at = Some(1042.0);
    let record = metrics_record(&healthy, 0).unwrap();
    assert_eq!((record["PushToHealthy"].as_f64(), record["Rollbacks"].as_i64()), (Some(42.0), Some(0)));
    assert!(metrics_record(&event(Status::Started), 0).is_none(), "only ends are counted");
}
