//! DeleteGroups: groups without members, with their committed offsets.

use super::{code, Ctx, Outcome};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

pub async fn handle(ctx: &Ctx<'_>, req: DeleteGroupsRequest) -> Outcome {
    let mut results = Vec::new();
    for id in req.groups_names {
        let e = ctx.state.groups.delete_group(&id).await;
        results.push(DeletableGroupResult::default().with_group_id(id).with_error_code(code(e)));
    }
    ctx.respond(&DeleteGroupsResponse::default().with_results(results))
}
