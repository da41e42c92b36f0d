//! ECR adapter.

use super::{classify, seconds};
use crate::domain::snapshot::ImageDetail;
use crate::error::Result;
use crate::ports::{ImageSelector, Registry};
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::types::ImageIdentifier;
use aws_sdk_ecr::Client;

pub struct EcrAdapter {
    client: Client,
}

impl EcrAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }
}

impl Registry for EcrAdapter {
    async fn describe_image(&self, repository: &str, selector: ImageSelector<'_>) -> Result<Option<ImageDetail>> {
        let id = match selector {
            ImageSelector::Tag(tag) => ImageIdentifier::builder().image_tag(tag).build(),
            ImageSelector::Digest(digest) => ImageIdentifier::builder().image_digest(digest).build(),
        };
        match self.client.describe_images().repository_name(repository).image_ids(id).send().await {
            Ok(output) => Ok(output.image_details().first().and_then(|d| {
                Some(ImageDetail {
                    digest: d.image_digest()?.to_string(),
                    pushed_at: seconds(d.image_pushed_at()),
                    tags: d.image_tags().to_vec(),
                })
            })),
            Err(error) => match error.as_service_error() {
                Some(
                    DescribeImagesError::ImageNotFoundException(_)
                    | DescribeImagesError::RepositoryNotFoundException(_),
                ) => Ok(None),
                _ => Err(classify("DescribeImages", error)),
            },
        }
    }
}
