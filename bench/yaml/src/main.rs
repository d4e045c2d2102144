//! Best of 15 runs of each YAML syntax check on the same generated 1 MiB
//! config (a CDN route table: block maps, flow maps, quoted strings).

use std::time::Instant;

fn config() -> String {
    let mut s =
        String::from("# edge config\nserver:\n  listen: [80, 443]\n  workers: 8\nroutes:\n");
    let mut i = 0;
    while s.len() < 1 << 20 {
        s.push_str(&format!(
            "  - host: \"h{i}.example.com\"\n    path: /assets/{i}/\n    upstream: {{ addr: \"10.0.{}.{}:8080\", weight: {} }}\n    cache: {{ ttl: 300s, key: \"$scheme$host$uri\", enabled: true }}\n    headers:\n      X-Pop: fra{}\n      X-Tag: 'abc def {i}'\n",
            i % 250,
            i % 200,
            i % 7,
            i % 9
        ));
        i += 1;
    }
    s
}

fn best_ms(mut f: impl FnMut()) -> f64 {
    f();
    (0..15)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let s = config();
    println!("config: {} bytes", s.len());
    let rows: [(&str, Box<dyn Fn()>); 4] = [
        (
            "serde_yaml_ng (libyaml port), IgnoredAny",
            Box::new(|| {
                serde_yaml_ng::from_str::<serde::de::IgnoredAny>(&s).unwrap();
            }),
        ),
        (
            "serde-saphyr (granit-parser), IgnoredAny",
            Box::new(|| {
                serde_saphyr::from_str::<serde::de::IgnoredAny>(&s).unwrap();
            }),
        ),
        (
            "granit-parser, events only",
            Box::new(|| {
                for e in granit_parser::Parser::new_from_str(&s) {
                    e.unwrap();
                }
            }),
        ),
        (
            "saphyr-parser, events only (shipped)",
            Box::new(|| {
                for e in saphyr_parser::Parser::new_from_str(&s) {
                    e.unwrap();
                }
            }),
        ),
    ];
    for (name, f) in rows {
        println!("{name:45} {:6.1} ms", best_ms(f));
    }
}
