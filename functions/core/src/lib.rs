//! deckhand's core: the deployment domain (pure), the use cases each Lambda function runs, the
//! ports they need, and the AWS adapters implementing those ports.

pub mod app;
pub mod aws;
pub mod domain;
pub mod error;
pub mod ports;
pub mod runtime;

pub use error::{DeckhandError, Result};

#[cfg(test)]
pub(crate) mod testing;
