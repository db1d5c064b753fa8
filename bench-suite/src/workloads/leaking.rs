// Owns the leaking workloads: each leaks one resource in a way seen in real Rust code.
// Must never leak more than its description says: the tests check the exact growth.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use profiler::{Expected, Metric, Workload};

use super::Rng;

pub fn leaking() -> Vec<Workload> {
    vec![
        Workload::new(
            "box-leak",
            "Box::leak of a 1 KiB request buffer every iteration",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                Ok(|| {
                    let leaked: &mut [u8] = Box::leak(vec![0u8; 1024].into_boxed_slice()); // leak site: box-leak
                    std::hint::black_box(leaked);
                })
            },
        ),
        Workload::new(
            "small-leak-under-churn",
            "64 B kept in a history list per iteration, hidden under ~1 MiB of freed allocations",
            Expected::Leak(vec![Metric::HeapBlocks]),
            || {
                let mut history: Vec<Box<[u8; 64]>> = Vec::new();
                let mut rng = Rng::new(5);
                Ok(move || {
                    let mut churn_bytes = 0usize;
                    while churn_bytes < 1 << 20 {
                        let n = rng.range(8, 4_096) as usize;
                        std::hint::black_box(vec![1u8; n]);
                        churn_bytes += n;
                    }
                    history.push(Box::new([7u8; 64])); // leak site: small-leak-under-churn
                })
            },
        ),
        Workload::new(
            "fd-leak",
            "opens a log file every iteration and forgets to close it (mem::forget)",
            Expected::Leak(vec![Metric::Fds]),
            || {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("app.log");
                std::fs::write(&path, b"log\n")?;
                Ok(move || {
                    let _keep_dir_alive = &dir;
                    let file = std::fs::File::open(&path).expect("log file");
                    std::mem::forget(file);
                })
            },
        ),
        Workload::new(
            "fd-leak-every-5",
            "leaks one file descriptor every 5th iteration (an error path that skips close)",
            Expected::Leak(vec![Metric::Fds]),
            || {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("data.bin");
                std::fs::write(&path, [0u8; 16])?;
                let mut iteration = 0u32;
                Ok(move || {
                    let _keep_dir_alive = &dir;
                    iteration += 1;
                    let file = std::fs::File::open(&path).expect("data file");
                    if iteration.is_multiple_of(5) {
                        std::mem::forget(file);
                    }
                })
            },
        ),
        Workload::new(
            "thread-leak",
            "spawns a background thread per iteration that parks forever and is never joined",
            Expected::Leak(vec![Metric::Threads]),
            || {
                Ok(|| {
                    std::thread::spawn(|| {
                        loop {
                            std::thread::park();
                        }
                    });
                })
            },
        ),
        Workload::new(
            "rc-cycle",
            "two Rc nodes of 256 B pointing at each other, dropped: the cycle is never freed",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                Ok(|| {
                    let a = Rc::new(Node {
                        payload: vec![0u8; 256], // leak site: rc-cycle
                        next: RefCell::new(None),
                    });
                    let b = Rc::new(Node {
                        payload: vec![1u8; 256], // leak site: rc-cycle
                        next: RefCell::new(Some(Rc::clone(&a))),
                    });
                    *a.next.borrow_mut() = Some(Rc::clone(&b));
                    std::hint::black_box((&a.payload, &b.payload));
                })
            },
        ),
        Workload::new(
            "global-cache",
            "memoises rendered pages in a global HashMap keyed by request id: never evicted",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                Ok(|| {
                    let request = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
                    std::hint::black_box(render_cached(request).len());
                })
            },
        ),
    ]
}

struct Node {
    payload: Vec<u8>,
    next: RefCell<Option<Rc<Node>>>,
}

/// Request ids are unique for the life of the process, as a server's are.
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

static RENDERED: LazyLock<Mutex<HashMap<String, String>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A memoised page render whose key includes the request id, so nothing is ever reused.
fn render_cached(request: u64) -> String {
    let key = format!("/orders?page=1&request={request}");
    let mut cache = RENDERED.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| format!("<ul>{}</ul>", "<li>order</li>".repeat(32))) // leak site: global-cache
        .clone()
}
