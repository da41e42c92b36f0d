//! ECR registries by account and Region, and repository keys: a repository of deckhand's own
//! registry is named by its name (`shop/api`), one of another registry by its repository URI
//! (`210987654321.dkr.ecr.eu-west-1.amazonaws.com/shop/api`), as `deckhand:track` writes them.

/// One account's ECR registry in one Region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EcrRegistry {
    pub account: String,
    pub region: String,
}

impl EcrRegistry {
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (`.amazonaws.com.cn` in the China Regions), the
    /// host of an ECR image URI; anything else (another registry, a FIPS or dual-stack host) is
    /// not one deckhand reads.
    pub fn parse(host: &str) -> Option<Self> {
        let (account, rest) = host.split_once(".dkr.ecr.")?;
        let region = rest.strip_suffix(".amazonaws.com").or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        let region_ok = !region.is_empty()
            && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && region.contains('-');
        (account_ok && region_ok).then(|| Self { account: account.into(), region: region.into() })
    }

    pub fn host(&self) -> String {
        let suffix = if self.region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        format!("{}.dkr.ecr.{}.{suffix}", self.account, self.region)
    }
}

/// A repository key as its registry (None: deckhand's own) and the repository's name.
pub fn split_key(key: &str) -> (Option<EcrRegistry>, &str) {
    match key.split_once('/') {
        Some((host, name)) => match EcrRegistry::parse(host) {
            Some(registry) => (Some(registry), name),
            None => (None, key),
        },
        None => (None, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ecr_hosts_and_nothing_else() {
        let registry = EcrRegistry::parse("210987654321.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        assert_eq!((registry.account.as_str(), registry.region.as_str()), ("210987654321", "eu-west-1"));
        assert_eq!(registry.host(), "210987654321.dkr.ecr.eu-west-1.amazonaws.com");
        let china = EcrRegistry::parse("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn").unwrap();
        assert_eq!(china.host(), "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn");
        for other in [
            "public.ecr.aws",
            "ghcr.io",
            "21098765432.dkr.ecr.eu-west-1.amazonaws.com",
            "210987654321.dkr.ecr.eu_west_1.amazonaws.com",
            "210987654321.dkr.ecr-fips.us-east-1.amazonaws.com",
            "210987654321.dkr.ecr.eu-west-1.example.com",
        ] {
            assert_eq!(EcrRegistry::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_key_names_its_registry_only_when_it_has_one() {
        assert_eq!(split_key("shop/api"), (None, "shop/api"));
        let (registry, name) = split_key("210987654321.dkr.ecr.eu-west-1.amazonaws.com/shop/api");
        assert_eq!((registry.unwrap().account.as_str(), name), ("210987654321", "shop/api"));
    }
}
