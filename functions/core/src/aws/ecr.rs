//! ECR adapter.

use super::{classify, seconds};
use crate::domain::registry::split_key;
use crate::domain::snapshot::ImageDetail;
use crate::error::Result;
use crate::ports::{ImageSelector, Registry, Tagging};
use aws_sdk_ecr::operation::batch_delete_image::BatchDeleteImageError;
use aws_sdk_ecr::operation::batch_get_image::BatchGetImageError;
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;
use aws_sdk_ecr::operation::get_repository_policy::GetRepositoryPolicyError;
use aws_sdk_ecr::operation::put_image::PutImageError;
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageIdentifier, TagStatus};
use aws_sdk_ecr::Client;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct EcrAdapter {
    config: aws_config::SdkConfig,
    client: Client,
    /// Clients of other Regions' registries, made on first use.
    regional: Mutex<HashMap<String, Client>>,
}

impl EcrAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { config: config.clone(), client: Client::new(config), regional: Mutex::new(HashMap::new()) }
    }

    /// Where a repository key's calls go: the client of the registry's Region, the registry's
    /// account as `registryId` (None: the caller's own), and the repository's name.
    fn locate<'k>(&self, key: &'k str) -> (Client, Option<String>, &'k str) {
        let (registry, name) = split_key(key);
        let Some(registry) = registry else { return (self.client.clone(), None, name) };
        let same_region = self.config.region().is_some_and(|r| r.as_ref() == registry.region);
        let client = if same_region {
            self.client.clone()
        } else {
            let mut clients = self.regional.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            clients
                .entry(registry.region.clone())
                .or_insert_with(|| {
                    let config = aws_sdk_ecr::config::Builder::from(&self.config)
                        .region(aws_config::Region::new(registry.region.clone()))
                        .build();
                    Client::from_conf(config)
                })
                .clone()
        };
        (client, Some(registry.account), name)
    }
}

impl EcrAdapter {
    /// The repository's policy text (GetRepositoryPolicy), None when it has none. For `deckhand
    /// doctor`: whether deckhand's account may read another account's repository.
    pub async fn repository_policy(&self, repository: &str) -> Result<Option<String>> {
        let (client, registry_id, name) = self.locate(repository);
        match client.get_repository_policy().set_registry_id(registry_id).repository_name(name).send().await {
            Ok(output) => Ok(output.policy_text().map(str::to_string)),
            Err(error) => match error.as_service_error() {
                Some(GetRepositoryPolicyError::RepositoryPolicyNotFoundException(_)) => Ok(None),
                _ => Err(classify("GetRepositoryPolicy", error)),
            },
        }
    }

    /// The repository's lifecycle policy text (GetLifecyclePolicy), None when it has none (or
    /// the repository does not exist). For `deckhand doctor`.
    pub async fn lifecycle_policy(&self, repository: &str) -> Result<Option<String>> {
        let (client, registry_id, name) = self.locate(repository);
        match client.get_lifecycle_policy().set_registry_id(registry_id).repository_name(name).send().await {
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
        let (client, registry_id, name) = self.locate(repository);
        match client.describe_images().set_registry_id(registry_id).repository_name(name).image_ids(id).send().await {
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
        let (client, registry_id, name) = self.locate(repository);
        let mut images = Vec::new();
        let mut next_token = None;
        loop {
            let request = client
                .describe_images()
                .set_registry_id(registry_id.clone())
                .repository_name(name)
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
        let (client, registry_id, name) = self.locate(repository);
        let id = ImageIdentifier::builder().image_digest(digest).build();
        let batch = client.batch_get_image().set_registry_id(registry_id.clone()).repository_name(name).image_ids(id);
        let got = match batch.send().await {
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
        let mut put = client
            .put_image()
            .set_registry_id(registry_id)
            .repository_name(name)
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
        let (client, registry_id, name) = self.locate(repository);
        let id = ImageIdentifier::builder().image_tag(tag).build();
        match client.batch_delete_image().set_registry_id(registry_id).repository_name(name).image_ids(id).send().await
        {
            // A tag that is not there answers a failure ImageNotFound in the output: nothing to do.
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(BatchDeleteImageError::RepositoryNotFoundException(_)) => Ok(()),
                _ => Err(classify("BatchDeleteImage", error)),
            },
        }
    }
}
