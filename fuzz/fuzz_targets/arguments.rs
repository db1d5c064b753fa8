//! Size and tolerance arguments (--max-peak 64MiB, --tolerance allocated=5%) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::baseline::Tolerances;
use profiler::budget::parse_size;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_size(text);
    let _ = Tolerances::default().apply(text);
});
