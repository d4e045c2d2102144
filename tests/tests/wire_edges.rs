//! The master at the edges of its wire: its port takes a connection only
//! once the files a client needs are written, and bytes that are not a
//! protobuf message are the sender's error (INVALID_ARGUMENT), on both
//! services.

use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::{Buf, BufMut};
use cdn_common::credential::Credential;
use cdn_common::tls::{client_tls, connect};
use cdn_tests::{Master, Proc, TEST_MASTER_YML, bin, free_port, join_token_file, wait_for};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

#[test]
fn the_port_takes_connections_only_once_the_join_token_is_written() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let data = dir.path().join("data");
        let config = dir.path().join("master.yml");
        std::fs::write(
            &config,
            format!(
                "grpc:\n  addr: 127.0.0.1:{port}\ndata_dir: {}\n{TEST_MASTER_YML}",
                data.display()
            ),
        )
        .unwrap();
        let _master = Proc::spawn(
            "masterd",
            Command::new(bin("masterd")).arg("-c").arg(&config),
            Stdio::null(),
            dir.path().join("masterd.log"),
        );
        // As an eager agent would: dial until the port answers.
        wait_for("the master's port to take a connection", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(
            join_token_file(&data).exists(),
            "the port was open before the join token was written"
        );
        assert!(cdn_tests::admin_credential(&data).exists());
    }
}

/// Sends a request body of raw bytes, reads nothing back.
#[derive(Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

#[test]
fn garbage_instead_of_a_message_is_invalid_argument_on_both_services() {
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start(&dir.path().join("m"), TEST_MASTER_YML, 0);
    let c = Credential::load(&master.credential()).unwrap().0;
    // Not a protobuf message: a field tag with wire type 7 (invalid).
    let garbage: Vec<u8> = vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x07, 0x01, 0x02];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tls = |identity| Some(client_tls(&c.ca, identity, "127.0.0.1"));
        // Enroll takes callers without a certificate: its body is read.
        let anon = connect(&master.addr.to_string(), tls(None), Duration::from_secs(10))
            .await
            .unwrap();
        // The admin API needs the admin's certificate before its body.
        let admin = connect(
            &master.admin_addr.to_string(),
            tls(Some((&c.cert, &c.key))),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        for (channel, path) in [
            (anon, "/cdn.v1.AgentService/Enroll"),
            (admin.clone(), "/cdn.v1.AdminService/ListNodes"),
            (admin, "/cdn.v1.AdminService/GetNode"),
        ] {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.unwrap();
            let e = grpc
                .unary(
                    tonic::Request::new(garbage.clone()),
                    tonic::codegen::http::uri::PathAndQuery::from_static(path),
                    RawCodec,
                )
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{path}: {e:?}");
            assert!(e.message().contains("malformed message"), "{path}: {e:?}");
        }
    });
    // And it keeps serving.
    let out = cdn_tests::ctl_at(&master.addr.to_string(), ["nodes", "list"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
