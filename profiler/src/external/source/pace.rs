// Owns how marker lines arrive: counted, never kept, so that a run of any length stays
// bounded. Never reads the program's output itself.

use std::time::{Duration, Instant};

/// How marker lines arrived: counted, not kept, so that a run of any length stays bounded.
#[derive(Debug, Default)]
pub(crate) struct MarkerPace {
    /// Marker lines seen.
    count: u64,
    /// Marker lines that came within 2 ms of the previous one.
    close: u64,
    last: Option<Instant>,
}

impl MarkerPace {
    /// Marker lines seen.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn record(&mut self, at: Instant) {
        if self
            .last
            .is_some_and(|last| at.saturating_duration_since(last) < Duration::from_millis(2))
        {
            self.close += 1;
        }
        self.count += 1;
        self.last = Some(at);
    }

    /// A note when most marker lines arrived within 2 ms of the previous one: the program
    /// very likely buffers its output, and the samples then do not fall at its iteration
    /// boundaries.
    pub(crate) fn bunched(&self) -> Option<String> {
        if self.count < 5 {
            return None;
        }
        let (close, gaps) = (self.close, self.count - 1);
        (close * 2 > gaps).then(|| {
            format!(
                "{close} of {gaps} marker lines arrived within 2 ms of the previous one: the \
                 program buffers its output when it is not a terminal, or its iterations are \
                 shorter than the profiler can follow, so samples taken together miss its \
                 iteration boundaries; flush after each marker line (Python: print(..., \
                 flush=True) or PYTHONUNBUFFERED=1; C: fflush(stdout)), or do more per \
                 iteration"
            )
        })
    }
}
