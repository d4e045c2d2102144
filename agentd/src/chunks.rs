//! Config content that arrives in chunks put back together: an
//! `ApplyConfig` carries the piece of the encoded content that starts at
//! `offset`, and the version is whole when the pieces reach `wire_size`
//! (see PROTOCOL.md). Pieces of one version come in order; pieces of two
//! versions may interleave when pushes cross, so a few versions are
//! assembled side by side.

use bytes::{Bytes, BytesMut};
use cdn_proto::Version;
use cdn_proto::limits::MAX_MESSAGE_BYTES;
use cdn_proto::v1::ApplyConfig;

use crate::apply;

/// Versions assembled at once; an older one is dropped for a newer one
/// (it is offered again through the heartbeat reply).
const MAX_ASSEMBLING: usize = 2;

/// What one piece made of its version.
#[derive(Debug)]
pub enum Piece {
    /// The version is whole: apply it.
    Complete(apply::Request),
    /// More pieces are to come.
    Incomplete,
    /// The pieces do not fit together; the version is dropped and will be
    /// offered again. The text says why.
    Dropped(String),
}

struct Partial {
    version: Version,
    hash: String,
    encoding: String,
    wire_size: u64,
    content: BytesMut,
}

/// Versions being put together from their pieces.
#[derive(Default)]
pub struct Assembly {
    partial: Vec<Partial>,
}

impl Assembly {
    /// Adds one piece of `version`.
    pub fn add(&mut self, version: Version, a: ApplyConfig) -> Piece {
        let whole = |a: ApplyConfig| {
            Piece::Complete(apply::Request {
                version,
                hash: a.hash,
                content: a.content,
                encoding: a.encoding,
            })
        };
        // A master from before chunking sends no wire_size.
        if a.wire_size == 0 || (a.offset == 0 && a.content.len() as u64 == a.wire_size) {
            self.partial.retain(|p| p.version != version);
            return whole(a);
        }
        if a.wire_size > MAX_MESSAGE_BYTES as u64 {
            self.partial.retain(|p| p.version != version);
            return Piece::Dropped(format!(
                "version {version} is {} bytes encoded, more than the {MAX_MESSAGE_BYTES} allowed",
                a.wire_size
            ));
        }
        if a.offset == 0 {
            self.partial.retain(|p| p.version != version);
            if self.partial.len() >= MAX_ASSEMBLING {
                self.partial.remove(0);
            }
            let mut content = BytesMut::with_capacity(a.wire_size as usize);
            content.extend_from_slice(&a.content);
            self.partial.push(Partial {
                version,
                hash: a.hash,
                encoding: a.encoding,
                wire_size: a.wire_size,
                content,
            });
            return Piece::Incomplete;
        }
        let Some(i) = self.partial.iter().position(|p| p.version == version) else {
            return Piece::Dropped(format!(
                "piece of version {version} at offset {} without its beginning",
                a.offset
            ));
        };
        let p = &mut self.partial[i];
        if p.content.len() as u64 != a.offset
            || p.hash != a.hash
            || p.encoding != a.encoding
            || p.wire_size != a.wire_size
            || a.offset + a.content.len() as u64 > a.wire_size
        {
            let have = p.content.len();
            self.partial.remove(i);
            return Piece::Dropped(format!(
                "piece of version {version} at offset {} does not follow the {have} bytes received",
                a.offset
            ));
        }
        p.content.extend_from_slice(&a.content);
        if (p.content.len() as u64) < p.wire_size {
            return Piece::Incomplete;
        }
        let p = self.partial.remove(i);
        Piece::Complete(apply::Request {
            version,
            hash: p.hash,
            content: p.content.freeze(),
            encoding: p.encoding,
        })
    }
}

/// Puts the chunks of one fetch (`PushConfig` from offset 0 on) together.
#[derive(Default)]
pub struct Fetch {
    content: BytesMut,
    wire_size: Option<u64>,
}

impl Fetch {
    /// Where the next request starts.
    pub fn offset(&self) -> u64 {
        self.content.len() as u64
    }

    /// Adds one response's chunk; the whole content once complete.
    pub fn add(&mut self, chunk: Bytes, wire_size: u64) -> Result<Option<Bytes>, String> {
        if wire_size == 0 && self.wire_size.is_none() {
            // A master from before chunking: the content is whole.
            return Ok(Some(chunk));
        }
        if wire_size > MAX_MESSAGE_BYTES as u64 {
            return Err(format!(
                "the master says the content is {wire_size} bytes, more than the {MAX_MESSAGE_BYTES} allowed"
            ));
        }
        if *self.wire_size.get_or_insert(wire_size) != wire_size {
            return Err("the content changed size between chunks".into());
        }
        if chunk.is_empty() && self.offset() < wire_size {
            return Err(format!(
                "empty chunk at offset {} of {wire_size} bytes",
                self.offset()
            ));
        }
        if self.offset() + chunk.len() as u64 > wire_size {
            return Err("chunks run past the content's size".into());
        }
        self.content.extend_from_slice(&chunk);
        Ok((self.offset() == wire_size).then(|| std::mem::take(&mut self.content).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    fn piece(version: u64, offset: u64, content: &[u8], wire_size: u64) -> ApplyConfig {
        ApplyConfig {
            version: version.to_string(),
            hash: "h".into(),
            content: Bytes::copy_from_slice(content),
            encoding: String::new(),
            size: wire_size,
            offset,
            wire_size,
        }
    }

    fn complete(p: Piece) -> Vec<u8> {
        match p {
            Piece::Complete(r) => r.content.to_vec(),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn one_piece_and_legacy_messages_are_whole() {
        let mut a = Assembly::default();
        assert_eq!(complete(a.add(v(1), piece(1, 0, b"abc", 3))), b"abc");
        assert_eq!(complete(a.add(v(1), piece(1, 0, b"abc", 0))), b"abc");
    }

    #[test]
    fn pieces_of_crossing_versions_are_put_back_together() {
        let mut a = Assembly::default();
        assert!(matches!(
            a.add(v(1), piece(1, 0, b"ab", 5)),
            Piece::Incomplete
        ));
        assert!(matches!(
            a.add(v(2), piece(2, 0, b"xy", 4)),
            Piece::Incomplete
        ));
        assert!(matches!(
            a.add(v(1), piece(1, 2, b"cd", 5)),
            Piece::Incomplete
        ));
        assert_eq!(complete(a.add(v(2), piece(2, 2, b"zw", 4))), b"xyzw");
        assert_eq!(complete(a.add(v(1), piece(1, 4, b"e", 5))), b"abcde");
        assert!(a.partial.is_empty());
    }

    #[test]
    fn a_gap_or_a_stranger_drops_the_version() {
        let mut a = Assembly::default();
        assert!(matches!(
            a.add(v(1), piece(1, 3, b"x", 5)),
            Piece::Dropped(_)
        ));
        a.add(v(1), piece(1, 0, b"ab", 5));
        let Piece::Dropped(why) = a.add(v(1), piece(1, 3, b"d", 5)) else {
            panic!()
        };
        assert!(why.contains("does not follow the 2 bytes"), "{why}");
        assert!(a.partial.is_empty());
        a.add(v(1), piece(1, 0, b"ab", 5));
        assert!(matches!(
            a.add(v(1), piece(1, 2, b"cdefg", 5)),
            Piece::Dropped(_)
        ));
        let huge = MAX_MESSAGE_BYTES as u64 + 1;
        assert!(matches!(
            a.add(v(1), piece(1, 0, b"ab", huge)),
            Piece::Dropped(_)
        ));
    }

    #[test]
    fn only_a_few_versions_are_assembled_at_once() {
        let mut a = Assembly::default();
        for n in 1..=3 {
            a.add(v(n), piece(n, 0, b"a", 2));
        }
        assert!(matches!(
            a.add(v(1), piece(1, 1, b"b", 2)),
            Piece::Dropped(_)
        ));
        assert_eq!(complete(a.add(v(3), piece(3, 1, b"b", 2))), b"ab");
    }

    #[test]
    fn fetched_chunks_add_up() {
        let mut f = Fetch::default();
        assert_eq!(f.add(Bytes::from_static(b"ab"), 4).unwrap(), None);
        assert_eq!(f.offset(), 2);
        assert_eq!(
            f.add(Bytes::from_static(b"cd"), 4).unwrap().unwrap(),
            &b"abcd"[..]
        );
        let mut f = Fetch::default();
        assert_eq!(
            f.add(Bytes::from_static(b"whole"), 0).unwrap().unwrap(),
            &b"whole"[..]
        );
        let mut f = Fetch::default();
        f.add(Bytes::from_static(b"ab"), 4).unwrap();
        assert!(f.add(Bytes::from_static(b"c"), 5).is_err());
        assert!(f.add(Bytes::new(), 4).is_err());
        assert!(f.add(Bytes::from_static(b"cde"), 4).is_err());
        // Empty content is one empty chunk.
        let mut f = Fetch::default();
        assert_eq!(f.add(Bytes::new(), 0).unwrap().unwrap(), &b""[..]);
    }
}
