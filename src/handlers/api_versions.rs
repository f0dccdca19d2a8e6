//! ApiVersions: the versions of every API served. No tagged field is written with its
//! default value (librdkafka 2.0.2 cannot parse that in v3).

use super::{versions, Ctx, Error, Outcome};
use crate::response_frame::encode_response;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

/// The served APIs; ConsumerGroupHeartbeat only where KIP-848 groups are enabled
/// (`group.coordinator.rebalance.protocols`).
fn api_keys(consumer_protocol: bool) -> Vec<ApiVersion> {
    versions::SERVED
        .iter()
        .filter(|(k, _, _)| consumer_protocol || *k != ApiKey::ConsumerGroupHeartbeat)
        .map(|&(k, lo, hi)| ApiVersion::default().with_api_key(k as i16).with_min_version(lo).with_max_version(hi))
        .collect()
}

pub async fn handle(ctx: &Ctx<'_>, _req: ApiVersionsRequest) -> Outcome {
    let resp = ApiVersionsResponse::default()
        .with_api_keys(api_keys(ctx.state.groups.config().consumer_protocol))
        .with_finalized_features_epoch(-1);
    ctx.respond(&resp)
}

/// The answer to an ApiVersions request of a version we do not know: v0, with the error.
pub fn unsupported_version(correlation_id: i32, consumer_protocol: bool) -> Outcome {
    let resp = ApiVersionsResponse::default()
        .with_error_code(Error::UnsupportedVersion.code())
        .with_api_keys(api_keys(consumer_protocol))
        .with_finalized_features_epoch(-1);
    match encode_response(ApiKey::ApiVersions, 0, correlation_id, &resp) {
        Ok(frame) => Outcome::Respond(frame),
        Err(_) => Outcome::Close("response encoding failed"),
    }
}
