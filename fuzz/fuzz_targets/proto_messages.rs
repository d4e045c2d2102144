//! Every request and response message of AgentService and AdminService
//! (the first byte picks the type, the rest is the encoded message):
//! decoding never panics, and what decodes encodes to bytes that decode
//! to the same message. The version strings the messages carry are parsed
//! as the master and the agents parse them.
#![no_main]

use cdn_proto::v1::*;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Decodes `bytes` as `M`, then checks the round trip: the message decoded
/// again equals it, or (a float that is NaN is not equal to itself) encodes
/// to the same bytes. Neither alone: a map field encodes in any order.
fn check<M: Message + Default + PartialEq>(bytes: &[u8]) {
    if let Ok(m) = M::decode(bytes) {
        let encoded = m.encode_to_vec();
        let again = M::decode(encoded.as_slice()).expect("re-encoded message decodes");
        assert!(
            again == m || again.encode_to_vec() == encoded,
            "round trip changed the message"
        );
    }
}

macro_rules! messages {
    ($($m:ident),* $(,)?) => {
        const DECODERS: &[fn(&[u8])] = &[$(check::<$m>),*];
    };
}

messages!(
    AddUserRequest,
    AddUserResponse,
    AllowNodeRequest,
    AllowNodeResponse,
    BackupChunk,
    BackupRequest,
    CommandRequest,
    CommandResponse,
    ConfigHistoryRequest,
    ConfigHistoryResponse,
    ConfigPushEvent,
    ConfigPushRequest,
    ConfigRollbackRequest,
    ConfigStatusRequest,
    ConfigStatusResponse,
    ConfigVersionContent,
    CreateTokenRequest,
    CreateTokenResponse,
    DeleteNodeRequest,
    DeleteNodeResponse,
    EnrollRequest,
    EnrollResponse,
    Event,
    EventsRequest,
    ExecFromAgent,
    ExecHistoryRequest,
    ExecHistoryResponse,
    ExecRequest,
    ExecResponse,
    ExecToAgent,
    GetConfigVersionRequest,
    GetNodeRequest,
    GetRecordingRequest,
    HeartbeatRequest,
    HeartbeatResponse,
    ListAuditRequest,
    ListAuditResponse,
    ListMastersRequest,
    ListMastersResponse,
    ListNodesRequest,
    ListNodesResponse,
    ListRecordingsRequest,
    ListRecordingsResponse,
    ListTokensRequest,
    ListTokensResponse,
    ListUsersRequest,
    ListUsersResponse,
    NodeInfo,
    PushConfigRequest,
    PushConfigResponse,
    RecordingChunk,
    RegisterRequest,
    RegisterResponse,
    RemoveUserRequest,
    RemoveUserResponse,
    RevokeNodeRequest,
    RevokeNodeResponse,
    RevokeTokenRequest,
    RevokeTokenResponse,
    StatusRequest,
    StatusResponse,
    WhoAmIRequest,
    WhoAmIResponse,
);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    DECODERS[pick as usize % DECODERS.len()](bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = text.parse::<cdn_proto::Version>();
    }
});
