//! Release policies: which pushes of a tracked repository deploy (an exact tag, a tag prefix or
//! a semver X-range), and whether a newer push is really newer than what the service runs.

use super::image::is_valid_tag;
use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The tag part of a `deckhand:track` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TagRule {
    /// `main`: pushes of exactly this tag.
    Exact(String),
    /// `prefix:release-`: pushes of any tag that starts with it, newest push wins.
    Prefix(String),
    /// `semver:1.x`: pushes of a version in the range, never a downgrade.
    Semver(SemverRange),
}

/// An X-range (`x`, `1.x`, `1.4.x`) as written and as the semver crate reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverRange {
    written: String,
    requirement: VersionReq,
}

const PREFIX: &str = "prefix:";
const SEMVER: &str = "semver:";

impl TagRule {
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(prefix) = text.strip_prefix(PREFIX) {
            // A prefix is the start of a tag, so it is made of tag characters.
            if !is_valid_tag(prefix) {
                return Err(format!("{text:?}: the prefix must be the start of a valid image tag"));
            }
            return Ok(Self::Prefix(prefix.to_string()));
        }
        if let Some(range) = text.strip_prefix(SEMVER) {
            return SemverRange::parse(range).map(Self::Semver).map_err(|why| format!("{text:?}: {why}"));
        }
        if !is_valid_tag(text) {
            return Err(format!("{text:?} is not a valid image tag"));
        }
        Ok(Self::Exact(text.to_string()))
    }

    /// Prefixes and ranges: rules that a push of the repository can fail to match for a reason
    /// worth reporting (an exact tag that is not pushed simply is not tracked).
    pub fn is_pattern(&self) -> bool {
        !matches!(self, Self::Exact(_))
    }

    /// Whether a push of `tag` matches, or why not.
    pub fn matches(&self, tag: &str) -> Result<(), String> {
        match self {
            Self::Exact(exact) if exact == tag => Ok(()),
            Self::Exact(exact) => Err(format!("tag {tag:?} is not {exact:?}")),
            Self::Prefix(prefix) if tag.starts_with(prefix.as_str()) => Ok(()),
            Self::Prefix(prefix) => Err(format!("tag {tag:?} does not start with {prefix:?}")),
            Self::Semver(range) => range.admits(tag).map(|_| ()),
        }
    }

    /// Whether a push (matching this rule) is newer than what the service runs, or why not.
    pub fn is_newer(&self, pushed: &Pushed, running: &RunningImage) -> Result<(), String> {
        if running.digest.as_deref() == Some(pushed.digest.as_str()) {
            // Deploying it again changes nothing; the deployment says "already runs this image".
            return Ok(());
        }
        match self {
            // One tag: the newest push of it is what ECR names now (checked before UpdateService).
            Self::Exact(_) => Ok(()),
            Self::Prefix(_) => match running.pushed_at {
                Some(running_at) if pushed.pushed_at <= running_at => Err(format!(
                    "{} was pushed at {}, not after the image the service runs (pushed at {})",
                    pushed.tag,
                    rfc3339(pushed.pushed_at),
                    rfc3339(running_at)
                )),
                _ => Ok(()),
            },
            Self::Semver(_) => {
                let version =
                    parse_version(&pushed.tag).ok_or_else(|| format!("{:?} is not a semantic version", pushed.tag))?;
                match running.newest_version() {
                    // Precedence ignores build metadata (SemVer 2.0.0 §10): 1.4.2+b2 is not newer
                    // than 1.4.2+b1, so it does not redeploy over it.
                    Some(current) if version.cmp_precedence(&current).is_le() => Err(format!(
                        "{} is not newer than {current}, which the service runs: deckhand never downgrades a version range",
                        pushed.tag
                    )),
                    Some(_) => Ok(()),
                    // The service runs an image of this repository whose version tag was deleted
                    // or moved: nothing proves the push is not a downgrade.
                    None if running.of_the_repository => Err(format!(
                        "the image the service runs ({}) has no version tag any more, so nothing shows that {} is not a downgrade; deploy a version by hand (deckhand deploy) to set a new baseline",
                        running.digest.as_deref().unwrap_or("by tag"),
                        pushed.tag
                    )),
                    None => Ok(()),
                }
            }
        }
    }
}

impl SemverRange {
    fn parse(range: &str) -> Result<Self, String> {
        // Only X-ranges: ECS refuses `*`, `^`, `~`, `<` and `>` in tag values, and an exact
        // version is an exact tag.
        let parts: Vec<&str> = range.split('.').collect();
        let wildcard = |p: &str| p == "x" || p == "X";
        let number = |p: &str| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit());
        let shaped = match parts.as_slice() {
            [last] => wildcard(last),
            [major, last] => number(major) && wildcard(last),
            [major, minor, last] => number(major) && number(minor) && wildcard(last),
            _ => false,
        };
        if !shaped {
            return Err("a semver range is an X-range: x, MAJOR.x or MAJOR.MINOR.x (e.g. semver:1.x)".into());
        }
        let requirement = VersionReq::parse(range).map_err(|e| format!("not a semver range: {e}"))?;
        Ok(Self { written: range.to_string(), requirement })
    }

    /// The version a pushed tag names, if it is in the range. Pre-releases never are: an
    /// X-range stands for releases (semver's rule, and what the semver crate applies).
    pub fn admits(&self, tag: &str) -> Result<Version, String> {
        let version = parse_version(tag).ok_or_else(|| format!("tag {tag:?} is not a semantic version"))?;
        if !version.pre.is_empty()
            && self.requirement.matches(&Version { pre: semver::Prerelease::EMPTY, ..version.clone() })
        {
            return Err(format!("{tag} is a pre-release: pre-releases never match the range {}", self.written));
        }
        if !self.requirement.matches(&version) {
            return Err(format!("{tag} is outside the range {}", self.written));
        }
        Ok(version)
    }
}

/// A pushed tag as a version: semver, with one leading `v` accepted (`v1.4.2`).
pub fn parse_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// The push being judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub tag: String,
    pub digest: String,
    /// Epoch seconds (ECR's `imagePushedAt`).
    pub pushed_at: f64,
}

/// What ECR knows of the image a service's container runs now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningImage {
    /// The service runs an image of the pushed repository (in the pushed registry), pinned by
    /// digest: its version, if it has one, is the baseline, and without one nothing is newer.
    /// Anything else compares as nothing (the first match deploys).
    pub of_the_repository: bool,
    pub digest: Option<String>,
    /// Its tags now, and the one its image reference names.
    pub tags: Vec<String>,
    pub pushed_at: Option<f64>,
}

impl RunningImage {
    /// The highest version among the image's tags (by precedence: build metadata ignored).
    pub fn newest_version(&self) -> Option<Version> {
        self.tags.iter().filter_map(|t| parse_version(t)).max_by(|a, b| a.cmp_precedence(b))
    }
}

/// Whole seconds, UTC.
pub fn rfc3339(epoch: f64) -> String {
    aws_smithy_types::DateTime::from_secs(epoch.floor() as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| epoch.to_string())
}

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(tag) => write!(f, "{tag}"),
            Self::Prefix(prefix) => write!(f, "{PREFIX}{prefix}"),
            Self::Semver(range) => write!(f, "{SEMVER}{}", range.written),
        }
    }
}

impl TryFrom<String> for TagRule {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<TagRule> for String {
    fn from(rule: TagRule) -> String {
        rule.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> TagRule {
        TagRule::parse(text).unwrap()
    }

    #[test]
    fn reads_exact_tags_prefixes_and_x_ranges() {
        assert_eq!(rule("main"), TagRule::Exact("main".into()));
        assert_eq!(rule("prefix:release-"), TagRule::Prefix("release-".into()));
        for range in ["semver:x", "semver:X", "semver:1.x", "semver:1.4.x", "semver:10.20.X"] {
            assert!(matches!(rule(range), TagRule::Semver(_)), "{range}");
            assert_eq!(rule(range).to_string(), range);
        }
    }

    #[test]
    fn refuses_what_is_not_an_x_range_or_a_tag_start() {
        for bad in [
            "semver:^1.2",
            "semver:~1.2",
            "semver:>=1",
            "semver:*",
            "semver:1.*",
            "semver:1.2.3",
            "semver:1",
            "semver:",
            "semver:1.x.x",
            "semver:x.1",
            "semver:v1.x",
            "semver:1.2.3.x",
            "prefix:",
            "prefix:-rc",
            "prefix:a b",
            "ma*n",
            "",
        ] {
            assert!(TagRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_admit_releases_in_range_with_or_without_a_leading_v() {
        let one = rule("semver:1.x");
        for ok in ["1.0.0", "1.4.2", "v1.99.0"] {
            assert!(one.matches(ok).is_ok(), "{ok}");
        }
        for no in ["2.0.0", "0.9.9", "1.4", "latest", "vv1.0.0", "1.5.0-rc.1"] {
            assert!(one.matches(no).is_err(), "{no}");
        }
        assert!(one.matches("1.5.0-rc.1").unwrap_err().contains("pre-release"));
        let minor = rule("semver:1.4.x");
        assert!(minor.matches("1.4.9").is_ok());
        assert!(minor.matches("1.5.0").unwrap_err().contains("outside the range 1.4.x"));
        let any = rule("semver:x");
        assert!(any.matches("0.0.1").is_ok() && any.matches("42.0.0").is_ok());
        assert!(any.matches("3.0.0-beta").is_err());
    }

    #[test]
    fn prefixes_match_by_start() {
        let release = rule("prefix:release-");
        assert!(release.matches("release-2026-12-01").is_ok());
        assert!(release.matches("main").unwrap_err().contains("does not start with"));
    }

    fn pushed(tag: &str, at: f64) -> Pushed {
        Pushed { tag: tag.into(), digest: format!("sha256:{tag}"), pushed_at: at }
    }

    #[test]
    fn a_range_never_downgrades_nor_redeploys_the_same_version() {
        let range = rule("semver:1.x");
        let running = RunningImage { tags: vec!["latest".into(), "v1.4.2".into()], ..RunningImage::default() };
        assert!(range.is_newer(&pushed("1.4.3", 0.0), &running).is_ok());
        assert!(range.is_newer(&pushed("1.10.0", 0.0), &running).is_ok(), "by precedence, not by text");
        let older = range.is_newer(&pushed("1.4.1", 0.0), &running).unwrap_err();
        assert!(older.contains("not newer than 1.4.2"), "{older}");
        assert!(range.is_newer(&pushed("v1.4.2", 0.0), &running).is_err());
        // Running something outside the range (2.0.0 deployed by hand) is still not a reason to go back.
        let ahead = RunningImage { tags: vec!["2.0.0".into()], ..RunningImage::default() };
        assert!(range.is_newer(&pushed("1.9.0", 0.0), &ahead).is_err());
        // Nothing versioned runs yet: the first version in range deploys.
        assert!(range.is_newer(&pushed("1.0.0", 0.0), &RunningImage::default()).is_ok());
    }

    #[test]
    fn a_prefix_deploys_only_later_pushes() {
        let release = rule("prefix:release-");
        let running = RunningImage { pushed_at: Some(100.0), ..RunningImage::default() };
        assert!(release.is_newer(&pushed("release-b", 100.5), &running).is_ok());
        let stale = release.is_newer(&pushed("release-a", 99.0), &running).unwrap_err();
        assert!(stale.contains("not after the image the service runs"), "{stale}");
        assert!(release.is_newer(&pushed("release-a", 99.0), &RunningImage::default()).is_ok());
    }

    #[test]
    fn the_image_already_running_is_never_refused() {
        let range = rule("semver:1.x");
        let push = pushed("1.4.2", 0.0);
        let running = RunningImage {
            of_the_repository: true,
            digest: Some(push.digest.clone()),
            tags: vec!["1.4.2".into()],
            pushed_at: None,
        };
        assert!(range.is_newer(&push, &running).is_ok());
    }

    #[test]
    fn serializes_as_written() {
        let json = serde_json::to_string(&rule("semver:1.4.x")).unwrap();
        assert_eq!(json, "\"semver:1.4.x\"");
        assert!(serde_json::from_str::<TagRule>("\"semver:^1\"").is_err());
    }

    #[test]
    fn build_metadata_is_not_a_newer_version() {
        let range = rule("semver:1.x");
        let running =
            RunningImage { of_the_repository: true, tags: vec!["1.4.2+b1".into()], ..RunningImage::default() };
        let same = range.is_newer(&pushed("1.4.2+b2", 0.0), &running).unwrap_err();
        assert!(same.contains("not newer than 1.4.2+b1"), "{same}");
        assert!(range.is_newer(&pushed("1.4.3+b0", 0.0), &running).is_ok());
        let bare = RunningImage { of_the_repository: true, tags: vec!["1.4.2".into()], ..RunningImage::default() };
        assert!(range.is_newer(&pushed("1.4.2+hotfix", 0.0), &bare).is_err());
    }

    #[test]
    fn a_running_image_without_a_version_tag_deploys_nothing_that_could_be_a_downgrade() {
        let range = rule("semver:1.x");
        let untagged = RunningImage {
            of_the_repository: true,
            digest: Some("sha256:old".into()),
            tags: vec![],
            pushed_at: Some(5.0),
        };
        let why = range.is_newer(&pushed("1.0.1", 10.0), &untagged).unwrap_err();
        assert!(why.contains("no version tag"), "{why}");
        let moved = RunningImage { tags: vec!["latest".into()], ..untagged.clone() };
        assert!(range.is_newer(&pushed("1.9.0", 10.0), &moved).is_err());
        // An image of another repository (the first adoption) is no baseline.
        assert!(range.is_newer(&pushed("1.0.1", 10.0), &RunningImage::default()).is_ok());
    }
}
