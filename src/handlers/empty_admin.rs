//! DescribeClientQuotas and DescribeUserScramCredentials: no quotas are enforced and no
//! SASL users exist (yet), so both describe nothing — truthfully, without an error.

use super::{str_bytes, Ctx, Error, Outcome};
use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResult;
use kafka_protocol::messages::*;

pub async fn client_quotas(ctx: &Ctx<'_>, _req: DescribeClientQuotasRequest) -> Outcome {
    ctx.respond(&DescribeClientQuotasResponse::default().with_entries(Some(Vec::new())))
}

pub async fn scram_credentials(ctx: &Ctx<'_>, req: DescribeUserScramCredentialsRequest) -> Outcome {
    let results = req
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| {
            DescribeUserScramCredentialsResult::default()
                .with_user(u.name.clone())
                .with_error_code(Error::ResourceNotFound.code())
                .with_error_message(Some(str_bytes(&format!("user {} has no SCRAM credentials", u.name.as_str()))))
        })
        .collect();
    ctx.respond(&DescribeUserScramCredentialsResponse::default().with_results(results))
}
