// Owns keeping a run's boundary samples within a memory bound: past the bound, neighbours are
// merged pairwise so the stored series stays evenly spaced. Must never drop a peak.

//! A run of a million iterations must not take a gigabyte to remember. Up to
//! [`MAX_STORED_SAMPLES`] boundary samples are kept as they are (192 B each); when the store is
//! full, neighbours are merged pairwise and from then on every stored sample covers twice as
//! many iterations (`Sample::span`). A merged sample keeps the state at the end of its span
//! (heap, blocks, RSS, fds, threads), the highest heap peak within it, and the mean per
//! iteration of the per-iteration quantities (bytes and allocations allocated, wall and CPU
//! time). The series stays evenly spaced, so the verdict judges it as it is, each sample at
//! the iteration it ends. Samples between boundaries ([`Thinned`]) are bounded the same way.

use std::sync::{Arc, Mutex};

use crate::sample::Sample;

/// Boundary samples kept after the baseline before merging: 65,536 x 192 B = 12 MiB at most,
/// whatever the run.
pub const MAX_STORED_SAMPLES: usize = 1 << 16;

/// Boundary samples of one run, thinned by merging past a bound.
pub(crate) struct SampleStore {
    samples: Vec<Sample>,
    /// Most samples kept after the baseline (even, so that they merge in pairs).
    cap: usize,
    /// Iterations each stored sample (after the baseline) covers.
    span: u32,
    /// The bucket being filled: samples merged so far.
    pending: Option<Sample>,
}

impl SampleStore {
    /// A store keeping the baseline and at most `cap` more samples (rounded up to an even
    /// number, at least 2); `expected` sizes the first buffer.
    pub(crate) fn new(cap: usize, expected: usize) -> Self {
        let cap = cap.max(2).next_multiple_of(2);
        let expected = expected.min(cap + 1);
        // Touch the buffer now: its pages then count in RSS from the first sample on, instead
        // of showing up as the measured process's RSS growth during the run.
        let mut samples = vec![Sample::default(); expected];
        samples.clear();
        SampleStore {
            samples,
            cap,
            span: 1,
            pending: None,
        }
    }

    /// A store shared with a watcher that may need the samples so far (a run abandoned while
    /// an iteration hangs): the one copy of a run's samples, never a second one.
    pub(crate) fn shared(cap: usize, expected: usize) -> SharedStore {
        Arc::new(Mutex::new(SampleStore::new(cap, expected)))
    }

    /// Make room for `expected` samples in all (a shared store made before the run knew).
    pub(crate) fn reserve(&mut self, expected: usize) {
        let expected = expected.min(self.cap + 1);
        if expected > self.samples.capacity() {
            let len = self.samples.len();
            self.samples.resize(expected, Sample::default());
            self.samples.truncate(len);
        }
    }

    pub(crate) fn push(&mut self, sample: Sample) {
        if self.samples.is_empty() {
            self.samples.push(sample);
            return;
        }
        let merged = match self.pending.take() {
            None => sample,
            Some(p) => merge(&p, &sample),
        };
        if merged.span < self.span {
            self.pending = Some(merged);
        } else if self.samples.len() > self.cap {
            // Full: merge pairs; this sample opens the first bucket of the doubled span.
            self.thin();
            self.pending = Some(merged);
        } else {
            self.samples.push(merged);
        }
    }

    /// Merge neighbours pairwise (the baseline sample stays alone); the span doubles.
    fn thin(&mut self) {
        let merged: Vec<Sample> = self.samples[1..]
            .chunks_exact(2)
            .map(|pair| merge(&pair[0], &pair[1]))
            .collect();
        self.samples.truncate(1);
        self.samples.extend(merged);
        self.span *= 2;
    }

    /// Every sample stored, a partly filled last bucket included.
    pub(crate) fn as_slice(&self) -> &[Sample] {
        &self.samples
    }

    /// The stored samples plus the partly filled bucket, if any.
    pub(crate) fn finish(mut self) -> Vec<Sample> {
        if let Some(p) = self.pending.take() {
            self.samples.push(p);
        }
        self.samples
    }

    /// A copy of what [`SampleStore::finish`] would give, leaving the store as it is.
    pub(crate) fn snapshot(&self) -> Vec<Sample> {
        let mut v = self.samples.clone();
        v.extend(self.pending);
        v
    }

    /// Take the samples out, leaving an empty store.
    pub(crate) fn take(&mut self) -> Vec<Sample> {
        std::mem::replace(self, SampleStore::new(self.cap, 0)).finish()
    }
}

/// A run's boundary samples, shared between the engine and whoever watches it.
pub(crate) type SharedStore = Arc<Mutex<SampleStore>>;

/// Samples between boundaries kept before every other one is dropped: 262,144 x 48 B =
/// 12 MiB at most, like the boundary samples.
pub const MAX_INTERVAL_SAMPLES: usize = 1 << 18;

/// A stream of items kept within `cap`, evenly: when full, every other item is dropped and
/// from then on only every other one offered is kept (the stride doubles).
#[derive(Debug)]
pub struct Thinned<T> {
    items: Vec<T>,
    cap: usize,
    /// Items offered per item kept.
    stride: u64,
    offered: u64,
}

impl<T> Thinned<T> {
    pub fn new(cap: usize) -> Self {
        Thinned {
            items: Vec::new(),
            cap: cap.max(2),
            stride: 1,
            offered: 0,
        }
    }

    pub fn push(&mut self, item: T) {
        // Item k offered is kept when k is a multiple of the stride: items[i] is the
        // (i x stride)-th offered, so dropping the odd ones keeps that true at twice the stride.
        let k = self.offered;
        self.offered += 1;
        if !k.is_multiple_of(self.stride) {
            return;
        }
        if self.items.len() >= self.cap {
            let mut i = 0;
            self.items.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
            if !k.is_multiple_of(self.stride) {
                return;
            }
        }
        self.items.push(item);
    }

    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

/// `a` then `b` (consecutive): one sample covering both spans.
pub(crate) fn merge(a: &Sample, b: &Sample) -> Sample {
    let (na, nb) = (f64::from(a.span.max(1)), f64::from(b.span.max(1)));
    let mean_f = |x: Option<f64>, y: Option<f64>| Some((x? * na + y? * nb) / (na + nb));
    let mean_i = |x: Option<i64>, y: Option<i64>| {
        Some(((x? as f64 * na + y? as f64 * nb) / (na + nb)).round() as i64)
    };
    Sample {
        span: a.span.max(1) + b.span.max(1),
        heap_peak_bytes: match (a.heap_peak_bytes, b.heap_peak_bytes) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
        allocated_bytes: mean_i(a.allocated_bytes, b.allocated_bytes),
        allocations: mean_i(a.allocations, b.allocations),
        duration_ms: mean_f(a.duration_ms, b.duration_ms),
        cpu_ms: mean_f(a.cpu_ms, b.cpu_ms),
        ..*b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinned_items_stay_bounded_and_evenly_spaced() {
        let mut kept = Thinned::new(8);
        for i in 0..1000u64 {
            kept.push(i);
        }
        let items = kept.into_items();
        assert!(items.len() <= 8, "{items:?}");
        let stride = items[1] - items[0];
        assert_eq!(items[0], 0);
        assert!(items.windows(2).all(|w| w[1] - w[0] == stride), "{items:?}");
        assert!(items.last().unwrap() + stride >= 1000, "{items:?}");
    }

    fn sample(i: u32) -> Sample {
        Sample {
            iteration: i,
            span: 1,
            heap_bytes: Some(i64::from(i) * 100),
            heap_peak_bytes: Some(if i == 777 {
                1 << 30
            } else {
                i64::from(i) * 100 + 50
            }),
            allocated_bytes: Some(1000),
            duration_ms: Some(2.0),
            ..Sample::default()
        }
    }

    #[test]
    fn a_long_run_stays_bounded_evenly_spaced_and_keeps_its_peak() {
        let mut store = SampleStore::new(64, 64);
        for i in 0..=1000 {
            store.push(sample(i));
        }
        let s = store.finish();
        assert!(s.len() <= 66, "{}", s.len());
        assert_eq!(s[0].iteration, 0);
        assert_eq!(
            s.last().unwrap().iteration,
            1000,
            "the last iteration is kept"
        );
        let span = s[1].span;
        assert_eq!(span, 16);
        for w in s[1..s.len() - 1].windows(2) {
            assert_eq!(w[1].iteration - w[0].iteration, span, "evenly spaced");
        }
        assert_eq!(
            s.iter().filter_map(|x| x.heap_peak_bytes).max(),
            Some(1 << 30)
        );
        assert!(
            s.iter().skip(1).all(|x| x.allocated_bytes == Some(1000)),
            "means per iteration"
        );
        assert!(s.iter().skip(1).all(|x| x.duration_ms == Some(2.0)));
        assert_eq!(
            s[5].heap_bytes,
            Some(i64::from(s[5].iteration) * 100),
            "state at the end"
        );
    }

    #[test]
    fn a_short_run_is_untouched() {
        let mut store = SampleStore::new(MAX_STORED_SAMPLES, 21);
        for i in 0..=20 {
            store.push(sample(i));
        }
        let s = store.finish();
        assert_eq!(s.len(), 21);
        assert!(s.iter().all(|x| x.span == 1));
    }
}
