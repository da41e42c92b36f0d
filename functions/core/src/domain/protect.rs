//! Protecting known-good images from ECR lifecycle policies.
//!
//! deckhand pins digests, so once a tag moves on, the image a known-good revision runs is
//! untagged, and the common "expire untagged images" lifecycle rule deletes it: a rollback could
//! then not pull it. deckhand therefore gives each ECR image (of the account's own registry) of
//! every revision in a service's known-good history a tag of its own,
//! `deckhand-kg-<8 hex of the service ARN's hash>-<first 12 hex of the digest>`, and removes it
//! when the revision leaves that history (the last [`KNOWN_GOOD_HISTORY`] verified revisions,
//! all of them rollback candidates).
//!
//! The tag names the digest, so it never has to move: the same scheme works in repositories with
//! MUTABLE and IMMUTABLE tags (an IMMUTABLE tag cannot be moved, only deleted). A tag is added by
//! PutImage of the image's own manifest with the extra tag ("PutImage ... for tagging an existing
//! image", ECR API reference; an image that already carries it answers
//! `ImageAlreadyExistsException`, which is fine) and removed with BatchDeleteImage by tag, which
//! removes only the tag while the image has another one, and deletes the image with its last tag
//! ("You can remove a tag from an image by specifying the image's tag in your request. When you
//! remove the last tag from an image, the image is deleted from your repository.", ECR API
//! reference, BatchDeleteImage). An image kept only by deckhand's tag would already have been
//! expired by an untagged rule; no other image is ever deleted.
//!
//! [`KNOWN_GOOD_HISTORY`]: crate::domain::ledger::KNOWN_GOOD_HISTORY

use crate::domain::image::ImageRef;
use std::collections::BTreeSet;

/// Every protection tag starts with this.
pub const TAG_PREFIX: &str = "deckhand-kg-";

/// An ECR image of the account's registry: (repository, digest).
pub type PinnedImage = (String, String);

/// FNV-1a, 32 bits: stable across Rust releases (unlike `DefaultHasher`), which a tag that must be
/// found again by later deployments needs.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// The tags of one service start with this (`deckhand-kg-1a2b3c4d-`).
pub fn service_prefix(service_arn: &str) -> String {
    format!("{TAG_PREFIX}{:08x}-", fnv1a(service_arn))
}

/// The tag that keeps `digest` for `service_arn`: 33 characters, within ECR's 128.
pub fn protection_tag(service_arn: &str, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("{}{}", service_prefix(service_arn), &hex[..hex.len().min(12)])
}

/// The images of a revision that deckhand can protect (and whose absence it can check): those of
/// the account's own ECR registry pinned by digest. Tags and other registries are left out.
pub fn pinned_images<'a>(images: impl IntoIterator<Item = &'a str>, account_registry: &str) -> Vec<PinnedImage> {
    let mut out: Vec<PinnedImage> = images
        .into_iter()
        .filter_map(|image| ImageRef::parse("image", image).ok())
        .filter(|image| image.registry.as_deref() == Some(account_registry))
        .filter_map(|image| Some((image.repository, image.digest?)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What to do after a release: tag the images of the verified revision; untag the images of
/// revisions that left the known-good history unless a revision still in it runs the same image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectionPlan {
    pub tag: Vec<(PinnedImage, String)>,
    pub untag: Vec<(String, String)>,
}

pub fn plan_protection(
    service_arn: &str,
    verified: &[PinnedImage],
    left: &[PinnedImage],
    kept: &[PinnedImage],
) -> ProtectionPlan {
    let keep: BTreeSet<&PinnedImage> = verified.iter().chain(kept).collect();
    let tag = verified.iter().map(|image| (image.clone(), protection_tag(service_arn, &image.1))).collect();
    let untag: BTreeSet<(String, String)> = left
        .iter()
        .filter(|image| !keep.contains(image))
        .map(|(repository, digest)| (repository.clone(), protection_tag(service_arn, digest)))
        .collect();
    ProtectionPlan { tag, untag: untag.into_iter().collect() }
}

/// Whether an ECR lifecycle rule's selection could expire an image deckhand protects: an
/// `untagged` rule only when protection is off (`protected` false), a `tagged` rule whose prefix
/// or pattern list matches a protection tag, an `any` rule always. For `deckhand doctor`.
pub fn rule_threatens_known_good(
    tag_status: &str,
    prefixes: &[String],
    patterns: &[String],
    sample_tag: &str,
    protected: bool,
) -> bool {
    match tag_status {
        "untagged" => !protected,
        "any" => true,
        "tagged" => {
            // ECR selects an image only when every entry matches one of its tags: with deckhand's
            // tag among them, a list whose entries all match the protection tag selects it.
            (!prefixes.is_empty() && prefixes.iter().all(|p| sample_tag.starts_with(p.as_str())))
                || (!patterns.is_empty() && patterns.iter().all(|p| wildcard_match(p, sample_tag)))
        }
        _ => false,
    }
}

/// `*` wildcards, as ECR's `tagPatternList` has them.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/api";
    const REG: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn the_tag_names_the_service_and_the_digest_and_is_a_valid_ecr_tag() {
        let tag = protection_tag(SVC, &d(0xab));
        assert!(tag.starts_with(&service_prefix(SVC)) && tag.ends_with("abababababab"), "{tag}");
        assert_eq!(tag.len(), 33);
        assert!(crate::domain::image::is_valid_tag(&tag));
        assert_ne!(service_prefix(SVC), service_prefix("arn:aws:ecs:us-east-1:123456789012:service/prod/web"));
        assert_eq!(protection_tag(SVC, &d(1)), protection_tag(SVC, &d(1)), "stable");
    }

    #[test]
    fn only_account_registry_images_pinned_by_digest_are_protected() {
        let images = [
            format!("{REG}/shop/api@{}", d(1)),
            format!("{REG}/shop/api:main"),
            format!("public.ecr.aws/nginx/nginx@{}", d(2)),
            format!("210987654321.dkr.ecr.us-east-1.amazonaws.com/x@{}", d(3)),
            format!("{REG}/shop/files@{}", d(4)),
            format!("{REG}/shop/api@{}", d(1)),
        ];
        assert_eq!(
            pinned_images(images.iter().map(String::as_str), REG),
            vec![("shop/api".to_string(), d(1)), ("shop/files".to_string(), d(4))]
        );
    }

    #[test]
    fn leaving_images_are_untagged_unless_still_known_good() {
        let img = |repo: &str, n| (repo.to_string(), d(n));
        let plan =
            plan_protection(SVC, &[img("api", 5)], &[img("api", 1), img("api", 2), img("api", 5)], &[img("api", 2)]);
        assert_eq!(plan.tag, vec![(img("api", 5), protection_tag(SVC, &d(5)))]);
        // 2 is still run by a revision in the history, 5 was just verified: only 1 loses its tag.
        assert_eq!(plan.untag, vec![("api".to_string(), protection_tag(SVC, &d(1)))]);
    }

    #[test]
    fn rules_that_could_expire_a_protected_image() {
        let tag = protection_tag(SVC, &d(1));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(!rule_threatens_known_good("untagged", &[], &[], &tag, true));
        assert!(rule_threatens_known_good("untagged", &[], &[], &tag, false));
        assert!(rule_threatens_known_good("any", &[], &[], &tag, true));
        assert!(rule_threatens_known_good("tagged", &s(&["deckhand"]), &[], &tag, true));
        assert!(!rule_threatens_known_good("tagged", &s(&["prod"]), &[], &tag, true));
        assert!(!rule_threatens_known_good("tagged", &s(&["deckhand", "prod"]), &[], &tag, true));
        assert!(rule_threatens_known_good("tagged", &[], &s(&["*-kg-*"]), &tag, true));
        assert!(!rule_threatens_known_good("tagged", &[], &s(&["v*"]), &tag, true));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("prod*", "prod-1"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXcYb"));
        assert!(!wildcard_match("prod", "prod1"));
    }
}
