// Owns the catalog's sized workloads: code whose memory grows with its input in a known way
// (`profile --sweep`), each clean at its default size. Must never hide its growth class:
// each is a test of the fit, two of them (quadratic, constant) on purpose.

use std::collections::BTreeMap;

use profiler::{Expected, Workload};
use serde::{Deserialize, Serialize};

use super::Rng;

pub fn sized() -> Vec<Workload> {
    vec![
        Workload::sized(
            "parse-records",
            "parse a JSON array of n records (~80 B of text each) into structs with serde_json: \
             O(n) memory",
            Expected::Clean,
            10_000,
            |n| {
                let text = serde_json::to_string(&records(n))?;
                Ok(move || serde_json::from_str::<Vec<Record>>(&text).expect("valid JSON"))
            },
        ),
        Workload::sized(
            "sort-strings",
            "sort a copy of n short strings: O(n) memory (the copy), O(n log n) time",
            Expected::Clean,
            10_000,
            |n| {
                let mut rng = Rng::new(n);
                let words: Vec<String> = (0..n).map(|_| format!("w{:x}", rng.next_u64())).collect();
                Ok(move || {
                    let mut copy = words.clone();
                    copy.sort_unstable();
                    copy
                })
            },
        ),
        Workload::sized(
            "index-keys",
            "build a BTreeMap index from n string keys to their positions: O(n) memory",
            Expected::Clean,
            10_000,
            |n| {
                let keys: Vec<String> = (0..n).map(|i| format!("key-{i:08}")).collect();
                Ok(move || {
                    keys.iter()
                        .enumerate()
                        .map(|(i, k)| (k.as_str(), i))
                        .collect::<BTreeMap<&str, usize>>()
                        .len()
                })
            },
        ),
        Workload::sized(
            "pairwise-distances",
            "the n x n matrix of distances between n points: O(n^2) memory on purpose",
            Expected::Clean,
            300,
            |n| {
                let mut rng = Rng::new(n);
                let points: Vec<(f64, f64)> = (0..n)
                    .map(|_| (rng.range(0, 1000) as f64, rng.range(0, 1000) as f64))
                    .collect();
                Ok(move || {
                    let mut matrix = Vec::with_capacity(points.len() * points.len());
                    for a in &points {
                        for b in &points {
                            matrix.push(((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt());
                        }
                    }
                    matrix
                })
            },
        )
        // 4000 points: a 128 MB matrix.
        .max_size(4_000),
        Workload::sized(
            "streaming-checksum",
            "checksum n generated records through one 4 KiB buffer: O(1) memory on purpose, \
             O(n) time",
            Expected::Clean,
            100_000,
            |n| {
                Ok(move || {
                    let mut buffer = Vec::with_capacity(4096);
                    let mut rng = Rng::new(7);
                    let mut sum = 0u64;
                    for _ in 0..n {
                        if buffer.len() + 8 > buffer.capacity() {
                            sum = buffer
                                .iter()
                                .fold(sum, |s, &b| s.rotate_left(5) ^ u64::from(b));
                            buffer.clear();
                        }
                        buffer.extend_from_slice(&rng.next_u64().to_le_bytes());
                    }
                    std::hint::black_box(sum)
                })
            },
        ),
    ]
}

#[derive(Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    score: f64,
    tags: Vec<String>,
}

fn records(n: u64) -> Vec<Record> {
    let mut rng = Rng::new(n);
    (0..n)
        .map(|id| Record {
            id,
            name: format!("user-{}", rng.range(0, 1_000_000)),
            score: rng.range(0, 10_000) as f64 / 100.0,
            tags: vec!["a".into(), format!("t{}", rng.range(0, 50))],
        })
        .collect()
}
