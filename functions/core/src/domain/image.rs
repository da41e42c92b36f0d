//! Container image references: parsing, registry policy and digest pinning.

use super::registry::{split_key, EcrRegistry};
use crate::error::{DeckhandError, Result};
use std::fmt;

/// A parsed image reference `[REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference as users write it; `field` names the input field in errors.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let bad = |why: &str| DeckhandError::invalid(field, format!("{why} (got {text:?})"));
        if text.is_empty() || text.len() > 512 || text.chars().any(|c| c.is_whitespace()) {
            return Err(bad("must be a non-empty image reference without spaces"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                if !is_valid_digest(digest) {
                    return Err(bad("digest must be sha256: and 64 lowercase hex digits"));
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // The registry is the first path component when it looks like a host (has a dot or port).
        let (registry, path) = match rest.split_once('/') {
            Some((first, remainder)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (Some(first.to_string()), remainder)
            }
            _ => (None, rest),
        };
        // A tag follows the last ':' of the last path component.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (&path[..last_slash + i], Some(path[last_slash + i + 1..].to_string())),
            None => (path, None),
        };
        if !is_valid_repository(repository) {
            return Err(bad("repository must be lowercase letters, digits and . _ - / separators"));
        }
        if let Some(tag) = &tag {
            if !is_valid_tag(tag) {
                return Err(bad("tag must be 1-128 letters, digits, '_', '.' or '-'"));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad("needs a tag (repo:tag) or a digest (repo@sha256:...)"));
        }
        Ok(Self { registry, repository: repository.to_string(), tag, digest })
    }

    /// The reference pinned to a digest in the given registry: `REGISTRY/REPO@sha256:...`.
    pub fn pinned(registry: &str, repository: &str, digest: &str) -> String {
        format!("{registry}/{repository}@{digest}")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        write!(f, "{}", self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Is this a `sha256:` digest with 64 lowercase hex digits?
pub fn is_valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// ECR repository names: lowercase path components separated by '/', each `[a-z0-9]+([._-][a-z0-9]+)*`.
pub fn is_valid_repository(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

pub fn is_valid_tag(tag: &str) -> bool {
    (1..=128).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && tag.as_bytes()[0] != b'.'
        && tag.as_bytes()[0] != b'-'
}

/// Which registries deckhand may deploy from: the account's own ECR registry (any Region of it),
/// the ECR registries of the accounts `RegistryAccounts` lists (their pushes deploy too), and an
/// allow-list of other registries (manual deploys by digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPolicy {
    pub account_registry: String,
    pub allowed: Vec<String>,
    /// Other accounts whose ECR pushes deploy (`RegistryAccounts`).
    pub registry_accounts: Vec<String>,
}

impl RegistryPolicy {
    /// Is this registry host the account's own ECR registry (where tags can be resolved)?
    pub fn is_account_registry(&self, registry: Option<&str>) -> bool {
        registry.is_none_or(|r| r == self.account_registry)
    }

    fn own(&self) -> Option<EcrRegistry> {
        EcrRegistry::parse(&self.account_registry)
    }

    /// Whether pushes to ECR registries of `account` deploy: deckhand's own account (any
    /// Region: a registry-side stack there forwards its events) or a listed registry account.
    pub fn accepts_pushes_from(&self, account: &str) -> bool {
        self.own().is_some_and(|own| own.account == account) || self.registry_accounts.iter().any(|a| a == account)
    }

    /// An ECR registry whose tags deckhand resolves and whose pushes deploy.
    pub fn is_trusted_ecr(&self, host: &str) -> bool {
        EcrRegistry::parse(host).is_some_and(|registry| self.accepts_pushes_from(&registry.account))
    }

    pub fn permits(&self, registry: Option<&str>) -> bool {
        self.is_account_registry(registry)
            || registry.is_some_and(|r| self.allowed.iter().any(|a| a == r) || self.is_trusted_ecr(r))
    }

    /// The repository key of a repository as written in `deckhand:track` (`NAME`, or
    /// `HOST/NAME` for another registry): deckhand's own registry written out is the bare name.
    pub fn key(&self, written: &str) -> String {
        match written.strip_prefix(self.account_registry.as_str()).and_then(|rest| rest.strip_prefix('/')) {
            Some(name) => name.to_string(),
            None => written.to_string(),
        }
    }

    /// The key of repository `name` of the registry of `account` in `region` (a push's).
    pub fn push_key(&self, account: &str, region: &str, name: &str) -> String {
        self.key(&format!("{}/{name}", EcrRegistry { account: account.into(), region: region.into() }.host()))
    }

    /// The image of `digest` in the repository `key`, pinned: `HOST/NAME@sha256:…`.
    pub fn pin(&self, key: &str, digest: &str) -> String {
        match split_key(key) {
            (Some(_), _) => format!("{key}@{digest}"),
            (None, name) => ImageRef::pinned(&self.account_registry, name, digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_the_forms_users_write() {
        let short = ImageRef::parse("image", "flask-backend:v2").unwrap();
        assert_eq!(
            (short.registry, short.repository.as_str(), short.tag.as_deref()),
            (None, "flask-backend", Some("v2"))
        );

        let by_digest = ImageRef::parse("image", &format!("todo/main@{DIGEST}")).unwrap();
        assert_eq!(by_digest.repository, "todo/main");
        assert_eq!(by_digest.digest.as_deref(), Some(DIGEST));

        let full = ImageRef::parse("image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/web/api:main").unwrap();
        assert_eq!(full.registry.as_deref(), Some("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
        assert_eq!(full.repository, "web/api");
        assert_eq!(full.to_string(), "123456789012.dkr.ecr.us-east-1.amazonaws.com/web/api:main");

        let with_port = ImageRef::parse("image", &format!("localhost:5000/app:1@{DIGEST}")).unwrap();
        assert_eq!(with_port.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(with_port.tag.as_deref(), Some("1"));
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in
            ["", "repo", "Repo:1", "repo:", "repo:bad tag", "repo@sha256:abc", "repo@md5:00", "-repo:1", "repo:.x"]
        {
            assert!(ImageRef::parse("image", bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn registry_policy_admits_account_registry_and_allow_list_only() {
        let policy = RegistryPolicy {
            account_registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
            allowed: vec!["public.ecr.aws".into()],
            registry_accounts: vec!["210987654321".into()],
        };
        assert!(policy.permits(None));
        assert!(policy.permits(Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")));
        assert!(policy.permits(Some("public.ecr.aws")));
        assert!(!policy.permits(Some("999999999999.dkr.ecr.us-east-1.amazonaws.com")));
        assert!(!policy.permits(Some("docker.io")));
        // Listed registry accounts, and deckhand's own account in another Region.
        assert!(policy.permits(Some("210987654321.dkr.ecr.eu-west-1.amazonaws.com")));
        assert!(policy.permits(Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com")));
        assert!(policy.accepts_pushes_from("210987654321") && !policy.accepts_pushes_from("999999999999"));
    }

    #[test]
    fn repository_keys_are_bare_for_the_own_registry_and_uris_for_others() {
        let policy = RegistryPolicy {
            account_registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
            allowed: vec![],
            registry_accounts: vec!["210987654321".into()],
        };
        assert_eq!(policy.key("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api"), "shop/api");
        assert_eq!(policy.key("shop/api"), "shop/api");
        let other = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/shop/api";
        assert_eq!(policy.key(other), other);
        assert_eq!(policy.push_key("123456789012", "us-east-1", "shop/api"), "shop/api");
        assert_eq!(policy.push_key("210987654321", "eu-west-1", "shop/api"), other);
        assert_eq!(
            policy.push_key("123456789012", "eu-west-1", "api"),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api"
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(policy.pin(other, &digest), format!("{other}@{digest}"));
        assert_eq!(
            policy.pin("shop/api", &digest),
            format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api@{digest}")
        );
    }
}
