// Owns the criterion measurements of bytes and allocations per call, read from the allocator's
// counters, and how criterion writes their values. Must never read a clock nor keep a count itself.

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};

use crate::alloc;
use crate::format::byte_unit;

fn counters() -> alloc::HeapCounters {
    alloc::heap().expect(
        "profiler: bench measurements need `#[global_allocator] static ALLOC: profiler::Alloc = \
         profiler::Alloc::new();` in the bench binary",
    )
}

/// Criterion measurement: bytes allocated (freed or not) by the routine, all threads.
pub struct AllocatedBytes;

/// Criterion measurement: allocations made by the routine, all threads.
pub struct Allocations;

/// A criterion measurement reading one of the allocator's process-wide counters: the
/// difference over the routine, formatted by `$formatter`.
macro_rules! counter_measurement {
    ($name:ident, $field:ident, $formatter:ident) => {
        impl Measurement for $name {
            type Intermediate = i64;
            type Value = i64;
            fn start(&self) -> i64 {
                counters().$field
            }
            fn end(&self, start: i64) -> i64 {
                counters().$field - start
            }
            fn add(&self, a: &i64, b: &i64) -> i64 {
                a + b
            }
            fn zero(&self) -> i64 {
                0
            }
            fn to_f64(&self, v: &i64) -> f64 {
                *v as f64
            }
            fn formatter(&self) -> &dyn ValueFormatter {
                &$formatter
            }
        }
    };
}

counter_measurement!(AllocatedBytes, allocated_bytes, BYTES_FORMATTER);
counter_measurement!(Allocations, allocations, COUNT_FORMATTER);

/// Divide `values` by `factor`; returns `unit`.
fn scale(values: &mut [f64], (factor, unit): (f64, &'static str)) -> &'static str {
    for v in values.iter_mut() {
        *v /= factor;
    }
    unit
}

/// Criterion's unit for a number of allocations around `typical` (the byte units are
/// [`byte_unit`]'s, as in every other output).
fn alloc_unit(typical: f64) -> (f64, &'static str) {
    match typical.abs() {
        t if t >= 1e6 => (1e6, "M allocs"),
        t if t >= 1e3 => (1e3, "k allocs"),
        _ => (1.0, "allocs"),
    }
}

fn per_unit_of_throughput(throughput: &Throughput, values: &mut [f64]) -> &'static str {
    let (n, unit) = match throughput {
        Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (*n as f64, "/byte"),
        Throughput::Elements(n) => (*n as f64, "/element"),
        Throughput::Bits(n) => (*n as f64, "/bit"),
        Throughput::ElementsAndBytes { elements, .. } => (*elements as f64, "/element"),
    };
    for v in values.iter_mut() {
        *v /= n.max(1.0);
    }
    unit
}

/// How a counter's values read in criterion's output: the unit chosen for a typical value,
/// the units per byte, bit and element of throughput, and the name for machines.
struct CounterFormatter {
    unit: fn(f64) -> (f64, &'static str),
    per: [&'static str; 3],
    machines: &'static str,
}

const BYTES_FORMATTER: CounterFormatter = CounterFormatter {
    unit: byte_unit,
    per: ["B allocated/byte", "B allocated/bit", "B allocated/element"],
    machines: "bytes",
};

const COUNT_FORMATTER: CounterFormatter = CounterFormatter {
    unit: alloc_unit,
    per: ["allocs/byte", "allocs/bit", "allocs/element"],
    machines: "allocations",
};

impl ValueFormatter for CounterFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        scale(values, (self.unit)(typical))
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        match per_unit_of_throughput(t, values) {
            "/byte" => self.per[0],
            "/bit" => self.per[1],
            _ => self.per[2],
        }
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        self.machines
    }
}
