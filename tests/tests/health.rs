//! The standard ways to ask a master how it is, end to end against real
//! binaries, with the tonic project's own client crates: gRPC health
//! checking (`grpc.health.v1.Health`, Check and Watch) on the agent and
//! admin ports without a client certificate, server reflection (v1 and
//! v1alpha) with one, `/healthz` and `/readyz` on the metrics port; a
//! stopping master and a standby on etcd say NOT_SERVING, and a Watch
//! follows a failover both ways.

use std::net::SocketAddr;
use std::time::Duration;

use cdn_common::credential::Credential;
use cdn_common::tls::{client_tls, connect};
use cdn_proto::v1::admin_service_client::AdminServiceClient;
use cdn_proto::v1::agent_service_client::AgentServiceClient;
use cdn_proto::v1::{ListNodesRequest, RegisterRequest};
use cdn_tests::{Master, TEST_MASTER_YML, WAIT, http_get_with, merge_yaml, wait_for};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

const SERVING: i32 = ServingStatus::Serving as i32;
const NOT_SERVING: i32 = ServingStatus::NotServing as i32;

/// A master with TLS (the default), a separate admin port and metrics.
const SPLIT_PORTS_YML: &str = "admin:\n  addr: 127.0.0.1:0\nmetrics:\n  addr: 127.0.0.1:0\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn credential(master: &Master) -> Credential {
    Credential::load(&master.credential()).unwrap().0
}

/// A TLS channel to `addr` trusting the CA of `ca_of` (masters on one
/// etcd share it), presenting `identity` (certificate, key) if any.
async fn tls_channel(ca_of: &Master, addr: SocketAddr, identity: Option<(&str, &str)>) -> Channel {
    let c = credential(ca_of);
    connect(
        &addr.to_string(),
        Some(client_tls(&c.ca, identity, "127.0.0.1")),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

/// Health Check of `service` on `channel`.
async fn check(channel: &Channel, service: &str) -> Result<i32, tonic::Status> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// Health Watch of `service`: the open stream.
async fn watch(channel: &Channel, service: &str) -> tonic::Streaming<HealthCheckResponse> {
    HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next status a Watch stream sends (None: it ended), within [`WAIT`].
async fn next_status(stream: &mut tonic::Streaming<HealthCheckResponse>) -> Option<i32> {
    match tokio::time::timeout(WAIT, stream.message()).await {
        Ok(Ok(m)) => m.map(|m| m.status),
        Ok(Err(status)) => panic!("Watch failed: {status:?}"),
        Err(_) => panic!("no Watch message within {WAIT:?}"),
    }
}

/// One reflection request over v1; the answer or the refusal.
async fn reflect(
    channel: &Channel,
    request: MessageRequest,
) -> Result<ServerReflectionResponse, tonic::Status> {
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await?
        .into_inner();
    answers
        .message()
        .await?
        .ok_or_else(|| tonic::Status::unknown("reflection stream ended without an answer"))
}

/// The services reflection lists on `channel`, sorted.
async fn listed(channel: &Channel) -> Result<Vec<String>, tonic::Status> {
    match reflect(channel, MessageRequest::ListServices(String::new()))
        .await?
        .message_response
    {
        Some(MessageResponse::ListServicesResponse(l)) => {
            let mut names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
            names.sort();
            Ok(names)
        }
        other => panic!("not a service list: {other:?}"),
    }
}

#[test]
fn health_checks_answer_without_a_certificate_on_both_ports_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{TEST_MASTER_YML}{SPLIT_PORTS_YML}");
    let master = Master::start(&dir.path().join("m"), &yaml, 0);
    assert_ne!(master.addr, master.admin_addr);
    runtime().block_on(async {
        let agent_port = tls_channel(&master, master.addr, None).await;
        let admin_port = tls_channel(&master, master.admin_addr, None).await;
        // Each port answers for the overall health and the API it serves.
        assert_eq!(check(&agent_port, "").await.unwrap(), SERVING);
        assert_eq!(
            check(&agent_port, "cdn.v1.AgentService").await.unwrap(),
            SERVING
        );
        assert_eq!(check(&admin_port, "").await.unwrap(), SERVING);
        assert_eq!(
            check(&admin_port, "cdn.v1.AdminService").await.unwrap(),
            SERVING
        );
        // A service a port does not serve, or none at all, is NOT_FOUND.
        let e = check(&agent_port, "cdn.v1.AdminService").await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        assert!(e.message().contains("cdn.v1.AgentService"), "{e:?}");
        let e = check(&admin_port, "no.such.Service").await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        // Watch of an unknown service says SERVICE_UNKNOWN, as the
        // protocol asks, and stays open.
        let mut unknown = watch(&admin_port, "no.such.Service").await;
        assert_eq!(
            next_status(&mut unknown).await,
            Some(ServingStatus::ServiceUnknown as i32)
        );
        // A health request is a service name: a large one is refused
        // before it is read, and the master carries on.
        let e = check(&agent_port, &"x".repeat(4096)).await.unwrap_err();
        assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
        assert_eq!(check(&agent_port, "").await.unwrap(), SERVING);

        // Nothing else opens without a certificate: not the agent API,
        // not the admin API, not reflection.
        let e = AgentServiceClient::new(agent_port.clone())
            .register(RegisterRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        let e = AdminServiceClient::new(admin_port.clone())
            .list_nodes(ListNodesRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        for port in [&agent_port, &admin_port] {
            let e = listed(port).await.unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        }
    });

    // The metrics port: alive, ready, and nothing else at other paths.
    let metrics = master.metrics_addr.expect("metrics address");
    let healthz = http_get_with(metrics, "/healthz", &[]).expect("healthz answers");
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));
    let readyz = http_get_with(metrics, "/readyz", &[]).expect("readyz answers");
    assert_eq!((readyz.status, readyz.body.as_str()), (200, "ok\n"));
    let missing = http_get_with(metrics, "/nope", &[]).expect("answers");
    assert_eq!(missing.status, 404);
}

#[test]
fn reflection_lists_each_ports_services_for_a_known_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{TEST_MASTER_YML}{SPLIT_PORTS_YML}");
    let master = Master::start(&dir.path().join("m"), &yaml, 0);
    let viewer = Credential::load(&master.add_user("vera", "viewer"))
        .unwrap()
        .0;
    runtime().block_on(async {
        let id = Some((viewer.cert.as_str(), viewer.key.as_str()));
        let agent_port = tls_channel(&master, master.addr, id).await;
        let admin_port = tls_channel(&master, master.admin_addr, id).await;
        let common = [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ];
        let with = |api: &str| {
            let mut v: Vec<String> = std::iter::once(api)
                .chain(common)
                .map(String::from)
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            listed(&agent_port).await.unwrap(),
            with("cdn.v1.AgentService")
        );
        assert_eq!(
            listed(&admin_port).await.unwrap(),
            with("cdn.v1.AdminService")
        );

        // `grpcurl describe`: the file holding a service, with its
        // comments, and what it imports.
        let answer = reflect(
            &admin_port,
            MessageRequest::FileContainingSymbol("cdn.v1.AdminService".into()),
        )
        .await
        .unwrap();
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("no file descriptor: {answer:?}");
        };
        let admin =
            prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
                .unwrap();
        assert_eq!(admin.name(), "cdn/v1/admin.proto");
        assert!(admin.dependency.iter().any(|d| d == "cdn/v1/agent.proto"));
        let comments: String = admin
            .source_code_info
            .iter()
            .flat_map(|i| &i.location)
            .map(|l| l.leading_comments().to_string())
            .collect();
        assert!(!comments.trim().is_empty(), "comments are served");
        let e = reflect(
            &admin_port,
            MessageRequest::FileContainingSymbol("etcdserverpb.KV".into()),
        )
        .await;
        let e = match e {
            Err(e) => e,
            Ok(r) => match r.message_response {
                Some(MessageResponse::ErrorResponse(e)) => {
                    tonic::Status::new(Code::from_i32(e.error_code), e.error_message)
                }
                other => panic!("etcd's schema must not be served: {other:?}"),
            },
        };
        assert_eq!(e.code(), Code::NotFound, "{e:?}");

        // v1alpha, for older grpcurl and tools.
        use tonic_reflection::pb::v1alpha as alpha;
        let req = alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        };
        let answer = alpha::server_reflection_client::ServerReflectionClient::new(agent_port)
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner()
            .message()
            .await
            .unwrap()
            .unwrap();
        let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(l)) =
            answer.message_response
        else {
            panic!("not a service list: {answer:?}");
        };
        assert!(l.service.iter().any(|s| s.name == "cdn.v1.AgentService"));
    });
}

#[test]
fn a_stopping_master_says_not_serving_to_its_watchers_before_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{TEST_MASTER_YML}{SPLIT_PORTS_YML}");
    let mut master = Master::start(&dir.path().join("m"), &yaml, 0);
    runtime().block_on(async {
        let agent_port = tls_channel(&master, master.addr, None).await;
        let admin_port = tls_channel(&master, master.admin_addr, None).await;
        let mut overall = watch(&agent_port, "").await;
        let mut admin = watch(&admin_port, "cdn.v1.AdminService").await;
        assert_eq!(next_status(&mut overall).await, Some(SERVING));
        assert_eq!(next_status(&mut admin).await, Some(SERVING));
        master.signal("TERM");
        assert_eq!(next_status(&mut overall).await, Some(NOT_SERVING));
        assert_eq!(next_status(&mut admin).await, Some(NOT_SERVING));
        // Then the streams end, so they do not hold the drain open.
        assert_eq!(next_status(&mut overall).await, None);
        assert_eq!(next_status(&mut admin).await, None);
    });
    assert_eq!(master.wait_exit(), Some(0), "{}", master.log_text());
}

#[test]
fn an_insecure_master_answers_plaintext_health_checks() {
    // What a Kubernetes `grpc:` probe speaks (no TLS).
    let dir = tempfile::tempdir().unwrap();
    let master =
        Master::start_with_flags(&dir.path().join("m"), TEST_MASTER_YML, 0, &["--insecure"]);
    runtime().block_on(async {
        let channel = connect(&master.addr.to_string(), None, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(check(&channel, "").await.unwrap(), SERVING);
        assert_eq!(
            check(&channel, "cdn.v1.AdminService").await.unwrap(),
            SERVING
        );
    });
}

/// `/readyz` of `master`: status and body.
fn readyz(master: &Master) -> (u16, String) {
    let a = http_get_with(master.metrics_addr.expect("metrics"), "/readyz", &[])
        .expect("readyz answers");
    (a.status, a.body)
}

#[test]
fn a_standby_says_not_serving_and_watches_follow_a_failover_both_ways() {
    let cluster = cdn_tests::require_etcd!();
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let extra = format!("{}{SPLIT_PORTS_YML}", cluster.store_yml(name));
        Master::start(
            &dir.path().join(name),
            &merge_yaml(TEST_MASTER_YML, &extra),
            0,
        )
    };
    let m1 = start("m1");
    wait_for("m1 leads", || (readyz(&m1).0 == 200).then_some(()));
    let m2 = start("m2");
    // The standby is alive, not ready, and says who leads.
    let healthz = http_get_with(m2.metrics_addr.unwrap(), "/healthz", &[]).unwrap();
    assert_eq!(healthz.status, 200);
    let (status, body) = wait_for("m2 names the leader", || {
        let r = readyz(&m2);
        r.1.contains("the leader is at").then_some(r)
    });
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: "), "{body}");
    assert!(body.contains(&m1.admin_addr.port().to_string()), "{body}");

    runtime().block_on(async {
        let on_m1 = tls_channel(&m1, m1.addr, None).await;
        // The standby wrote no credential: the CA is m1's, shared.
        let on_m2 = tls_channel(&m1, m2.addr, None).await;
        let on_m2_admin = tls_channel(&m1, m2.admin_addr, None).await;
        assert_eq!(check(&on_m1, "cdn.v1.AgentService").await.unwrap(), SERVING);
        assert_eq!(check(&on_m2, "").await.unwrap(), NOT_SERVING);
        assert_eq!(
            check(&on_m2_admin, "cdn.v1.AdminService").await.unwrap(),
            NOT_SERVING
        );
        // Calls other than health checks are still sent to the leader.
        let e = AdminServiceClient::new(on_m2_admin.clone())
            .list_nodes(ListNodesRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");

        let mut watch_m1 = watch(&on_m1, "").await;
        let mut watch_m2 = watch(&on_m2, "cdn.v1.AgentService").await;
        assert_eq!(next_status(&mut watch_m1).await, Some(SERVING));
        assert_eq!(next_status(&mut watch_m2).await, Some(NOT_SERVING));
        // The leader pauses: its lease runs out, m2 leads, and the Watch
        // opened on the standby says so.
        m1.signal("STOP");
        assert_eq!(next_status(&mut watch_m2).await, Some(SERVING));
        // The old leader wakes up deposed: its Watch says NOT_SERVING.
        m1.signal("CONT");
        assert_eq!(next_status(&mut watch_m1).await, Some(NOT_SERVING));
    });
    wait_for("m2 ready", || (readyz(&m2).0 == 200).then_some(()));
    let (status, body) = wait_for("m1 names the new leader", || {
        let r = readyz(&m1);
        r.1.contains("the leader is at").then_some(r)
    });
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&m2.admin_addr.port().to_string()), "{body}");
    drop(m1);
}
