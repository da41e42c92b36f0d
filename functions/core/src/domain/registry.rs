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

/// Whether a repository policy lets every principal of `account` call `action` (an Allow that
/// names the account, its root or everyone, with the action or a wildcard of it, and no Deny
/// that does). A policy that names only some roles of the account is not read as granting it.
pub fn policy_grants(policy: &str, account: &str, action: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(policy) else { return false };
    let statements = match &document["Statement"] {
        serde_json::Value::Array(list) => list.clone(),
        single @ serde_json::Value::Object(_) => vec![single.clone()],
        _ => vec![],
    };
    let strings = |value: &serde_json::Value| -> Vec<String> {
        match value {
            serde_json::Value::String(one) => vec![one.clone()],
            serde_json::Value::Array(many) => many.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => vec![],
        }
    };
    let root = format!(":iam::{account}:root");
    let mut allowed = false;
    for statement in &statements {
        let principal = &statement["Principal"];
        let principals = if principal.is_string() { strings(principal) } else { strings(&principal["AWS"]) };
        let names_account = principals.iter().any(|p| p == "*" || p == account || p.ends_with(&root));
        let names_action = strings(&statement["Action"]).iter().any(|pattern| wildcard_matches(pattern, action));
        if !(names_account && names_action) || statement.get("Condition").is_some() {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Deny") => return false,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    allowed
}

/// IAM's `*` and `?` wildcards, case-insensitive as action names are.
fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_policy_grants_an_account_what_it_names() {
        let policy = |principal: &str, actions: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":{actions}}}]}}"#
            )
        };
        let root = r#"{"AWS":"arn:aws:iam::123456789012:root"}"#;
        assert!(policy_grants(
            &policy(root, r#"["ecr:DescribeImages","ecr:BatchGetImage"]"#),
            "123456789012",
            "ecr:DescribeImages"
        ));
        assert!(policy_grants(
            &policy(r#"{"AWS":["123456789012"]}"#, r#""ecr:*""#),
            "123456789012",
            "ecr:BatchGetImage"
        ));
        assert!(policy_grants(&policy(r#""*""#, r#""ecr:Describe*""#), "123456789012", "ecr:DescribeImages"));
        assert!(!policy_grants(&policy(root, r#""ecr:BatchGetImage""#), "123456789012", "ecr:DescribeImages"));
        assert!(!policy_grants(&policy(root, r#""ecr:*""#), "999999999999", "ecr:DescribeImages"));
        let one_role = r#"{"AWS":"arn:aws:iam::123456789012:role/ci"}"#;
        assert!(!policy_grants(&policy(one_role, r#""ecr:*""#), "123456789012", "ecr:DescribeImages"));
        assert!(!policy_grants("not json", "123456789012", "ecr:DescribeImages"));
    }

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
