//! The deployment domain: plain Rust, no network.

pub mod announce;
pub mod approval;
pub mod events;
pub mod gates;
pub mod health;
pub mod hook;
pub mod image;
pub mod ledger;
pub mod model;
pub mod protect;
pub mod reconcile;
pub mod registry;
pub mod release;
pub mod request;
pub mod snapshot;
pub mod status;
pub mod taskdef;
pub mod track;
pub mod wake;
