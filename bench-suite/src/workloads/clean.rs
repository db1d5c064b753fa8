// Owns the clean workloads: code that allocates, caches, opens files and spawns threads, but
// holds steady after warm-up. Must never grow without bound: each is a false-alarm test.

use std::collections::HashMap;
use std::io::Read;
use std::sync::mpsc;

use profiler::{Expected, Workload};
use serde::{Deserialize, Serialize};

use super::Rng;

pub fn clean() -> Vec<Workload> {
    vec![
        Workload::new(
            "contended-pool",
            "a buffer pool whose per-thread cache holds 3 x 16 KiB per thread sharing the pool: \
             flat alone, larger per copy under --concurrency",
            Expected::Clean,
            || {
                let sharing = Sharing::join();
                let mut cache: Vec<Vec<u8>> = Vec::new();
                Ok(move || {
                    // The cache is sized by contention: more threads on the pool, more kept.
                    let want = 3 * sharing.count();
                    while cache.len() < want {
                        cache.push(vec![0u8; 16 * 1024]);
                    }
                    let mut total = 0u64;
                    for (i, block) in cache.iter_mut().enumerate() {
                        block[i % 1024] = block[i % 1024].wrapping_add(1);
                        total += u64::from(block[i % 1024]);
                    }
                    let scratch = vec![total as u8; 4096];
                    std::hint::black_box(&scratch);
                })
            },
        ),
        Workload::new(
            "json-roundtrip",
            "parse a ~1 MiB JSON document into structs with serde_json and serialise it back",
            Expected::Clean,
            || {
                let text = serde_json::to_string(&orders(2_600))?;
                Ok(move || {
                    let parsed: Vec<Order> = serde_json::from_str(&text).expect("valid JSON");
                    std::hint::black_box(serde_json::to_string(&parsed).expect("serialisable"));
                })
            },
        ),
        Workload::new(
            "hashmap-churn",
            "insert 2,000 sessions into a HashMap and expire the oldest, keeping 1,000 live",
            Expected::Clean,
            || {
                let mut sessions: HashMap<u64, Vec<u8>> = HashMap::new();
                let mut next = 0u64;
                Ok(move || {
                    for _ in 0..2_000 {
                        sessions.insert(next, vec![next as u8; 64]);
                        if next >= 1_000 {
                            sessions.remove(&(next - 1_000));
                        }
                        next += 1;
                    }
                })
            },
        ),
        Workload::new(
            "lru-cache",
            "an LRU cache of 2,000 rendered pages over 3,000 keys: fills, then evicts",
            Expected::Clean,
            || {
                let mut cache = Lru::new(2_000);
                let mut rng = Rng::new(7);
                Ok(move || {
                    for _ in 0..1_000 {
                        let key = rng.range(0, 3_000);
                        std::hint::black_box(cache.get_or_render(key).len());
                    }
                })
            },
        ),
        Workload::new(
            "buffer-regrow",
            "reuse one output buffer for messages of 4 KiB..1 MiB, shrinking it after big ones",
            Expected::Clean,
            || {
                let mut buffer: Vec<u8> = Vec::new();
                let mut rng = Rng::new(11);
                Ok(move || {
                    buffer.clear();
                    let size = 4_096usize << rng.range(0, 9); // 4 KiB ..= 1 MiB
                    buffer.extend((0..size).map(|i| i as u8));
                    std::hint::black_box(&buffer);
                    if buffer.capacity() > 256 * 1024 {
                        buffer.clear();
                        buffer.shrink_to(64 * 1024);
                    }
                })
            },
        ),
        Workload::new(
            "temp-files",
            "open, read and close the 300 files of a temporary tree",
            Expected::Clean,
            || {
                let dir = tempfile::tempdir()?;
                let mut rng = Rng::new(3);
                for i in 0..300 {
                    let sub = dir.path().join(format!("d{}", i % 10));
                    std::fs::create_dir_all(&sub)?;
                    let len = rng.range(512, 8_192) as usize;
                    std::fs::write(sub.join(format!("f{i}.txt")), vec![b'x'; len])?;
                }
                let mut buf = Vec::with_capacity(8_192);
                Ok(move || {
                    let mut total = 0;
                    for entry in std::fs::read_dir(dir.path()).expect("temp dir") {
                        let sub = entry.expect("entry").path();
                        for file in std::fs::read_dir(&sub).expect("sub dir") {
                            let mut f =
                                std::fs::File::open(file.expect("file").path()).expect("open");
                            buf.clear();
                            total += f.read_to_end(&mut buf).expect("read");
                        }
                    }
                    std::hint::black_box(total);
                })
            },
        ),
        Workload::new(
            "thread-pool",
            "a pool of 4 worker threads created on first use, then reused for 64 jobs per iteration",
            Expected::Clean,
            || {
                let mut pool: Option<Pool> = None;
                Ok(move || {
                    let pool = pool.get_or_insert_with(|| Pool::new(4));
                    let (done_tx, done_rx) = mpsc::channel();
                    for job in 0..64u64 {
                        let done = done_tx.clone();
                        pool.submit(Box::new(move || {
                            let v: Vec<u64> = (0..1_000).map(|i| i * job).collect();
                            let _ = done.send(v.iter().sum::<u64>());
                        }));
                    }
                    drop(done_tx);
                    std::hint::black_box(done_rx.iter().sum::<u64>());
                })
            },
        ),
    ]
}

#[derive(Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    email: String,
    items: Vec<Item>,
    total_cents: u64,
    paid: bool,
}

#[derive(Serialize, Deserialize)]
struct Item {
    sku: String,
    quantity: u32,
    price_cents: u64,
}

/// `n` orders; 2,600 of them serialise to about 1 MiB.
fn orders(n: u64) -> Vec<Order> {
    let mut rng = Rng::new(42);
    (0..n)
        .map(|id| {
            let items: Vec<Item> = (0..rng.range(1, 4))
                .map(|k| Item {
                    sku: format!("SKU-{:06}", rng.range(0, 1_000_000)),
                    quantity: k as u32 + 1,
                    price_cents: rng.range(100, 100_000),
                })
                .collect();
            Order {
                id,
                customer: format!("Customer {id}"),
                email: format!("customer{id}@example.com"),
                total_cents: items
                    .iter()
                    .map(|i| i.price_cents * u64::from(i.quantity))
                    .sum(),
                items,
                paid: id % 3 != 0,
            }
        })
        .collect()
}

/// A least-recently-used cache of rendered pages.
struct Lru {
    capacity: usize,
    tick: u64,
    pages: HashMap<u64, (String, u64)>,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Lru {
            capacity,
            tick: 0,
            pages: HashMap::with_capacity(capacity + 1),
        }
    }

    fn get_or_render(&mut self, key: u64) -> &str {
        self.tick += 1;
        let tick = self.tick;
        if !self.pages.contains_key(&key) && self.pages.len() >= self.capacity {
            let oldest = self
                .pages
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.pages.remove(&oldest);
            }
        }
        let entry = self.pages.entry(key).or_insert_with(|| {
            (
                format!("<html><body>page {key}{}</body></html>", " ".repeat(200)),
                0,
            )
        });
        entry.1 = tick;
        &entry.0
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of worker threads fed through a channel.
struct Pool {
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn new(n: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let workers = (0..n)
            .map(|_| {
                let rx = std::sync::Arc::clone(&rx);
                std::thread::spawn(move || {
                    loop {
                        let job = rx.lock().expect("pool lock").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(tx),
            workers,
        }
    }

    fn submit(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            let _ = tx.send(job);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The threads currently sharing the `contended-pool` workload's pool: joined in setup, left
/// when the iteration closure is dropped.
struct Sharing;

static SHARING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Sharing {
    fn join() -> Sharing {
        SHARING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Sharing
    }

    fn count(&self) -> usize {
        SHARING.load(std::sync::atomic::Ordering::SeqCst).max(1)
    }
}

impl Drop for Sharing {
    fn drop(&mut self) {
        SHARING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
