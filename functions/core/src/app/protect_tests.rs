//! Known-good images and ECR lifecycle policies: the rollback passes over a revision whose image
//! is gone, and a release protects the verified revision's images with a tag of their own.

use super::deploy::deploy;
use super::lock::{acquire, protect_known_good, release, Released};
use super::rollback::{rollback, Images, Undo};
use super::tests::{deploy_target, seeded};
use crate::domain::events::Status;
use crate::domain::ledger::KNOWN_GOOD_HISTORY;
use crate::domain::protect::protection_tag;
use crate::testing::*;

const OWNER: &str = "arn:aws:states:us-east-1:1:execution:d:e";

/// Deploys digest `n` and records it as known-good; returns the revision and the release.
async fn verified(cloud: &FakeCloud, n: u8, now: f64) -> (String, Released) {
    let target = deploy_target(cloud, n).await;
    let rollout = deploy(cloud, cloud, &target, None, now).await.unwrap();
    let owner = format!("{OWNER}{n}");
    acquire(cloud, cloud, cloud, &target, &owner, now, 3600.0).await.unwrap();
    let released = release(cloud, &target, &owner, Some(&rollout.task_definition), Some(Status::Succeeded), now + 1.0)
        .await
        .unwrap();
    (rollout.task_definition, released)
}

#[tokio::test]
async fn a_rollback_passes_over_a_known_good_revision_whose_image_is_gone() {
    let cloud = seeded();
    let (older, _) = verified(&cloud, 7, 100.0).await;
    let (newest, _) = verified(&cloud, 8, 200.0).await;
    let bad = deploy_target(&cloud, 9).await;
    let failed = deploy(&cloud, &cloud, &bad, None, 300.0).await.unwrap();
    cloud.delete_image("todo/files", &digest(8)); // expired by a lifecycle rule, or BatchDeleteImage

    let undo = Undo { failed: Some(&failed), previous: None };
    let back = rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &bad, undo, false, 400.0).await.unwrap();
    assert_eq!(back.task_definition, older, "{}", back.reason);
    let gone =
        format!("{} passed over: image todo/files@{} expired/deleted", newest.rsplit('/').next().unwrap(), digest(8));
    assert!(back.reason.contains(&gone), "{}", back.reason);
    assert_eq!(cloud.service("todo").task_definition, older);
}

#[tokio::test]
async fn images_of_other_registries_and_tags_are_not_checked() {
    let cloud = seeded();
    let (good, _) = verified(&cloud, 7, 100.0).await;
    let bad = deploy_target(&cloud, 9).await;
    let failed = deploy(&cloud, &cloud, &bad, None, 300.0).await.unwrap();
    // "todo/main:old" (by tag) is in no registry the fake knows; only pinned images count.
    let undo = Undo { failed: Some(&failed), previous: None };
    let back = rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &bad, undo, false, 400.0).await.unwrap();
    assert_eq!(back.task_definition, good);
    assert!(!back.reason.contains("passed over"), "{}", back.reason);
}

#[tokio::test]
async fn a_rollback_with_every_known_good_image_gone_fails_clearly() {
    let cloud = seeded();
    let _ = verified(&cloud, 7, 100.0).await;
    let bad = deploy_target(&cloud, 9).await;
    let mut failed = deploy(&cloud, &cloud, &bad, None, 300.0).await.unwrap();
    failed.previous_task_definition = None;
    cloud.delete_image("todo/files", &digest(7));
    let undo = Undo { failed: Some(&failed), previous: None };
    let error = rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &bad, undo, false, 400.0).await.unwrap_err();
    assert_eq!(error.name(), "NoKnownGoodRevision");
}

#[tokio::test]
async fn the_verified_image_gets_the_services_protection_tag_once() {
    let cloud = seeded();
    let (good, released) = verified(&cloud, 7, 100.0).await;
    let target = deploy_target(&cloud, 7).await;
    let protection = protect_known_good(&cloud, &cloud, REGISTRY, &target, &good, &released).await;
    let tag = protection_tag(&target.service_arn, &digest(7));
    assert_eq!(protection.tagged, vec![format!("todo/files:{tag}")]);
    assert!(protection.untagged.is_empty() && protection.warnings.is_empty(), "{protection:?}");
    assert_eq!(cloud.image_tags("todo/files", &digest(7)), vec![tag.clone()]);
    // "todo/main:old" is not pinned by digest: not protected (nothing to protect it from).
    assert!(!cloud.calls().iter().any(|c| c.starts_with("PutImage todo/main")));

    // A retried release protects again: the image already carries the tag, which is fine.
    let again = protect_known_good(&cloud, &cloud, REGISTRY, &target, &good, &released).await;
    assert_eq!(again.tagged, protection.tagged);
    assert!(again.warnings.is_empty());
    assert_eq!(cloud.image_tags("todo/files", &digest(7)), vec![tag]);
}

#[tokio::test]
async fn a_revision_leaving_the_known_good_history_loses_its_tag_unless_still_needed() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 1).await;
    let mut revisions = vec![];
    for n in 1..=KNOWN_GOOD_HISTORY as u8 {
        let (td, released) = verified(&cloud, n, 100.0 * f64::from(n)).await;
        assert!(released.left.is_empty());
        protect_known_good(&cloud, &cloud, REGISTRY, &target, &td, &released).await;
        revisions.push(td);
    }
    // The sixth pushes the first out of the history: its image's tag goes (and with its last
    // tag, the image, as BatchDeleteImage does); the other four keep theirs.
    let (sixth, released) = verified(&cloud, 6, 600.0).await;
    assert_eq!(released.left, vec![revisions[0].clone()]);
    let protection = protect_known_good(&cloud, &cloud, REGISTRY, &target, &sixth, &released).await;
    let first_tag = protection_tag(&target.service_arn, &digest(1));
    assert_eq!(protection.untagged, vec![format!("todo/files:{first_tag}")], "{protection:?}");
    assert!(cloud.with(|s| !s.images.contains_key(&("todo/files".to_string(), digest(1)))));
    for n in 2..=6 {
        assert_eq!(cloud.image_tags("todo/files", &digest(n)), vec![protection_tag(&target.service_arn, &digest(n))]);
    }
}

#[tokio::test]
async fn an_image_still_run_by_a_known_good_revision_keeps_its_tag() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 1).await;
    let (first, released) = verified(&cloud, 1, 100.0).await;
    protect_known_good(&cloud, &cloud, REGISTRY, &target, &first, &released).await;
    let tag = protection_tag(&target.service_arn, &digest(1));
    // Another known-good revision runs the same image: it must stay protected.
    let released = Released { known_good: vec!["x".into(), first.clone()], left: vec![first.clone()] };
    let other = protect_known_good(&cloud, &cloud, REGISTRY, &target, &first, &released).await;
    assert!(other.untagged.is_empty(), "{other:?}");
    assert_eq!(cloud.image_tags("todo/files", &digest(1)), vec![tag]);
}

#[tokio::test]
async fn a_failure_to_protect_is_a_warning_not_a_failed_release() {
    let cloud = seeded();
    let (good, released) = verified(&cloud, 7, 100.0).await;
    let target = deploy_target(&cloud, 7).await;
    cloud.with(|s| s.deny_image_tagging = 1);
    let protection = protect_known_good(&cloud, &cloud, REGISTRY, &target, &good, &released).await;
    assert!(protection.tagged.is_empty());
    assert_eq!(protection.warnings.len(), 1, "{protection:?}");
    assert!(protection.warnings[0].contains("AccessDenied"), "{protection:?}");

    cloud.delete_image("todo/files", &digest(7));
    let gone = protect_known_good(&cloud, &cloud, REGISTRY, &target, &good, &released).await;
    assert!(gone.warnings[0].contains("is gone"), "{gone:?}");
}
