//! `corpus`: workloads on published crates (tokio, rayon, crossbeam, moka, dashmap, bumpalo,
//! regex, tracing, serde_json, lru, lasso, tempfile), about half leaking the way real code
//! leaks and half clean, run through the profiler's own command line. Kept apart from the
//! catalog (bench-suite): the catalog tests the profiler's parts, the corpus measures its
//! verdicts on code as people write it. `scripts/corpus.sh` runs it and counts the verdicts.
//!
//! Each workload's description says which real-code pattern it stands for. A leaking workload
//! leaks roughly 64 B to a few KiB per iteration (or one fd/thread every few iterations); a
//! clean one holds steady after its warm-up, however noisy its background threads are.

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

mod clean;
mod leaking;

fn main() -> std::process::ExitCode {
    let mut workloads = leaking::leaking();
    workloads.extend(clean::clean());
    profiler::cli::main(workloads)
}

/// A tiny deterministic generator (splitmix64) so that every run does the same work.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// A multi-thread tokio runtime with `workers` worker threads and timers, as a server builds.
pub(crate) fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

/// A page of `rows` table rows for request `n` (about 100 B a row): the response a handler
/// renders and frees.
pub(crate) fn render_rows(n: u64, rows: usize) -> String {
    let mut page = String::with_capacity(64 + rows * 100);
    page.push_str("<table class=\"orders\">");
    for r in 0..rows {
        use std::fmt::Write as _;
        let _ = write!(
            page,
            "<tr><td>{n}</td><td>{r}</td><td>order {}</td><td>{}</td></tr>",
            n * 31 + r as u64,
            ["pending", "paid", "shipped"][r % 3]
        );
    }
    page.push_str("</table>");
    page
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Request {
    id: u64,
    path: String,
    tags: Vec<String>,
}

/// An async request handler: parses a JSON request, renders a response, yields once.
pub(crate) async fn handle_request(id: u64) -> usize {
    let body = serde_json::to_string(&Request {
        id,
        path: format!("/api/orders/{}", id % 1_000),
        tags: vec!["web".into(), "v2".into()],
    })
    .expect("serialisable");
    let request: Request = serde_json::from_str(&body).expect("valid request");
    tokio::task::yield_now().await;
    render_rows(request.id, 4 + request.tags.len()).len() + request.path.len()
}
