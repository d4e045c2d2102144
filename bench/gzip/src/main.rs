//! Median and best of 31 runs of gzip level 6 (the master's default) and of
//! its decompression, on FILE or on a generated 1 MiB route table.

use std::io::{Read as _, Write as _};
use std::time::Instant;

fn generated() -> Vec<u8> {
    let mut s = String::from("# edge config\nroutes:\n");
    let mut i = 0u64;
    while s.len() < 1 << 20 {
        s.push_str(&format!(
            "  - host: \"h{i}.example.com\"\n    upstream: {{ addr: \"10.0.{}.{}:8080\", weight: {} }}\n    cache: {{ ttl: {}s, key: \"$scheme$host$uri\" }}\n",
            i % 250,
            (i * 7919) % 200,
            i % 7,
            (i * 31) % 3600
        ));
        i += 1;
    }
    s.into_bytes()
}

/// (median, best) in ms of 31 timed runs after one warm-up.
fn time_ms(mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..31)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0])
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn main() {
    let data = match std::env::args().nth(1) {
        Some(path) => std::fs::read(&path).unwrap(),
        None => generated(),
    };
    let backend = if cfg!(feature = "zlib-rs") {
        "zlib-rs"
    } else {
        "miniz_oxide"
    };
    let packed = gzip(&data);
    let (cm, cb) = time_ms(|| {
        std::hint::black_box(gzip(&data));
    });
    let (dm, db) = time_ms(|| {
        let mut out = Vec::with_capacity(data.len());
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), data.len());
    });
    println!(
        "{backend}: {} -> {} bytes; gzip -6 median {cm:.2} ms (best {cb:.2}); gunzip median {dm:.2} ms (best {db:.2})",
        data.len(),
        packed.len()
    );
}
