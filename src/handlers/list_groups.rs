//! ListGroups, with the states filter (v4+) and the types filter (v5+).

use super::{str_bytes, Ctx, Outcome};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

pub async fn handle(ctx: &Ctx<'_>, req: ListGroupsRequest) -> Outcome {
    let v = ctx.version;
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let groups = ctx
        .state
        .groups
        .list()
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.to_ascii_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&g.group_id)))
                .with_protocol_type(str_bytes(&g.protocol_type));
            if v >= 4 {
                l.group_state = str_bytes(g.state);
            }
            if v >= 5 {
                l.group_type = str_bytes(g.group_type);
            }
            l
        })
        .collect();
    ctx.respond(&ListGroupsResponse::default().with_groups(groups))
}
