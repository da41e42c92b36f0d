//! SNS adapter: chat messages to the topic Amazon Q Developer in chat applications listens to.

use super::classify;
use crate::error::{DeckhandError, Result};
use crate::ports::Chat;
use aws_sdk_sns::Client;

pub struct SnsAdapter {
    client: Client,
    topic_arn: String,
}

impl SnsAdapter {
    pub fn new(config: &aws_config::SdkConfig, topic_arn: String) -> Self {
        Self { client: Client::new(config), topic_arn }
    }
}

impl Chat for SnsAdapter {
    async fn post(&self, message: &serde_json::Value) -> Result<()> {
        let body = serde_json::to_string(message).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .send()
            .await
            .map_err(|e| classify("Publish", e))?;
        Ok(())
    }
}
