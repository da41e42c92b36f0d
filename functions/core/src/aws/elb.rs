//! Elastic Load Balancing v2 adapter.

use super::classify;
use crate::domain::snapshot::TargetSnapshot;
use crate::error::Result;
use crate::ports::LoadBalancer;
use aws_sdk_elasticloadbalancingv2::Client;

pub struct ElbAdapter {
    client: Client,
}

impl ElbAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }
}

impl LoadBalancer for ElbAdapter {
    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetSnapshot>> {
        let output = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| classify("DescribeTargetHealth", e))?;
        Ok(output
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let target = d.target()?;
                let health = d.target_health();
                Some(TargetSnapshot {
                    id: target.id()?.to_string(),
                    port: target.port(),
                    state: health.and_then(|h| h.state()).map_or("unavailable", |s| s.as_str()).into(),
                    reason: health.and_then(|h| h.reason()).map(|r| r.as_str().to_string()),
                })
            })
            .collect())
    }
}
