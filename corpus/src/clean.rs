// Owns the corpus's clean workloads: code on published crates that allocates, caches,
// spawns and frees on other threads, but holds steady after warm-up. Must never grow without
// bound: each is a false-alarm test of the verdict, so any growth here is a workload bug.

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crossbeam_epoch::{self as epoch, Atomic, Owned};
use profiler::{Expected, Workload};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::Rng;
use crate::leaking::{parse_headers, raw_request};

pub fn clean() -> Vec<Workload> {
    vec![
        Workload::new(
            "tokio-spawn-join",
            "a tokio multi-thread runtime: 256 request handlers (serde_json in, HTML out) spawned and awaited per iteration, counting into a tokio Mutex'd map of 64 routes",
            Expected::Clean,
            || {
                let rt = crate::runtime(2)?;
                let counters = Arc::new(tokio::sync::Mutex::new(HashMap::<u64, u64>::new()));
                let mut n = 0u64;
                Ok(move || {
                    let counters = Arc::clone(&counters);
                    n += 1;
                    let first = n * 256;
                    rt.block_on(async move {
                        let handlers: Vec<_> = (first..first + 256)
                            .map(|id| {
                                let counters = Arc::clone(&counters);
                                tokio::spawn(async move {
                                    let bytes = crate::handle_request(id).await;
                                    *counters.lock().await.entry(id % 64).or_default() +=
                                        bytes as u64;
                                    bytes
                                })
                            })
                            .collect();
                        for h in handlers {
                            black_box(h.await.expect("handler"));
                        }
                    });
                })
            },
        ),
        Workload::new(
            "tokio-mpsc-pipeline",
            "a long-lived tokio writer task fed through a bounded mpsc channel, replying on a oneshot per job: 64 jobs sent and answered per iteration",
            Expected::Clean,
            || {
                let rt = crate::runtime(2)?;
                let (jobs, mut inbox) = tokio::sync::mpsc::channel::<Job>(32);
                rt.spawn(async move {
                    let mut done = 0u64;
                    while let Some(job) = inbox.recv().await {
                        let sum: u64 = job.body.iter().map(|&b| u64::from(b)).sum();
                        let _ = job.reply.send(sum);
                        done += 1;
                        if done.is_multiple_of(16) {
                            tokio::time::sleep(Duration::from_micros(100)).await; // rate limit
                        }
                    }
                });
                Ok(move || {
                    let jobs = &jobs;
                    rt.block_on(async move {
                        let mut replies = Vec::with_capacity(64);
                        for i in 0..64u8 {
                            let (reply, answer) = tokio::sync::oneshot::channel();
                            jobs.send(Job {
                                body: vec![i; 512],
                                reply,
                            })
                            .await
                            .expect("writer alive");
                            replies.push(answer);
                        }
                        for answer in replies {
                            black_box(answer.await.expect("answer"));
                        }
                    });
                })
            },
        ),
        Workload::new(
            "rayon-par-iter",
            "rayon par_iter map-reduce, collect and par_sort over 20,000 records, all freed at the end of the iteration",
            Expected::Clean,
            || {
                let mut rng = Rng::new(3);
                let records: Vec<Record> = (0..20_000)
                    .map(|id| Record {
                        id,
                        name: format!("customer-{}", rng.range(0, 1 << 20)),
                        score: rng.range(0, 1_000) as f64 / 1_000.0,
                    })
                    .collect();
                Ok(move || {
                    let total: f64 = records.par_iter().map(|r| r.score * 1.5).sum();
                    let mut keys: Vec<(u64, u64)> = records
                        .par_iter()
                        .map(|r| {
                            (
                                r.name
                                    .bytes()
                                    .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)),
                                r.id,
                            )
                        })
                        .collect();
                    keys.par_sort_unstable();
                    let top: Vec<String> = records
                        .par_iter()
                        .filter(|r| r.score > 0.9)
                        .map(|r| r.name.to_uppercase())
                        .collect();
                    black_box((total, keys.len(), top.len()));
                })
            },
        ),
        Workload::new(
            "crossbeam-epoch-config-swap",
            "a hot-reloaded config behind a crossbeam-epoch Atomic: 200 swaps per iteration, old versions freed by deferred destruction while a reader thread reads",
            Expected::Clean,
            || {
                let current = Arc::new(SharedConfig(Atomic::new(config(0))));
                let mut version = 0u64;
                Ok(move || {
                    std::thread::scope(|s| {
                        let reader = Arc::clone(&current);
                        s.spawn(move || {
                            for _ in 0..2_000 {
                                let guard = epoch::pin();
                                let cfg = reader.0.load(Ordering::Acquire, &guard);
                                // SAFETY: loaded under a guard; never null (always holds a config).
                                black_box(unsafe { cfg.deref() }.routes.len());
                            }
                        });
                        for _ in 0..200 {
                            version += 1;
                            let guard = epoch::pin();
                            let old = current.0.swap(
                                Owned::new(config(version)),
                                Ordering::AcqRel,
                                &guard,
                            );
                            // SAFETY: `old` is unlinked; readers pinned before may still hold it.
                            unsafe { guard.defer_destroy(old) };
                        }
                    });
                })
            },
        ),
        Workload::new(
            "crossbeam-skiplist-orders",
            "an order book in a crossbeam SkipMap (epoch-reclaimed nodes): 500 orders placed and the 500 oldest filled per iteration, 2,000 live",
            Expected::Clean,
            || {
                let book: crossbeam_skiplist::SkipMap<(u64, u64), Order> =
                    crossbeam_skiplist::SkipMap::new();
                let mut open: VecDeque<(u64, u64)> = VecDeque::with_capacity(2_600);
                let mut rng = Rng::new(11);
                let mut next = 0u64;
                let mut place =
                    move |book: &crossbeam_skiplist::SkipMap<(u64, u64), Order>,
                          open: &mut VecDeque<(u64, u64)>| {
                        next += 1;
                        let key = (rng.range(9_000, 11_000), next);
                        book.insert(
                            key,
                            Order {
                                qty: rng.range(1, 100),
                                owner: format!("trader-{}", next % 300),
                            },
                        );
                        open.push_back(key);
                    };
                for _ in 0..2_000 {
                    place(&book, &mut open);
                }
                Ok(move || {
                    for _ in 0..500 {
                        place(&book, &mut open);
                    }
                    for _ in 0..500 {
                        let key = open.pop_front().expect("open order");
                        if let Some(filled) = book.remove(&key) {
                            black_box((filled.value().qty, filled.value().owner.len()));
                        }
                    }
                })
            },
        ),
        Workload::new(
            "crossbeam-arrayqueue-pool",
            "a buffer pool on a crossbeam ArrayQueue: batches of 4..36 buffers of up to 16 KiB, the pool grows to its cap of 32 and drops the rest",
            Expected::Clean,
            || {
                let pool: crossbeam_queue::ArrayQueue<Vec<u8>> =
                    crossbeam_queue::ArrayQueue::new(32);
                let mut rng = Rng::new(17);
                Ok(move || {
                    let demand = rng.range(4, 36) as usize;
                    let mut batch = Vec::with_capacity(36);
                    for _ in 0..demand {
                        let mut buf = pool.pop().unwrap_or_else(|| Vec::with_capacity(16 << 10));
                        buf.resize(rng.range(1_024, 16 << 10) as usize, 7);
                        batch.push(buf);
                    }
                    black_box(batch.iter().map(|b| b.len()).sum::<usize>());
                    for mut buf in batch {
                        buf.clear();
                        let _ = pool.push(buf); // full: the buffer is dropped
                    }
                })
            },
        ),
        Workload::new(
            "crossbeam-channel-workers",
            "2 worker threads fed through bounded crossbeam channels: 4 batches of 256 jobs of 1 KiB sent and their results collected per iteration",
            Expected::Clean,
            || {
                let (jobs, job_rx) = crossbeam_channel::bounded::<Vec<u8>>(64);
                let (result_tx, results) = crossbeam_channel::bounded::<u64>(256);
                for _ in 0..2 {
                    let (job_rx, result_tx) = (job_rx.clone(), result_tx.clone());
                    std::thread::spawn(move || {
                        for job in job_rx {
                            let sum = job.iter().map(|&b| u64::from(b)).sum();
                            if result_tx.send(sum).is_err() {
                                break;
                            }
                        }
                    });
                }
                Ok(move || {
                    let mut total = 0u64;
                    for batch in 0..4u32 {
                        for i in 0..256u32 {
                            jobs.send(vec![(batch + i) as u8; 1_024])
                                .expect("workers alive");
                        }
                        total += (0..256)
                            .map(|_| results.recv().expect("result"))
                            .sum::<u64>();
                    }
                    black_box(total);
                })
            },
        ),
        Workload::new(
            "moka-bounded-cache",
            "a moka cache of 2,000 rendered fragments over 3,000 keys (max_capacity, housekeeping on access): fills, then evicts",
            Expected::Clean,
            || {
                let cache: moka::sync::Cache<u64, Arc<String>> =
                    moka::sync::Cache::builder().max_capacity(2_000).build();
                let mut rng = Rng::new(7);
                Ok(move || {
                    for _ in 0..1_000 {
                        let key = rng.range(0, 3_000);
                        let page =
                            cache.get_with(key, || Arc::new(format!("<li>{key}</li>").repeat(16)));
                        black_box(page.len());
                    }
                })
            },
        ),
        Workload::new(
            "dashmap-session-expiry",
            "a DashMap session store written from rayon threads: 2,000 new sessions per iteration, the oldest expired, 4,000 live",
            Expected::Clean,
            || {
                let sessions: dashmap::DashMap<u64, Session> = dashmap::DashMap::new();
                let mut next = 0u64;
                Ok(move || {
                    let first = next;
                    (first..first + 2_000).into_par_iter().for_each(|id| {
                        sessions.insert(
                            id,
                            Session {
                                user: format!("user-{}", id % 977),
                                data: vec![0u8; 64],
                            },
                        );
                    });
                    next += 2_000;
                    for id in next.saturating_sub(6_000)..next.saturating_sub(4_000) {
                        sessions.remove(&id);
                    }
                    black_box(sessions.len());
                })
            },
        ),
        Workload::new(
            "lru-bounded-profiles",
            "an lru::LruCache of 1,000 user profiles parsed with serde_json on a miss, over 1,500 ids: fills, then evicts",
            Expected::Clean,
            || {
                let mut cache: lru::LruCache<u64, Profile> =
                    lru::LruCache::new(NonZeroUsize::new(1_000).expect("non-zero"));
                let mut rng = Rng::new(23);
                Ok(move || {
                    for _ in 0..1_000 {
                        let id = rng.range(0, 1_500);
                        let profile = cache.get_or_insert(id, || {
                            let text =
                                serde_json::to_string(&Profile::sample(id)).expect("serialisable");
                            serde_json::from_str(&text).expect("valid profile")
                        });
                        black_box(profile.tags.len());
                    }
                })
            },
        ),
        Workload::new(
            "regex-compiled-once",
            "an access-log regex compiled once (LazyLock) and reused to parse 2,000 lines per iteration into per-status byte counts",
            Expected::Clean,
            || {
                let mut rng = Rng::new(29);
                let lines: Vec<String> = (0..2_000)
                    .map(|i| {
                        let status = [200, 200, 200, 304, 404, 500][rng.range(0, 6) as usize];
                        format!(
                            r#"10.0.{}.{} - - [12/Mar/2026:10:{:02}:00 +0000] "GET /api/orders/{i}?page={} HTTP/1.1" {status} {}"#,
                            rng.range(0, 256),
                            rng.range(0, 256),
                            i % 60,
                            rng.range(1, 9),
                            rng.range(100, 50_000)
                        )
                    })
                    .collect();
                black_box(ACCESS_LOG.is_match(&lines[0]));
                Ok(move || {
                    let mut bytes_by_status: HashMap<u16, u64> = HashMap::new();
                    for line in &lines {
                        if let Some(c) = ACCESS_LOG.captures(line) {
                            let status: u16 = c[5].parse().expect("status");
                            let bytes: u64 = c[6].parse().expect("bytes");
                            *bytes_by_status.entry(status).or_default() +=
                                bytes + c[4].len() as u64;
                        }
                    }
                    black_box(bytes_by_status.len());
                })
            },
        ),
        Workload::new(
            "bumpalo-reset-per-request",
            "a bumpalo arena as per-request scratch, reset after each of 500 requests (4..24 headers): it keeps its largest chunk and reuses it",
            Expected::Clean,
            || {
                let mut arena = bumpalo::Bump::new();
                let requests: Vec<String> = (4..24).map(raw_request).collect();
                let mut rng = Rng::new(31);
                Ok(move || {
                    for _ in 0..500 {
                        let raw = &requests[rng.range(0, requests.len() as u64) as usize];
                        black_box(parse_headers(&arena, raw).len());
                        arena.reset();
                    }
                })
            },
        ),
        Workload::new(
            "bounded-label-set",
            "per-route metric counters keyed by label strings drawn from a bounded set of 1,500 method/route/status labels: fills, settles by ~75 iterations",
            Expected::Clean,
            || {
                let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
                let statuses = [200, 201, 204, 301, 304, 400, 401, 403, 404, 500];
                let labels: Vec<String> = (0..1_500)
                    .map(|i| {
                        format!(
                            "{} /api/v1/resource-{}/{{id}} {}",
                            methods[i % 5],
                            i / 50,
                            statuses[(i / 5) % 10]
                        )
                    })
                    .collect();
                let mut counters: HashMap<String, u64> = HashMap::new();
                let mut rng = Rng::new(37);
                Ok(move || {
                    for _ in 0..150 {
                        let label = &labels[rng.range(0, labels.len() as u64) as usize];
                        if let Some(count) = counters.get_mut(label) {
                            *count += 1;
                        } else {
                            counters.insert(label.clone(), 1);
                        }
                    }
                })
            },
        ),
        Workload::new(
            "tracing-spans-closed",
            "tracing with a registry and fmt layer (to a sink): 200 request spans per iteration, each entered, logged in and closed",
            Expected::Clean,
            || {
                let dispatch = tracing::Dispatch::new(
                    tracing_subscriber::registry()
                        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
                );
                let mut n = 0u64;
                Ok(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for _ in 0..200 {
                            n += 1;
                            let span =
                                tracing::info_span!("request", id = n, route = "/api/orders");
                            let _entered = span.enter();
                            tracing::info!(status = 200, bytes = n % 4_096, "done");
                        }
                    });
                })
            },
        ),
    ]
}

struct Job {
    body: Vec<u8>,
    reply: tokio::sync::oneshot::Sender<u64>,
}

struct Record {
    id: u64,
    name: String,
    score: f64,
}

struct Config {
    routes: Vec<String>,
}

fn config(version: u64) -> Config {
    Config {
        routes: (0..16)
            .map(|i| format!("/api/v{version}/route-{i}"))
            .collect(),
    }
}

/// The config cell; frees the last config when dropped (`Atomic` does not).
struct SharedConfig(Atomic<Config>);

impl Drop for SharedConfig {
    fn drop(&mut self) {
        // SAFETY: the last owner; no reader is left.
        unsafe {
            let cfg = self.0.load(Ordering::Acquire, epoch::unprotected());
            if !cfg.is_null() {
                drop(cfg.into_owned());
            }
        }
    }
}

struct Order {
    qty: u64,
    owner: String,
}

#[allow(dead_code)] // the session's contents
struct Session {
    user: String,
    data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    email: String,
    tags: Vec<String>,
}

impl Profile {
    fn sample(id: u64) -> Profile {
        Profile {
            id,
            name: format!("User {id}"),
            email: format!("user{id}@example.com"),
            tags: (0..(id % 4)).map(|t| format!("tag-{t}")).collect(),
        }
    }
}

static ACCESS_LOG: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"^(\S+) \S+ \S+ \[([^\]]+)\] "(\w+) (\S+) HTTP/1\.[01]" (\d{3}) (\d+)$"#)
        .expect("valid regex")
});
