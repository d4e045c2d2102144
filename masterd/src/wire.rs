//! Config content as it goes on the wire: checked (one YAML document within
//! the protocol's size limit) and hashed before it is stored, compressed
//! with the configured algorithm and level when that is worth it, in an
//! encoding each agent decodes (negotiated per agent), and kept ready for
//! re-sending in a small cache of encoded versions.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use cdn_proto::Version;

use crate::config::{Algorithm, CompressionConfig};
use crate::error::MasterError;
use crate::store::VersionRecord;
use cdn_proto::limits::{CONFIG_CHUNK_BYTES, MAX_CONFIG_BYTES};

/// Encoded versions kept ready for re-sending.
const CACHE_ENTRIES: usize = 8;

/// A version ready to send: content as it goes on the wire.
#[derive(Debug, Clone)]
pub struct WirePayload {
    pub version: Version,
    pub hash: String,
    /// Size of the content before compression.
    pub size: u64,
    /// `gzip`, `zstd`, or empty for none.
    pub encoding: &'static str,
    pub bytes: Bytes,
}

impl WirePayload {
    /// The encoded content cut at [`CONFIG_CHUNK_BYTES`]: each chunk with
    /// its offset (one empty chunk for empty content). Slices, not copies.
    pub fn chunks(&self) -> impl Iterator<Item = (u64, Bytes)> + '_ {
        let n = self.bytes.len().div_ceil(CONFIG_CHUNK_BYTES).max(1);
        (0..n).map(move |i| {
            let start = i * CONFIG_CHUNK_BYTES;
            let end = (start + CONFIG_CHUNK_BYTES).min(self.bytes.len());
            (start as u64, self.bytes.slice(start..end))
        })
    }

    /// The chunk a fetch at `offset` gets: at most [`CONFIG_CHUNK_BYTES`]
    /// from there; None past the end.
    pub fn chunk_at(&self, offset: u64) -> Option<Bytes> {
        let len = self.bytes.len();
        let start = usize::try_from(offset).ok().filter(|o| *o <= len)?;
        if start == len && len > 0 {
            return None;
        }
        Some(
            self.bytes
                .slice(start..(start + CONFIG_CHUNK_BYTES).min(len)),
        )
    }

    /// `content` of `meta` as encoded by [`compress`].
    pub fn new(meta: &VersionRecord, (encoding, bytes): (&'static str, Bytes)) -> Self {
        Self {
            version: meta.version,
            hash: meta.hash.clone(),
            size: meta.size,
            encoding,
            bytes,
        }
    }
}

/// Content as it goes on the wire in `algorithm` at the configured level,
/// when that is worth it (at least `min_size` bytes, and smaller after);
/// else as it is.
pub fn compress(
    content: &[u8],
    c: &CompressionConfig,
    algorithm: Algorithm,
) -> (&'static str, Bytes) {
    if content.len() as u64 >= c.min_size {
        let packed = match algorithm {
            Algorithm::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(c.level));
                enc.write_all(content).and_then(|_| enc.finish()).ok()
            }
            Algorithm::Zstd => zstd::bulk::compress(content, c.level as i32).ok(),
            Algorithm::None => None,
        };
        if let Some(p) = packed
            && p.len() < content.len()
        {
            return (algorithm.wire_name(), Bytes::from(p));
        }
    }
    ("", Bytes::copy_from_slice(content))
}

/// The encoding to send a node that decodes `accepts`: the configured one
/// if it can, else gzip if it can, else none. Agents that say nothing
/// (older ones) decode gzip.
pub fn negotiate(preferred: Algorithm, accepts: &[String]) -> Algorithm {
    let can = |a: Algorithm| {
        a == Algorithm::None
            || (accepts.is_empty() && a == Algorithm::Gzip)
            || accepts.iter().any(|x| x == a.wire_name())
    };
    [preferred, Algorithm::Gzip]
        .into_iter()
        .find(|a| can(*a))
        .unwrap_or(Algorithm::None)
}

/// Checks that `content` is one YAML document of at most
/// [`MAX_CONFIG_BYTES`]; the error names line and column.
pub fn validate_yaml(content: &[u8]) -> Result<(), MasterError> {
    if content.len() > MAX_CONFIG_BYTES {
        return Err(MasterError::Invalid(format!(
            "config is {} bytes, at most {MAX_CONFIG_BYTES} allowed",
            content.len()
        )));
    }
    let text = std::str::from_utf8(content)
        .map_err(|e| MasterError::Invalid(format!("config is not UTF-8: {e}")))?;
    cdn_common::config::check_yaml_syntax(text)
        .map_err(|e| MasterError::Invalid(format!("config is not valid YAML: {e}")))
}

/// Config content checked and encoded for a push.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub content: Bytes,
    /// sha256 of the content, lowercase hex.
    pub hash: String,
    /// The content as it goes on the wire in the configured encoding.
    pub wire: (&'static str, Bytes),
}

/// Validates, hashes and compresses `content` off the async workers, the
/// YAML check and the hash + compression in parallel.
pub async fn prepare(content: Bytes, c: &CompressionConfig) -> Result<Prepared, MasterError> {
    Preparing::start(content, c).done().await
}

/// A [`prepare`] under way: the check and the hash + compression run on
/// blocking threads from [`Preparing::start`] on, so a push can write its
/// audit intent while they run. Dropped, it lets them finish unread.
pub struct Preparing {
    content: Bytes,
    check: tokio::task::JoinHandle<Result<(), MasterError>>,
    digest: tokio::task::JoinHandle<(String, (&'static str, Bytes))>,
}

impl Preparing {
    /// Starts the check and the hash + compression of `content`.
    pub fn start(content: Bytes, c: &CompressionConfig) -> Self {
        let c = c.clone();
        let check = {
            let content = content.clone();
            tokio::task::spawn_blocking(move || validate_yaml(&content))
        };
        let digest = {
            let content = content.clone();
            tokio::task::spawn_blocking(move || {
                (
                    cdn_common::tls::sha256_hex(&content),
                    compress(&content, &c, c.algorithm),
                )
            })
        };
        Self {
            content,
            check,
            digest,
        }
    }

    /// The prepared content, or why it cannot be pushed.
    pub async fn done(self) -> Result<Prepared, MasterError> {
        let joined =
            |e: tokio::task::JoinError| MasterError::Internal(format!("push task failed: {e}"));
        self.check.await.map_err(joined)??;
        let (hash, wire) = self.digest.await.map_err(joined)?;
        Ok(Prepared {
            content: self.content,
            hash,
            wire,
        })
    }
}

/// The compression settings in force and the encoded versions.
pub struct Encoder {
    settings: RwLock<CompressionConfig>,
    cache: Mutex<HashMap<(Version, Algorithm), WirePayload>>,
}

impl Encoder {
    /// An encoder with `settings` and an empty cache.
    pub fn new(settings: CompressionConfig) -> Self {
        Self {
            settings: RwLock::new(settings),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The compression settings in force.
    pub fn settings(&self) -> CompressionConfig {
        self.settings.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// New settings from a reloaded config (SIGHUP): payloads encoded under
    /// the old ones are dropped.
    pub fn set(&self, c: CompressionConfig) {
        if let Ok(mut cur) = self.settings.write() {
            *cur = c;
        }
        if let Ok(mut w) = self.cache.lock() {
            w.clear();
        }
    }

    /// The algorithm for a node that decodes `accepts`.
    pub fn algorithm_for(&self, accepts: &[String]) -> Algorithm {
        negotiate(self.settings().algorithm, accepts)
    }

    /// Version `v` in `algorithm`, if encoded recently.
    pub fn cached(&self, v: Version, algorithm: Algorithm) -> Option<WirePayload> {
        self.cache.lock().ok()?.get(&(v, algorithm)).cloned()
    }

    /// Keeps `payload` (encoded in `algorithm`) for re-sending, forgetting
    /// the oldest version when full.
    pub fn remember(&self, algorithm: Algorithm, payload: WirePayload) {
        if let Ok(mut w) = self.cache.lock() {
            if w.len() >= CACHE_ENTRIES
                && let Some(oldest) = w.keys().min().copied()
            {
                w.remove(&oldest);
            }
            w.insert((payload.version, algorithm), payload);
        }
    }

    /// Encodes `content` of `meta` in `algorithm` off the async workers and
    /// keeps the result.
    pub async fn encode(
        &self,
        meta: &VersionRecord,
        content: Bytes,
        algorithm: Algorithm,
    ) -> Result<WirePayload, MasterError> {
        let c = self.settings();
        let wire = tokio::task::spawn_blocking(move || compress(&content, &c, algorithm))
            .await
            .map_err(|e| MasterError::Internal(format!("compress task failed: {e}")))?;
        let payload = WirePayload::new(meta, wire);
        self.remember(algorithm, payload.clone());
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_cut_into_chunks_that_add_up() {
        let p = |len: usize| WirePayload {
            version: Version::new(1).unwrap(),
            hash: String::new(),
            size: len as u64,
            encoding: "",
            bytes: Bytes::from(vec![7u8; len]),
        };
        for len in [
            0,
            1,
            CONFIG_CHUNK_BYTES,
            CONFIG_CHUNK_BYTES + 1,
            3 * CONFIG_CHUNK_BYTES + 5,
        ] {
            let payload = p(len);
            let chunks: Vec<_> = payload.chunks().collect();
            assert_eq!(
                chunks.len(),
                len.div_ceil(CONFIG_CHUNK_BYTES).max(1),
                "{len}"
            );
            let mut next = 0u64;
            for (offset, bytes) in &chunks {
                assert_eq!(*offset, next);
                assert!(bytes.len() <= CONFIG_CHUNK_BYTES);
                assert_eq!(payload.chunk_at(*offset).as_ref(), Some(bytes));
                next += bytes.len() as u64;
            }
            assert_eq!(next, len as u64);
            assert_eq!(payload.chunk_at(len as u64 + 1), None);
            if len > 0 {
                assert_eq!(payload.chunk_at(len as u64), None);
            }
        }
    }

    #[test]
    fn yaml_errors_name_line_and_column() {
        let e = validate_yaml(b"a: 1\nb: [2\n").unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
        assert!(validate_yaml(b"a: 1\n").is_ok());
    }

    #[test]
    fn large_content_is_gzipped_and_small_is_not() {
        let c = CompressionConfig::default();
        let big = "key: value\n".repeat(1000);
        let (enc, bytes) = compress(big.as_bytes(), &c, c.algorithm);
        assert_eq!(enc, "gzip");
        assert!(bytes.len() < big.len() / 5);
        assert_eq!(compress(b"a: 1", &c, c.algorithm).0, "");
    }

    #[test]
    fn every_level_changes_the_bytes_and_zstd_round_trips() {
        use std::io::Read;
        let text: String = (0..3000)
            .map(|i| format!("k{i}: value {}\n", i * 7919 % 1000))
            .collect();
        let at = |level: u32, a: Algorithm| {
            let c = CompressionConfig {
                algorithm: a,
                level,
                min_size: 1024,
            };
            compress(text.as_bytes(), &c, a).1
        };
        let (one, nine) = (at(1, Algorithm::Gzip), at(9, Algorithm::Gzip));
        assert_ne!(one, nine);
        assert!(nine.len() < one.len(), "{} vs {}", nine.len(), one.len());
        for gz in [one, nine] {
            let mut back = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut back)
                .unwrap();
            assert_eq!(back, text);
        }
        let z = at(3, Algorithm::Zstd);
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), text.as_bytes());
        assert_eq!(at(6, Algorithm::None), Bytes::from(text.clone()));
    }

    #[test]
    fn negotiation_falls_back_to_what_the_agent_decodes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            negotiate(Algorithm::Zstd, &s(&["gzip", "zstd"])),
            Algorithm::Zstd
        );
        assert_eq!(negotiate(Algorithm::Zstd, &s(&["gzip"])), Algorithm::Gzip);
        assert_eq!(negotiate(Algorithm::Gzip, &s(&["zstd"])), Algorithm::None);
        assert_eq!(negotiate(Algorithm::Gzip, &[]), Algorithm::Gzip);
        assert_eq!(negotiate(Algorithm::None, &s(&["gzip"])), Algorithm::None);
    }

    #[test]
    fn the_cache_forgets_the_oldest_version() {
        let e = Encoder::new(CompressionConfig::default());
        for n in 1..=(CACHE_ENTRIES as u64 + 1) {
            let p = WirePayload {
                version: Version::new(n).unwrap(),
                hash: String::new(),
                size: 0,
                encoding: "",
                bytes: Bytes::new(),
            };
            e.remember(Algorithm::Gzip, p);
        }
        assert!(e.cached(Version::FIRST, Algorithm::Gzip).is_none());
        assert!(
            e.cached(Version::new(2).unwrap(), Algorithm::Gzip)
                .is_some()
        );
        e.set(CompressionConfig::default());
        assert!(
            e.cached(Version::new(2).unwrap(), Algorithm::Gzip)
                .is_none()
        );
    }
}
