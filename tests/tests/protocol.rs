//! The agent protocol as PROTOCOL.md writes it, held to by a real masterd
//! against a "foreign" agent: a plain tonic client generated from the
//! .proto files with gRPC's default settings (4 MiB receive limit, no
//! raised limits, no agentd code), as someone writing an agent in another
//! language would have it.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use cdn_proto::v1::agent_service_client::AgentServiceClient;
use cdn_proto::v1::{
    ApplyConfig, CommandRequest, CommandResponse, ConfigAck, HeartbeatRequest, HeartbeatResponse,
    PushConfigRequest, RegisterRequest, RegisterResponse, StreamHello, command_request,
    command_response,
};
use cdn_tests::{Master, TEST_MASTER_YML, ctl_at, merge_yaml};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

/// gRPC's default receive limit, which the foreign client keeps.
const GRPC_DEFAULT_LIMIT: usize = 4 * 1024 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An insecure master (plain HTTP/2, no certificates: the protocol is the
/// same) with `extra` master.yml.
fn master(dir: &Path, extra: &str) -> Master {
    Master::start_with_flags(dir, &merge_yaml(TEST_MASTER_YML, extra), 0, &["--insecure"])
}

/// The foreign agent heartbeats only when a test says so: the master
/// gives it 30 s.
const SLOW_HEARTBEATS: &str = "heartbeat:\n  interval: 10s\n  offline_threshold: 3\n";

/// A foreign agent's session.
struct Foreign {
    client: AgentServiceClient<Channel>,
    node: String,
    session: u64,
    reply: RegisterResponse,
}

impl Foreign {
    async fn register(master: &Master, node: &str, gzip: bool) -> Self {
        let channel = Channel::from_shared(format!("http://{}", master.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = AgentServiceClient::new(channel);
        if gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let reply = client
            .register(RegisterRequest {
                node_id: node.into(),
                agent_version: "foreign/1".into(),
                instance_id: format!("{node}-instance"),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("register {node}: {e}"))
            .into_inner();
        assert!(reply.success);
        Self {
            client,
            node: node.into(),
            session: reply.session_id,
            reply,
        }
    }

    /// Opens the command stream with its hello; the sender carries acks.
    async fn open_stream(&mut self) -> (mpsc::Sender<CommandRequest>, Streaming<CommandResponse>) {
        let (tx, rx) = mpsc::channel(16);
        tx.send(self.message(0, command_request::Body::Hello(StreamHello {})))
            .await
            .unwrap();
        let inbound = self
            .client
            .execute_command(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        (tx, inbound)
    }

    fn message(&self, command_id: u64, body: command_request::Body) -> CommandRequest {
        CommandRequest {
            node_id: self.node.clone(),
            session_id: self.session,
            command_id,
            body: Some(body),
        }
    }

    async fn heartbeat(&mut self, applied: &str) -> Result<HeartbeatResponse, tonic::Status> {
        self.client
            .heartbeat(HeartbeatRequest {
                node_id: self.node.clone(),
                session_id: self.session,
                status: "online".into(),
                config_version: applied.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Reads ApplyConfig pieces until one version is whole; returns it with
/// its first piece's metadata and the largest message seen.
async fn receive_version(inbound: &mut Streaming<CommandResponse>) -> (ApplyConfig, Bytes, usize) {
    let mut content = Vec::new();
    let mut first: Option<ApplyConfig> = None;
    let mut largest = 0;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), inbound.next())
            .await
            .expect("a config within 30 s")
            .expect("stream open")
            .expect("no error");
        largest = largest.max(msg.encoded_len());
        let Some(command_response::Body::ApplyConfig(a)) = msg.body else {
            continue;
        };
        assert_eq!(
            msg.command_id.to_string(),
            a.version,
            "command_id is the version"
        );
        assert_eq!(a.offset, content.len() as u64, "pieces come in order");
        content.extend_from_slice(&a.content);
        let done = content.len() as u64 == a.wire_size;
        first.get_or_insert(a);
        if done {
            return (first.unwrap(), Bytes::from(content), largest);
        }
    }
}

/// A YAML config of about `bytes` that compression would not shrink much.
fn big_config(bytes: usize) -> String {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut s = String::with_capacity(bytes + 64);
    let mut i = 0;
    while s.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("k{i}: \"{x:016x}{:016x}\"\n", x.rotate_left(29)));
        i += 1;
    }
    s
}

#[test]
fn a_default_grpc_client_gets_a_6_mib_config_in_chunks_and_the_sizes_at_registration() {
    let dir = tempfile::tempdir().unwrap();
    let m = master(
        dir.path(),
        &format!("compression:\n  algorithm: none\n{SLOW_HEARTBEATS}"),
    );
    let file = dir.path().join("big.yml");
    let config = big_config(6 * 1024 * 1024);
    std::fs::write(&file, &config).unwrap();
    let rt = runtime();
    rt.block_on(async {
        let mut agent = Foreign::register(&m, "ext-1", false).await;
        let limits = agent.reply.limits.expect("limits at registration");
        assert!(
            limits.max_message_to_agent_bytes < GRPC_DEFAULT_LIMIT as u64,
            "{limits:?}"
        );
        assert_eq!(limits.config_chunk_bytes, 1024 * 1024);
        assert_eq!(limits.max_config_bytes, 16 * 1024 * 1024);
        assert!(limits.max_message_from_agent_bytes >= limits.max_config_bytes);
        assert_eq!(agent.reply.desired_config_version, "");
        let (acks, mut inbound) = agent.open_stream().await;

        let push = ctl_at(
            &m.addr.to_string(),
            ["config", "push", file.to_str().unwrap(), "--no-wait"],
        );
        assert_eq!(push.code, Some(0), "{}", push.stderr);
        let (apply, content, largest) = receive_version(&mut inbound).await;
        assert_eq!(apply.encoding, "");
        assert_eq!(apply.wire_size, config.len() as u64);
        assert_eq!(&content[..], config.as_bytes(), "pieces add up to the file");
        assert_eq!(cdn_common::tls::sha256_hex(&content), apply.hash);
        assert!(
            largest <= limits.max_message_to_agent_bytes as usize,
            "largest message {largest} > announced {}",
            limits.max_message_to_agent_bytes
        );

        // Sent on the stream, unanswered: the heartbeat reply names it but
        // does not ask for a second copy.
        let hb = agent.heartbeat("").await.unwrap();
        assert_eq!(hb.config_version, apply.version);
        assert!(!hb.config_updated, "desired config offered twice: {hb:?}");

        // Fetched with PushConfig instead, chunk by chunk, it is the same.
        let mut fetched = Vec::new();
        loop {
            let r = agent
                .client
                .push_config(PushConfigRequest {
                    node_id: agent.node.clone(),
                    session_id: agent.session,
                    version: apply.version.clone(),
                    offset: fetched.len() as u64,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(r.content.len() <= 1024 * 1024);
            assert_eq!(
                (r.hash.as_str(), r.wire_size),
                (apply.hash.as_str(), apply.wire_size)
            );
            fetched.extend_from_slice(&r.content);
            if fetched.len() as u64 == r.wire_size {
                break;
            }
        }
        assert_eq!(&fetched[..], config.as_bytes());
        let past = agent
            .client
            .push_config(PushConfigRequest {
                node_id: agent.node.clone(),
                session_id: agent.session,
                version: apply.version.clone(),
                offset: apply.wire_size + 1,
            })
            .await
            .unwrap_err();
        assert_eq!(past.code(), Code::InvalidArgument, "{past}");

        // Acknowledged: the node runs it.
        let version: u64 = apply.version.parse().unwrap();
        acks.send(agent.message(
            version,
            command_request::Body::ConfigAck(ConfigAck {
                version: apply.version.clone(),
                hash: apply.hash.clone(),
                success: true,
                ..Default::default()
            }),
        ))
        .await
        .unwrap();
        let hb = agent.heartbeat(&apply.version).await.unwrap();
        assert!(!hb.config_updated);
    });
    let status = ctl_at(&m.addr.to_string(), ["config", "status", "-o", "json"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(
        status.stdout.contains("\"applied_version\": 1"),
        "{}",
        status.stdout
    );
}

#[test]
fn desired_config_is_sent_once_on_join_and_a_failed_version_is_not_offered_every_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let m = master(dir.path(), SLOW_HEARTBEATS);
    let file = dir.path().join("edge.yml");
    std::fs::write(&file, "cache: 10g\n").unwrap();
    // Stored before the node exists: a fleet-wide version it gets on join.
    let push = ctl_at(
        &m.addr.to_string(),
        ["config", "push", file.to_str().unwrap()],
    );
    assert_eq!(push.code, Some(0), "{}", push.stderr);
    let rt = runtime();
    rt.block_on(async {
        let mut agent = Foreign::register(&m, "ext-2", true).await;
        assert_eq!(
            agent.reply.desired_config_version, "1",
            "told at registration"
        );
        let (acks, mut inbound) = agent.open_stream().await;
        let (apply, content, _) = receive_version(&mut inbound).await;
        assert_eq!(
            (apply.version.as_str(), &content[..]),
            ("1", &b"cache: 10g\n"[..])
        );
        // While it is on its way, heartbeats do not ask for a fetch.
        for _ in 0..3 {
            let hb = agent.heartbeat("").await.unwrap();
            assert!(!hb.config_updated, "offered twice on join: {hb:?}");
            assert_eq!(hb.config_version, "1");
        }
        // It fails here; for the next seconds no heartbeat asks for it
        // again (the first retry is after 30 s).
        acks.send(agent.message(
            1,
            command_request::Body::ConfigAck(ConfigAck {
                version: "1".into(),
                hash: apply.hash.clone(),
                success: false,
                error: "reload failed: exit 1".into(),
                ..Default::default()
            }),
        ))
        .await
        .unwrap();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let hb = agent.heartbeat("").await.unwrap();
            assert!(!hb.config_updated, "failed version re-offered: {hb:?}");
        }
        let addr = m.addr.to_string();
        let ctl = |args: Vec<String>| {
            let addr = addr.clone();
            tokio::task::spawn_blocking(move || ctl_at(&addr, args))
        };
        let status = ctl(vec![
            "config".into(),
            "status".into(),
            "-o".into(),
            "json".into(),
        ])
        .await
        .unwrap();
        assert!(
            status.stdout.contains("reload failed: exit 1"),
            "{}",
            status.stdout
        );
        // A new push is sent at once.
        std::fs::write(&file, "cache: 20g\n").unwrap();
        let push = ctl(vec![
            "config".into(),
            "push".into(),
            file.to_str().unwrap().into(),
            "--no-wait".into(),
        ])
        .await
        .unwrap();
        assert_eq!(push.code, Some(0), "{}", push.stderr);
        let (apply, content, _) = receive_version(&mut inbound).await;
        assert_eq!(
            (apply.version.as_str(), &content[..]),
            ("2", &b"cache: 20g\n"[..])
        );
    });
}

#[test]
fn a_session_whose_stream_never_opened_is_told_why_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    // The stream must open within heartbeat.timeout (1 s here).
    let m = master(dir.path(), "heartbeat:\n  timeout: 1s\n");
    let rt = runtime();
    let err = rt.block_on(async {
        let mut agent = Foreign::register(&m, "ext-3", false).await;
        assert_eq!(agent.reply.stream_open_timeout_ms, 1000);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match agent.heartbeat("").await {
                Ok(_) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "session never ended"
                ),
                Err(e) => break e,
            }
        }
    });
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(
        err.message().contains("command stream not opened in time")
            && err.message().contains("register again"),
        "{err}"
    );
}

#[test]
fn the_command_stream_must_open_with_a_hello_and_bad_offsets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = master(dir.path(), "");
    let rt = runtime();
    rt.block_on(async {
        let mut agent = Foreign::register(&m, "ext-4", false).await;
        let (tx, rx) = mpsc::channel(4);
        let ack = agent.message(
            1,
            command_request::Body::ConfigAck(ConfigAck {
                version: "1".into(),
                ..Default::default()
            }),
        );
        tx.send(ack).await.unwrap();
        let e = agent
            .client
            .execute_command(ReceiverStream::new(rx))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("must be a hello"), "{e}");
        // Fetching a version that is not the node's desired one is refused.
        let e = agent
            .client
            .push_config(PushConfigRequest {
                node_id: agent.node.clone(),
                session_id: agent.session,
                version: "7".into(),
                offset: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        // A stale session id is told it is not current.
        agent.session += 1000;
        let e = agent.heartbeat("").await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    });
}
