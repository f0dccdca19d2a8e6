//! Requests for APIs Ferrite does not serve (yet): they are not advertised, but a client
//! that sends one anyway gets the API's own response carrying UNSUPPORTED_VERSION, not a
//! dropped connection, wherever that response has an error code to carry it.

use super::{Error, Outcome};
use crate::response_frame::encode_response;
use kafka_protocol::messages::*;

fn frame<T: kafka_protocol::protocol::Encodable>(api_key: ApiKey, version: i16, header: &RequestHeader, body: &T) -> Outcome {
    match encode_response(api_key, version, header.correlation_id, body) {
        Ok(f) => Outcome::Respond(f),
        Err(_) => Outcome::Close("request for an API that is not served"),
    }
}

pub fn respond(api_key: ApiKey, version: i16, header: &RequestHeader) -> Outcome {
    if !(api_key.valid_versions().min..=api_key.valid_versions().max).contains(&version) {
        return Outcome::Close("unsupported version of an API that is not served");
    }
    let code = Error::UnsupportedVersion.code();
    macro_rules! top_level {
        ($($key:ident => $resp:ty),* $(,)?) => {
            match api_key {
                $(ApiKey::$key => return frame(api_key, version, header, &<$resp>::default().with_error_code(code)),)*
                _ => {}
            }
        };
    }
    top_level!(
        SaslHandshake => SaslHandshakeResponse,
        SaslAuthenticate => SaslAuthenticateResponse,
        AddOffsetsToTxn => AddOffsetsToTxnResponse,
        EndTxn => EndTxnResponse,
        DescribeAcls => DescribeAclsResponse,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatResponse,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsResponse,
        PushTelemetry => PushTelemetryResponse,
        ListTransactions => ListTransactionsResponse,
    );
    Outcome::Close("request for an API that is not served")
}
