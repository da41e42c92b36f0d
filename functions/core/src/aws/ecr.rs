//! ECR adapter.

use super::{classify, seconds};
use crate::domain::snapshot::ImageDetail;
use crate::error::Result;
use crate::ports::{ImageSelector, Registry, Tagging};
use aws_sdk_ecr::operation::batch_delete_image::BatchDeleteImageError;
use aws_sdk_ecr::operation::batch_get_image::BatchGetImageError;
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;
use aws_sdk_ecr::operation::put_image::PutImageError;
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageIdentifier, TagStatus};
use aws_sdk_ecr::Client;

pub struct EcrAdapter {
    client: Client,
}

impl EcrAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }
}

impl EcrAdapter {
    /// The repository's lifecycle policy text (GetLifecyclePolicy), None when it has none (or
    /// the repository does not exist). For `deckhand doctor`.
    pub async fn lifecycle_policy(&self, repository: &str) -> Result<Option<String>> {
        match self.client.get_lifecycle_policy().repository_name(repository).send().await {
            Ok(output) => Ok(output.lifecycle_policy_text().map(str::to_string)),
            Err(error) => match error.as_service_error() {
                Some(
                    GetLifecyclePolicyError::LifecyclePolicyNotFoundException(_)
                    | GetLifecyclePolicyError::RepositoryNotFoundException(_),
                ) => Ok(None),
                _ => Err(classify("GetLifecyclePolicy", error)),
            },
        }
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

    async fn list_images(&self, repository: &str) -> Result<Vec<ImageDetail>> {
        let mut images = Vec::new();
        let mut next_token = None;
        loop {
            let request = self
                .client
                .describe_images()
                .repository_name(repository)
                .filter(DescribeImagesFilter::builder().tag_status(TagStatus::Tagged).build())
                // The largest page DescribeImages gives (ECR API reference, maxResults).
                .max_results(1000)
                .set_next_token(next_token.take());
            let output = match request.send().await {
                Ok(output) => output,
                Err(error) => match error.as_service_error() {
                    Some(DescribeImagesError::RepositoryNotFoundException(_)) => return Ok(vec![]),
                    _ => return Err(classify("DescribeImages", error)),
                },
            };
            images.extend(output.image_details().iter().filter_map(|d| {
                Some(ImageDetail {
                    digest: d.image_digest()?.to_string(),
                    pushed_at: seconds(d.image_pushed_at()),
                    tags: d.image_tags().to_vec(),
                })
            }));
            match output.next_token() {
                Some(token) => next_token = Some(token.to_string()),
                None => return Ok(images),
            }
        }
    }

    async fn tag_image(&self, repository: &str, digest: &str, tag: &str) -> Result<Tagging> {
        // ECR API reference, PutImage: "Creates or updates the image manifest and tags associated
        // with an image"; tagging an existing image puts its own manifest (and media type) back
        // with the new tag.
        let id = ImageIdentifier::builder().image_digest(digest).build();
        let got = match self.client.batch_get_image().repository_name(repository).image_ids(id).send().await {
            Ok(got) => got,
            Err(error) => {
                return match error.as_service_error() {
                    Some(BatchGetImageError::RepositoryNotFoundException(_)) => Ok(Tagging::ImageGone),
                    _ => Err(classify("BatchGetImage", error)),
                }
            }
        };
        let Some(image) = got.images().first() else { return Ok(Tagging::ImageGone) };
        let Some(manifest) = image.image_manifest() else { return Ok(Tagging::ImageGone) };
        let mut put = self
            .client
            .put_image()
            .repository_name(repository)
            .image_manifest(manifest)
            .image_tag(tag)
            .image_digest(digest);
        if let Some(media_type) = image.image_manifest_media_type() {
            put = put.image_manifest_media_type(media_type);
        }
        match put.send().await {
            Ok(_) => Ok(Tagging::Tagged),
            Err(error) => match error.as_service_error() {
                Some(PutImageError::ImageAlreadyExistsException(_)) => Ok(Tagging::AlreadyTagged),
                _ => Err(classify("PutImage", error)),
            },
        }
    }

    async fn untag_image(&self, repository: &str, tag: &str) -> Result<()> {
        let id = ImageIdentifier::builder().image_tag(tag).build();
        match self.client.batch_delete_image().repository_name(repository).image_ids(id).send().await {
            // A tag that is not there answers a failure ImageNotFound in the output: nothing to do.
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(BatchDeleteImageError::RepositoryNotFoundException(_)) => Ok(()),
                _ => Err(classify("BatchDeleteImage", error)),
            },
        }
    }
}
