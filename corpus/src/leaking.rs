// Owns the corpus's leaking workloads: each leaks the way real code on a published crate
// leaks, small (64 B to a few KiB per iteration, or one fd/thread every few iterations).
// Must never leak anything but what its description says, nor leak faster than a few KiB.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use profiler::{Expected, Metric, Workload};
use rayon::prelude::*;
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt as _;

pub fn leaking() -> Vec<Workload> {
    vec![
        Workload::new(
            "tokio-forgotten-heartbeat",
            "a connection's heartbeat task (tokio::spawn of an interval loop) whose JoinHandle is dropped instead of aborted: one live task per closed connection",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                let rt = crate::runtime(2)?;
                let beats = Arc::new(AtomicU64::new(0));
                let mut connection = 0u64;
                Ok(move || {
                    connection += 1;
                    let (conn, beats) = (connection, Arc::clone(&beats));
                    rt.block_on(async move {
                        // Meant to be aborted when the connection closes; dropping the
                        // JoinHandle detaches the task instead (leak site).
                        drop(tokio::spawn(heartbeat(conn, beats)));
                        // The connection's 64 requests, each handled by a task and awaited.
                        let handlers: Vec<_> = (0..64u64)
                            .map(|i| {
                                tokio::spawn(
                                    async move { crate::handle_request(conn * 64 + i).await },
                                )
                            })
                            .collect();
                        for h in handlers {
                            black_box(h.await.expect("request handler"));
                        }
                    });
                })
            },
        ),
        Workload::new(
            "tokio-task-registry",
            "JoinHandles of background jobs pushed to a global registry for graceful shutdown and never pruned once done: each finished task's cell stays allocated",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                let rt = crate::runtime(2)?;
                let mut job = 0u64;
                Ok(move || {
                    rt.block_on(async {
                        let mut requests = Vec::with_capacity(32);
                        for _ in 0..32 {
                            job += 1;
                            requests.push(tokio::spawn(crate::handle_request(job)));
                        }
                        // A background job (e.g. sending a receipt), registered so that
                        // shutdown can await it; finished ones are never removed (leak site).
                        let receipt = tokio::spawn(async move {
                            black_box(crate::render_rows(job, 2).len());
                        });
                        BACKGROUND.lock().expect("registry").push(receipt);
                        for r in requests {
                            black_box(r.await.expect("request"));
                        }
                    });
                })
            },
        ),
        Workload::new(
            "tokio-pending-requests",
            "an RPC client keeps a oneshot::Sender per request id in a global map; the entry of a request that times out (1 in 32) is never removed",
            Expected::Leak(vec![Metric::HeapBlocks]),
            || {
                let rt = crate::runtime(2)?;
                let (to_backend, mut backend) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(64);
                rt.spawn(async move {
                    while let Some((id, body)) = backend.recv().await {
                        if id % 32 == 31 {
                            continue; // the response is lost: the client will time out
                        }
                        let pending = PENDING.lock().expect("pending map").remove(&id);
                        if let Some(p) = pending {
                            let _ = p.reply.send(body);
                        }
                    }
                });
                Ok(move || {
                    let calls: Vec<_> = (0..32)
                        .map(|_| {
                            let to_backend = to_backend.clone();
                            rt.spawn(async move {
                                let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
                                let (reply, response) = tokio::sync::oneshot::channel();
                                let method = format!("orders.get#{id}");
                                PENDING
                                    .lock()
                                    .expect("pending map")
                                    .insert(id, Pending { reply, method });
                                to_backend
                                    .send((id, vec![1u8; 256]))
                                    .await
                                    .expect("backend");
                                match tokio::time::timeout(Duration::from_millis(3), response).await
                                {
                                    Ok(Ok(body)) => body.len(),
                                    // Timed out: the error goes back to the caller, the entry
                                    // stays in PENDING (leak site).
                                    _ => 0,
                                }
                            })
                        })
                        .collect();
                    rt.block_on(async move {
                        for call in calls {
                            black_box(call.await.expect("call"));
                        }
                    });
                })
            },
        ),
        Workload::new(
            "arc-callback-cycle",
            "32 widgets per page subscribe handlers on their own event emitter; one kind's closure captures Arc<Self> instead of Weak, so that widget never dies",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                let mut page = 0u64;
                Ok(move || {
                    page += 1;
                    for slot in 0..32 {
                        let widget = Arc::new(Widget {
                            title: format!("page {page} widget {slot}"),
                            state: Mutex::new(vec![0u8; 256]),
                            history: Mutex::new(Vec::new()),
                            on_change: Mutex::new(Vec::new()),
                        });
                        if slot == 0 {
                            // The order summary: captures a strong Arc (leak site).
                            let this = Arc::clone(&widget);
                            widget.subscribe(Box::new(move |event| this.record(event)));
                        } else {
                            let this = Arc::downgrade(&widget);
                            widget.subscribe(Box::new(move |event| {
                                if let Some(this) = this.upgrade() {
                                    this.record(event);
                                }
                            }));
                        }
                        widget.emit("opened");
                        black_box(widget.title.len());
                    }
                })
            },
        ),
        Workload::new(
            "moka-unbounded-request-cache",
            "rendered fragments memoised in a moka cache built without max_capacity; one endpoint's key carries the request id, so its entries are never hit nor evicted",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                let cache: moka::sync::Cache<String, Arc<String>> =
                    moka::sync::Cache::builder().build();
                let mut rng = crate::Rng::new(41);
                let mut request = 0u64;
                Ok(move || {
                    for _ in 0..64 {
                        request += 1;
                        let key = if request.is_multiple_of(64) {
                            format!("/orders/export?request={request}") // leak site: unique key
                        } else {
                            format!("/orders?page={}", rng.range(1, 40))
                        };
                        let page =
                            cache.get_with(key, || Arc::new(crate::render_rows(request, 12)));
                        black_box(page.len());
                    }
                })
            },
        ),
        Workload::new(
            "crossbeam-undrained-channel",
            "audit events (1 per 8 requests) sent on an unbounded crossbeam channel whose consumer thread was never started: the queue only grows",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                let (events, consumer) = crossbeam_channel::unbounded::<AuditEvent>();
                let mut n = 0u64;
                Ok(move || {
                    let _never_drained = &consumer;
                    for _ in 0..32 {
                        n += 1;
                        let response = crate::render_rows(n, 4);
                        if n.is_multiple_of(8) {
                            events
                                .send(AuditEvent {
                                    user: format!("user-{}", n % 1_000),
                                    action: format!("GET /api/orders/{n}?expand=items"),
                                    bytes: response.len(),
                                })
                                .expect("receiver alive"); // leak site: queued forever
                        }
                        black_box(response);
                    }
                })
            },
        ),
        Workload::new(
            "lasso-interned-paths",
            "request paths interned in a lasso Rodeo; 4 in 64 keep the order id in the path, so the interner's arena and tables grow with every request",
            Expected::Leak(vec![Metric::HeapBytes]),
            || {
                let mut rodeo = lasso::Rodeo::default();
                let mut rng = crate::Rng::new(43);
                let mut order = 0u64;
                Ok(move || {
                    for i in 0..64 {
                        let path = if i % 16 == 0 {
                            order += 1;
                            format!("/api/v2/users/{}/orders/{order}", order % 97) // leak site
                        } else {
                            format!(
                                "/api/v2/{}/{}",
                                ["users", "orders", "items", "carts"][i % 4],
                                rng.range(0, 10)
                            )
                        };
                        black_box(rodeo.get_or_intern(&path));
                    }
                })
            },
        ),
        Workload::new(
            "bumpalo-arena-never-reset",
            "a long-lived bumpalo arena used as per-request scratch for parsed headers and never reset: each request's ~1 KiB stays",
            Expected::Leak(vec![Metric::HeapBytes]),
            || {
                let arena = bumpalo::Bump::new();
                let raw = raw_request(16);
                let mut n = 0u64;
                Ok(move || {
                    n += 1;
                    let headers = parse_headers(&arena, &raw); // leak site: never arena.reset()
                    let response = crate::render_rows(n, headers.len());
                    black_box((headers.len(), response));
                })
            },
        ),
        Workload::new(
            "tracing-stored-spans",
            "50 request spans per iteration closed, but 2 job spans kept in a long-lived list of background jobs that is never pruned: the registry keeps them open",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                let dispatch = tracing::Dispatch::new(
                    tracing_subscriber::registry()
                        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
                );
                let mut jobs = Jobs {
                    dispatch: dispatch.clone(),
                    spans: Vec::new(),
                };
                let mut n = 0u64;
                Ok(move || {
                    let jobs = &mut jobs.spans;
                    tracing::dispatcher::with_default(&dispatch, || {
                        for i in 0..50 {
                            n += 1;
                            let span =
                                tracing::info_span!("request", id = n, route = "/api/orders");
                            let _entered = span.enter();
                            tracing::info!(status = 200, "done");
                            if i % 25 == 0 {
                                let job = tracing::info_span!("job", id = n, kind = "email");
                                job.in_scope(|| tracing::info!(queue = "mail", "queued"));
                                jobs.push(job); // leak site: finished jobs are never removed
                            }
                        }
                    });
                })
            },
        ),
        Workload::new(
            "serde-json-seen-ids",
            "event ids from serde_json batches appended to a Vec<u64> for de-duplication and never trimmed: one block whose capacity doubles",
            Expected::Leak(vec![Metric::HeapBytes]),
            || {
                let mut seen: Vec<u64> = Vec::new();
                let mut next = 0u64;
                let mut total = 0u64;
                Ok(move || {
                    let mut batch = String::from("[");
                    for i in 0..32 {
                        next += 1;
                        let sep = if i == 0 { "" } else { "," };
                        let _ = write!(
                            batch,
                            r#"{sep}{{"id":{next},"kind":"payment","amount":{},"memo":"{}"}}"#,
                            next % 500,
                            "m".repeat(200)
                        );
                    }
                    batch.push(']');
                    let events: Vec<Event> = serde_json::from_str(&batch).expect("valid batch");
                    for event in events {
                        if !seen.contains(&event.id) {
                            seen.push(event.id); // leak site: grows by 256 B per iteration
                            total +=
                                event.amount + event.kind.len() as u64 + event.memo.len() as u64;
                        }
                    }
                    black_box(total);
                })
            },
        ),
        Workload::new(
            "tokio-runtime-forgotten",
            "a client's reconnect path (every 3rd call) builds a one-worker tokio runtime and mem::forgets it to dodge the drop-in-async panic: its thread and epoll fds stay",
            Expected::Leak(vec![Metric::Threads, Metric::Fds, Metric::HeapBlocks]),
            || {
                let shared = crate::runtime(2)?;
                let mut call = 0u64;
                Ok(move || {
                    call += 1;
                    if call.is_multiple_of(3) {
                        let rt = crate::runtime(1).expect("runtime");
                        black_box(rt.block_on(crate::handle_request(call)));
                        std::mem::forget(rt); // leak site
                    } else {
                        black_box(shared.block_on(crate::handle_request(call)));
                    }
                })
            },
        ),
        Workload::new(
            "tempfile-abandoned-uploads",
            "uploads spooled to tempfile::NamedTempFile and tracked by upload id; every 4th client disconnects and its entry (an open fd) is never removed",
            Expected::Leak(vec![Metric::Fds]),
            || {
                let dir = tempfile::tempdir()?;
                let chunk = vec![42u8; 4096];
                let mut uploads: HashMap<u64, Upload> = HashMap::new();
                let mut id = 0u64;
                Ok(move || {
                    id += 1;
                    let mut file = tempfile::NamedTempFile::new_in(dir.path()).expect("temp file");
                    for _ in 0..8 {
                        file.write_all(&chunk).expect("write chunk");
                    }
                    let client = format!("client-{id}");
                    uploads.insert(
                        id,
                        Upload {
                            file,
                            client,
                            received: 8 * chunk.len(),
                        },
                    );
                    if !id.is_multiple_of(4) {
                        // The last chunk arrived: the upload is finished and removed (the
                        // file closed and deleted). A disconnected client's never is (leak site).
                        let done = uploads.remove(&id).expect("upload");
                        let stored = std::fs::read(done.file.path()).expect("read back");
                        black_box((done.received, done.client.len(), stored.len()));
                    }
                })
            },
        ),
        Workload::new(
            "dashmap-rate-limiter",
            "per-client token buckets in a DashMap keyed by address with ephemeral port: 252 requests on 200 kept-alive connections, 4 new connections a new entry each, never pruned",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                let limiter: dashmap::DashMap<String, Bucket> = dashmap::DashMap::new();
                let mut rng = crate::Rng::new(47);
                let mut connection = 0u64;
                Ok(move || {
                    for i in 0..256 {
                        let port = if i % 64 == 0 {
                            connection += 1;
                            10_000 + connection // a new connection (leak site)
                        } else {
                            rng.range(1_000, 1_200) // a kept-alive one
                        };
                        let peer = format!("203.0.113.{}:{port}", port % 251);
                        let mut bucket = limiter.entry(peer).or_insert_with(|| Bucket {
                            tokens: 10.0,
                            refilled: Instant::now(),
                        });
                        bucket.tokens -= 1.0;
                        black_box(bucket.refilled);
                    }
                })
            },
        ),
        Workload::new(
            "rayon-thread-local-memo",
            "a thread_local! memo inside rayon jobs keyed by request id (256 line items of 8 requests per iteration): each pool thread's cache only grows",
            Expected::Leak(vec![Metric::HeapBytes, Metric::HeapBlocks]),
            || {
                (0..64).into_par_iter().for_each(|i| {
                    black_box(i);
                });
                let mut request = 0u64;
                Ok(move || {
                    request += 1;
                    let base = request * 8;
                    let total: usize = (0..256u64)
                        .into_par_iter()
                        .map(|item| {
                            let key = base + item % 8;
                            let line = format!("item {item} of request {key}: {}", "x".repeat(64));
                            MEMO.with(|memo| {
                                let mut memo = memo.borrow_mut();
                                let quote =
                                    memo.entry(key).or_insert_with(|| format!("{key:0>120}")); // leak site
                                quote.len() + line.len()
                            })
                        })
                        .sum();
                    black_box(total);
                })
            },
        ),
    ]
}

async fn heartbeat(connection: u64, beats: Arc<AtomicU64>) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let frame = format!("PING {connection}").into_bytes();
    loop {
        every.tick().await;
        beats.fetch_add(frame.len() as u64, Ordering::Relaxed);
    }
}

struct Pending {
    reply: tokio::sync::oneshot::Sender<Vec<u8>>,
    #[allow(dead_code)] // kept for error messages
    method: String,
}

/// Background jobs to await at shutdown.
static BACKGROUND: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(0);

static PENDING: LazyLock<Mutex<HashMap<u64, Pending>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

type Handler = Box<dyn Fn(&str) + Send + Sync>;

struct Widget {
    title: String,
    state: Mutex<Vec<u8>>,
    history: Mutex<Vec<String>>,
    on_change: Mutex<Vec<Handler>>,
}

impl Widget {
    fn record(&self, event: &str) {
        self.history
            .lock()
            .expect("history")
            .push(event.to_string());
        self.state.lock().expect("state")[0] ^= 1;
    }

    fn subscribe(&self, handler: Handler) {
        self.on_change.lock().expect("handlers").push(handler);
    }

    fn emit(&self, event: &str) {
        for handler in self.on_change.lock().expect("handlers").iter() {
            handler(event);
        }
    }
}

#[allow(dead_code)] // read by the consumer that was never started
struct AuditEvent {
    user: String,
    action: String,
    bytes: usize,
}

/// An HTTP request head with `headers` header lines.
pub(crate) fn raw_request(headers: usize) -> String {
    let mut raw = String::from("GET /api/orders?page=2 HTTP/1.1\r\n");
    for i in 0..headers {
        let _ = write!(raw, "x-header-{i}: value-{i}-{}\r\n", "v".repeat(12));
    }
    raw
}

/// Headers parsed into `arena`: the pairs and copies of their text.
pub(crate) fn parse_headers<'a>(
    arena: &'a bumpalo::Bump,
    raw: &str,
) -> bumpalo::collections::Vec<'a, (&'a str, &'a str)> {
    let mut headers = bumpalo::collections::Vec::with_capacity_in(16, arena);
    for line in raw.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(": ") {
            headers.push((&*arena.alloc_str(name), &*arena.alloc_str(value)));
        }
    }
    headers
}

#[derive(Deserialize)]
struct Event {
    id: u64,
    kind: String,
    amount: u64,
    memo: String,
}

struct Upload {
    file: tempfile::NamedTempFile,
    client: String,
    received: usize,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// The list of background jobs' spans. Dropped under its own dispatcher: a span whose parent
/// closes with it is released through the thread's default dispatcher (tracing-subscriber's
/// registry), which outside `with_default` is the profiler's own and knows no such span.
struct Jobs {
    dispatch: tracing::Dispatch,
    spans: Vec<tracing::Span>,
}

impl Drop for Jobs {
    fn drop(&mut self) {
        let spans = std::mem::take(&mut self.spans);
        tracing::dispatcher::with_default(&self.dispatch, || drop(spans));
    }
}

thread_local! {
    static MEMO: std::cell::RefCell<HashMap<u64, String>> = std::cell::RefCell::new(HashMap::new());
}
