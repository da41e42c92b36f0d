//! Pushes to registries of other accounts and Regions (`RegistryAccounts`), planned.

use super::tests::{execution, plan_for, push, seeded, settings};
use crate::domain::model::PlanAction;
use crate::testing::*;
use serde_json::json;

const CENTRAL: &str = "210987654321.dkr.ecr.eu-west-1.amazonaws.com";

fn central_push(account: &str, region: &str, repository: &str, n: u8) -> serde_json::Value {
    let mut event = push(repository, "main", &digest(n));
    event["account"] = json!(account);
    event["region"] = json!(region);
    event
}

#[tokio::test]
async fn a_push_in_a_listed_registry_account_deploys_the_services_tracking_its_uri() {
    let cloud = seeded();
    let td = cloud.add_task_definition("shop", 1, &[("app", &format!("{CENTRAL}/shop/api@{}", digest(1)))]);
    cloud.add_service("prod", "shop", &td, &[("deckhand:track", &format!("app={CENTRAL}/shop/api:main"))]);
    // A service of deckhand's own registry with a repository of the same name is not its push.
    let own = cloud.add_task_definition("own", 1, &[("app", "shop/api:old")]);
    cloud.add_service("prod", "own", &own, &[("deckhand:track", "app=shop/api:main")]);
    cloud.add_image(&format!("{CENTRAL}/shop/api"), "main", &digest(2));

    let plan = plan_for(&cloud, central_push("210987654321", "eu-west-1", "shop/api", 2)).await;
    assert_eq!(plan.action, PlanAction::Deploy, "{}", plan.reason);
    assert_eq!(plan.targets.iter().map(|t| t.service.as_str()).collect::<Vec<_>>(), ["shop"]);
    let target = &plan.targets[0];
    assert_eq!(target.containers[0].image, format!("{CENTRAL}/shop/api@{}", digest(2)), "pinned in its registry");
    let asked = format!("DescribeImages {CENTRAL}/shop/api:{}", digest(2));
    assert!(cloud.calls().contains(&asked), "imagePushedAt read in the registry account: {:?}", cloud.calls());
    assert_eq!(target.pushed_tag.as_ref().unwrap().repository, format!("{CENTRAL}/shop/api"));
}

#[tokio::test]
async fn a_push_from_an_account_not_listed_deploys_nothing_and_says_why() {
    let cloud = seeded();
    let td = cloud.add_task_definition("shop", 1, &[("app", "x:1")]);
    cloud.add_service(
        "prod",
        "shop",
        &td,
        &[("deckhand:track", "app=999999999999.dkr.ecr.eu-west-1.amazonaws.com/shop/api:main")],
    );
    let plan = plan_for(&cloud, central_push("999999999999", "eu-west-1", "shop/api", 2)).await;
    assert_eq!(plan.action, PlanAction::Nothing);
    assert!(plan.reason.contains("999999999999") && plan.reason.contains("RegistryAccounts"), "{}", plan.reason);
}

#[tokio::test]
async fn a_push_in_another_region_of_deckhands_account_deploys_its_trackers() {
    let cloud = seeded();
    let west = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
    let td = cloud.add_task_definition("dr", 1, &[("web", "x:1")]);
    cloud.add_service("prod", "dr", &td, &[("deckhand:track", &format!("web={west}/flask-backend:main"))]);
    let plan = plan_for(&cloud, central_push(ACCOUNT, "us-west-2", "flask-backend", 3)).await;
    assert_eq!(plan.targets.iter().map(|t| t.service.as_str()).collect::<Vec<_>>(), ["dr"], "{}", plan.reason);
    assert_eq!(plan.targets[0].containers[0].image, format!("{west}/flask-backend@{}", digest(3)));
}

#[tokio::test]
async fn a_manual_deploy_by_tag_resolves_it_in_the_registry_account() {
    let cloud = seeded();
    let td = cloud.add_task_definition("shop", 1, &[("app", "x:1")]);
    cloud.add_service("prod", "shop", &td, &[("deckhand:track", &format!("app={CENTRAL}/shop/api:main"))]);
    cloud.add_image_pushed_at(&format!("{CENTRAL}/shop/api"), "v7", &digest(7), 70.0);
    let manual = json!({"cluster": "prod", "service": "shop", "image": format!("{CENTRAL}/shop/api:v7")});
    let plan = super::plan::plan(&cloud, &cloud, &settings(), &manual, &execution()).await.unwrap();
    assert_eq!(plan.targets[0].containers[0].image, format!("{CENTRAL}/shop/api@{}", digest(7)));
}
