//! Limits of the `cdn.v1` protocol, the one place each is defined: the
//! master, the agent and cdnctl all size their buffers and refuse input by
//! these numbers, so a message one side accepts the other can send.

/// Largest config file a push may carry, bytes (before compression).
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// Framing and metadata allowed on top of the largest config in one gRPC
/// message.
pub const MESSAGE_OVERHEAD_BYTES: usize = 64 * 1024;

/// Largest gRPC message any side sends or accepts: a full-size config plus
/// framing. (gRPC's own default of 4 MiB would refuse large configs.)
pub const MAX_MESSAGE_BYTES: usize = MAX_CONFIG_BYTES + MESSAGE_OVERHEAD_BYTES;

/// Config content travels in chunks of at most this many bytes of its
/// encoded form (`ApplyConfig.offset`, `PushConfigRequest.offset`), so
/// every message to an agent stays far below gRPC's default 4 MiB.
pub const CONFIG_CHUNK_BYTES: usize = 1024 * 1024;

/// No message the master sends an agent is larger: a config chunk plus
/// framing. Announced at registration (`Limits`) and enforced by the
/// master's AgentService encoder.
pub const MAX_MESSAGE_TO_AGENT_BYTES: usize = CONFIG_CHUNK_BYTES + MESSAGE_OVERHEAD_BYTES;

/// gRPC's default receive limit, which [`MAX_MESSAGE_TO_AGENT_BYTES`]
/// stays under.
pub const GRPC_DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

const _: () = assert!(MAX_MESSAGE_TO_AGENT_BYTES < GRPC_DEFAULT_MAX_MESSAGE_BYTES);
const _: () = assert!(MAX_ARGV_BYTES + MESSAGE_OVERHEAD_BYTES <= MAX_MESSAGE_TO_AGENT_BYTES);
const _: () = assert!(EXEC_CHUNK_BYTES + MESSAGE_OVERHEAD_BYTES <= MAX_MESSAGE_TO_AGENT_BYTES);

/// HTTP/2 receive window of one stream: what one stalled exec session (its
/// reader stopped reading) may hold unread.
pub const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;

/// HTTP/2 receive window of a whole connection. Far above one stream's, so
/// stalled sessions (up to this / [`STREAM_WINDOW_BYTES`] = 128 of them)
/// never starve heartbeats and other calls on the same connection. Credit,
/// not memory: only unread data takes memory, bounded per stream.
pub const CONNECTION_WINDOW_BYTES: u32 = 128 * 1024 * 1024;

/// Largest chunk of exec output or input in one message.
pub const EXEC_CHUNK_BYTES: usize = 128 * 1024;

/// Largest HTTP/2 frame the clients of the master take (cdnctl, its
/// connection holder, agentd; HTTP/2's default is 16 KiB): a chunk of exec
/// output or input reaches them in one frame, not eight, which costs every
/// hop less CPU. Each of them has one connection to the master. The master
/// keeps the default for what it reads: it would hold a read buffer of the
/// largest frame on each of its thousands of agent connections.
pub const CLIENT_FRAME_BYTES: u32 = 256 * 1024;
const _: () = assert!(EXEC_CHUNK_BYTES + MESSAGE_OVERHEAD_BYTES <= CLIENT_FRAME_BYTES as usize);

/// Longest exec command line, bytes of all arguments together.
pub const MAX_ARGV_BYTES: usize = 128 * 1024;

/// Most labels a node may register with.
pub const MAX_LABELS: usize = 64;

/// Longest label key or value, bytes (a DNS name).
pub const MAX_LABEL_BYTES: usize = 253;

/// Longest node id (a DNS label).
pub const MAX_NODE_ID_BYTES: usize = 63;

/// Largest `Enroll` request (a token, a node id and a CSR are well under it);
/// the only body the master reads from a caller without a certificate.
pub const ENROLL_MAX_BYTES: usize = 64 * 1024;

/// Largest certificate signing request in an `Enroll` call.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Deepest nesting of sequences and mappings a pushed YAML config may have.
/// Real configs stay under 20; the bound keeps a hostile `[[[[…` from
/// costing parse time in cdnctl, the master and every agent.
pub const MAX_YAML_DEPTH: usize = 128;

/// Longest idempotency key a push may carry (`ConfigPushRequest`), bytes;
/// cdnctl sends 32 hex digits.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
