//! Brokers for tests: `EmbeddedBroker` runs in the test's own process (no Docker), and,
//! with the `testcontainers` cargo feature, `Ferrite` runs the `ferrite` image through
//! testcontainers. `records` builds record batches as producers send them.

mod embedded;
pub mod records;
#[cfg(feature = "testcontainers")]
mod container;

#[cfg(feature = "testcontainers")]
pub use container::{Ferrite, FerriteContainer};
pub use embedded::EmbeddedBroker;
