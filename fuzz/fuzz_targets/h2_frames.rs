//! The master's own HTTP/2 frame reader (masterd/src/conn.rs, the PING
//! policy) over a client's raw bytes: never a panic, and the frames it
//! sees do not depend on how the bytes were split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let whole = masterd::conn::client_frame_heads([bytes]);
    // Reads of `split + 1` bytes, as a slow link delivers them.
    let step = split as usize + 1;
    let pieces = masterd::conn::client_frame_heads(bytes.chunks(step));
    assert_eq!(whole, pieces, "frames depend on the read size {step}");
});
