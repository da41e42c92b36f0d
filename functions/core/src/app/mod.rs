//! The use cases each function runs, written against the ports so they test without a network.

pub mod announce;
pub mod approval;
pub mod check;
pub mod deploy;
pub mod hook;
pub mod lock;
pub mod notify;
pub mod plan;
pub mod reconcile;
pub mod release;
pub mod rollback;
pub mod settings;
pub mod summary;
pub mod watch;

#[cfg(test)]
mod protect_tests;
#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod release_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod watch_tests;
