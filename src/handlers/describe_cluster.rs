//! DescribeCluster: this node is the whole cluster, broker and controller.

use super::metadata::{CLUSTER_OPS_ALL, OPS_OMITTED};
use super::{str_bytes, Ctx, Outcome};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

pub async fn handle(ctx: &Ctx<'_>, req: DescribeClusterRequest) -> Outcome {
    let adv = ctx.state.advertised_for(&ctx.conn.listener);
    let node = ctx.node_id();
    let resp = DescribeClusterResponse::default()
        .with_endpoint_type(if ctx.version >= 1 { req.endpoint_type.max(1) } else { 1 })
        .with_cluster_id(str_bytes(&ctx.state.logs.cluster_id))
        .with_controller_id(BrokerId(node))
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations { CLUSTER_OPS_ALL } else { OPS_OMITTED })
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(node))
            .with_host(str_bytes(&adv.host))
            .with_port(adv.port as i32)]);
    ctx.respond(&resp)
}
