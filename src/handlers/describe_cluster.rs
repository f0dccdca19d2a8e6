//! DescribeCluster: the live brokers of the metadata image and the active controller.

use super::metadata::{CLUSTER_OPS_ALL, OPS_OMITTED};
use super::{str_bytes, Ctx, Outcome};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

pub async fn handle(ctx: &Ctx<'_>, req: DescribeClusterRequest) -> Outcome {
    let live = super::live_brokers::live_brokers(ctx);
    let controller = super::live_brokers::controller_id(ctx, &live);
    let brokers = live
        .iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    let resp = DescribeClusterResponse::default()
        .with_endpoint_type(if ctx.version >= 1 { req.endpoint_type.max(1) } else { 1 })
        .with_cluster_id(str_bytes(&ctx.state.logs.cluster_id))
        .with_controller_id(BrokerId(controller))
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations { CLUSTER_OPS_ALL } else { OPS_OMITTED })
        .with_brokers(brokers);
    ctx.respond(&resp)
}
