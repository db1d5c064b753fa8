//! Exact fd and thread counts from both probe backends. One test: counts are process-wide.

use profiler::probe::{Backend, Probe, Target};

fn both_backends_count_fds_and_threads_exactly() {
    for backend in [Backend::Procfs, Backend::Sysinfo] {
        let mut probe = Probe::with_backend(Target::Current, backend);
        let before = probe.read();
        let files: Vec<std::fs::File> = (0..3)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    let _ = rx.lock().unwrap().recv();
                })
            })
            .collect();
        let during = probe.read();
        drop(tx);
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(files);
        // `join` returns once the kernel has cleared the thread's id, which it does before the
        // task leaves /proc/self/task: a joined thread may be listed for a moment more (seen
        // in 2 of 40 runs). Read again until it is gone, for at most 2 s; a thread really left
        // behind still fails below.
        let mut after = probe.read();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while after.threads != before.threads && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
            after = probe.read();
        }
        assert_eq!(during.fds.unwrap(), before.fds.unwrap() + 3, "{backend:?}");
        assert_eq!(
            during.threads.unwrap(),
            before.threads.unwrap() + 2,
            "{backend:?}"
        );
        assert_eq!(after.fds, before.fds, "{backend:?}");
        assert_eq!(after.threads, before.threads, "{backend:?}");
        assert!(during.rss_bytes.unwrap() > 1 << 20, "{backend:?}");
        assert!(
            during.vsize_bytes.unwrap() >= during.rss_bytes.unwrap(),
            "{backend:?}"
        );
        let own = Probe::new(Target::Pid(std::process::id())).read();
        assert_eq!(
            own.threads, after.threads,
            "a pid probe reads the same process"
        );
    }
}

/// `harness = false` (see profiler/Cargo.toml): no libtest threads run beside the check, so
/// process-wide counts see nothing but it.
fn main() {
    both_backends_count_fds_and_threads_exactly();
    println!("probe: ok");
}
