//! The testcontainers module: the `ferrite` Docker image as a throwaway broker.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let kafka = ferrite::testing::Ferrite::default().start().await?;
//! let bootstrap = kafka.bootstrap(); // hand to rdkafka's bootstrap.servers
//! # Ok(()) }
//! ```
//!
//! The image is built by `docker/build` (no registry is needed). The container's port 9092
//! is published on a free host port chosen before the start, so the broker can advertise
//! the address clients will actually use; readiness is the broker's own "serving" line,
//! written once its listeners are bound.

use std::borrow::Cow;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, Image, ImageExt, TestcontainersError};

const PORT: u16 = 9092;

/// A broker to start: the image and any Kafka configuration keys.
#[derive(Debug, Clone)]
pub struct Ferrite {
    name: String,
    tag: String,
    env: Vec<(String, String)>,
}

impl Default for Ferrite {
    fn default() -> Self {
        Ferrite { name: "ferrite".into(), tag: "latest".into(), env: Vec::new() }
    }
}

/// A running broker; the container is removed when this is dropped.
pub struct FerriteContainer {
    container: ContainerAsync<Ferrite>,
    bootstrap: String,
}

impl FerriteContainer {
    /// `host:port` for a client's `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn container(&self) -> &ContainerAsync<Ferrite> {
        &self.container
    }
}

/// Kafka images' convention: `log.segment.bytes` → `KAFKA_LOG_SEGMENT_BYTES`.
fn env_name(key: &str) -> String {
    let mut out = String::from("KAFKA_");
    for c in key.chars() {
        match c {
            '.' => out.push('_'),
            '_' => out.push_str("__"),
            '-' => out.push_str("___"),
            c => out.push(c.to_ascii_uppercase()),
        }
    }
    out
}

impl Ferrite {
    /// Another image or tag than `ferrite:latest`.
    pub fn with_image(mut self, name: &str, tag: &str) -> Self {
        self.name = name.into();
        self.tag = tag.into();
        self
    }

    /// Sets a Kafka configuration key, e.g. `("num.partitions", "3")`.
    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.env.push((env_name(key), value.into()));
        self
    }

    /// Starts the container and waits until the broker serves.
    pub async fn start(mut self) -> Result<FerriteContainer, TestcontainersError> {
        let host_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| TestcontainersError::other(format!("no free local port: {e}")))?
            .port();
        let bootstrap = format!("127.0.0.1:{host_port}");
        self.env.push(("KAFKA_ADVERTISED_LISTENERS".into(), format!("PLAINTEXT://{bootstrap}")));
        self.env.push(("FERRITE_LOG".into(), "warn,ferrite=info".into()));
        let container = AsyncRunner::start(self.with_mapped_port(host_port, ContainerPort::Tcp(PORT))).await?;
        Ok(FerriteContainer { container, bootstrap })
    }
}

impl Image for Ferrite {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![WaitFor::message_on_stderr("ferrite is serving")]
    }

    fn env_vars(&self) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &[ContainerPort::Tcp(PORT)]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_become_kafka_image_variables() {
        assert_eq!(super::env_name("log.segment.bytes"), "KAFKA_LOG_SEGMENT_BYTES");
        assert_eq!(super::env_name("a_b-c"), "KAFKA_A__B___C");
    }
}
