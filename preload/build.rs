// Compiles src/preload.c into $OUT_DIR/libmemcreep_preload.so with the C compiler the cc crate
// finds (the one the Rust toolchain links with), passing the shared layout as macros. Where
// that cannot be done (not Linux, no compiler) the library is empty and the reason is kept
// for the profiler to report: the build never fails for it.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
mod layout {
    include!("src/layout.rs");
}

fn main() {
    println!("cargo:rerun-if-changed=src/preload.c");
    println!("cargo:rerun-if-changed=src/layout.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let library = out.join("libmemcreep_preload.so");
    let why = out.join("unavailable.txt");
    let result = if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        compile(&library)
    } else {
        Err("the preload library is built for Linux only".to_string())
    };
    match result {
        Ok(()) => std::fs::write(&why, "").expect("write unavailable.txt"),
        Err(reason) => {
            println!("cargo:warning=memcreep-preload: {reason}");
            std::fs::write(&library, b"").expect("write an empty library");
            std::fs::write(&why, reason).expect("write unavailable.txt");
        }
    }
}

fn compile(library: &Path) -> Result<(), String> {
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .try_get_compiler()
        .map_err(|e| format!("no C compiler: {e}"))?;
    let mut cmd = compiler.to_command();
    cmd.args([
        "-shared",
        "-fPIC",
        "-O2",
        "-g0",
        "-fomit-frame-pointer",
        "-std=gnu11",
        "-fvisibility=hidden",
        "-ftls-model=initial-exec",
        // Our own code must never turn into calls to the functions it defines (a loop into
        // memset is harmless; malloc+memset into calloc is not).
        "-fno-builtin",
        "-pthread",
        "-Wall",
        "-Wextra",
    ]);
    for (name, value) in defines() {
        cmd.arg(format!("-DMC_{name}={value}"));
    }
    // Its constructor runs before every other library's (see memcreep_start in preload.c).
    cmd.arg("-Wl,-z,initfirst");
    cmd.arg("src/preload.c").arg("-o").arg(library).arg("-ldl");
    let output = cmd
        .output()
        .map_err(|e| format!("could not run the C compiler ({cmd:?}): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the C compiler failed on src/preload.c: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines().filter(|l| l.contains("warning")) {
        println!("cargo:warning=preload.c: {line}");
    }
    Ok(())
}

fn defines() -> Vec<(&'static str, String)> {
    use layout::*;
    let string = |s: &str| format!("\"{s}\"");
    vec![
        ("MAGIC", format!("{MAGIC:#x}ULL")),
        ("VERSION", VERSION.to_string()),
        ("HEADER_SIZE", HEADER_SIZE.to_string()),
        ("H_MAGIC", H_MAGIC.to_string()),
        ("H_VERSION", H_VERSION.to_string()),
        ("H_SLOTS", H_SLOTS.to_string()),
        ("H_RING", H_RING.to_string()),
        ("H_ROOT_PID", H_ROOT_PID.to_string()),
        ("H_PROCESSES", H_PROCESSES.to_string()),
        ("H_FLAGS", H_FLAGS.to_string()),
        ("H_USED", H_USED.to_string()),
        ("H_DECLINED", H_DECLINED.to_string()),
        ("H_HWM", H_HWM.to_string()),
        ("H_EXITED_ALLOCATIONS", H_EXITED_ALLOCATIONS.to_string()),
        ("H_EXITED_ALLOCATED", H_EXITED_ALLOCATED.to_string()),
        ("H_RECLAIMS", H_RECLAIMS.to_string()),
        ("H_EPOCH", H_EPOCH.to_string()),
        ("H_LINES", H_LINES.to_string()),
        ("FLAG_OUT_OF_SLOTS", FLAG_OUT_OF_SLOTS.to_string()),
        ("FLAG_LINE_SKIPPED", FLAG_LINE_SKIPPED.to_string()),
        ("SLOTS", SLOTS.to_string()),
        ("SLOT_SIZE", SLOT_SIZE.to_string()),
        ("S_OWNER", S_OWNER.to_string()),
        ("S_IN_USE", S_IN_USE.to_string()),
        ("S_LIVE_BYTES", S_LIVE_BYTES.to_string()),
        ("S_ALLOCATIONS", S_ALLOCATIONS.to_string()),
        ("S_FREES", S_FREES.to_string()),
        ("S_ALLOCATED_BYTES", S_ALLOCATED_BYTES.to_string()),
        ("S_PEAK", S_PEAK.to_string()),
        ("S_PUBLISHED", S_PUBLISHED.to_string()),
        ("S_RESET_CALLS", S_RESET_CALLS.to_string()),
        ("RECORD", RECORD.to_string()),
        ("R_SUM", R_SUM.to_string()),
        ("R_PEAK", R_PEAK.to_string()),
        ("PUBLISH_BEYOND", PUBLISH_BEYOND.to_string()),
        ("DEAD", format!("{DEAD}U")),
        ("RECLAIMING", format!("{RECLAIMING}U")),
        ("RING", RING.to_string()),
        ("ENTRY_SIZE", ENTRY_SIZE.to_string()),
        ("E_SEQ", E_SEQ.to_string()),
        ("E_HASH", E_HASH.to_string()),
        ("E_LIVE_BYTES", E_LIVE_BYTES.to_string()),
        ("E_BLOCKS", E_BLOCKS.to_string()),
        ("E_ALLOCATED_BYTES", E_ALLOCATED_BYTES.to_string()),
        ("E_ALLOCATIONS", E_ALLOCATIONS.to_string()),
        ("E_EPOCH", E_EPOCH.to_string()),
        ("E_PID", E_PID.to_string()),
        ("PEAK_SIZE", PEAK_SIZE.to_string()),
        ("SLOTS_OFFSET", SLOTS_OFFSET.to_string()),
        ("RINGS_OFFSET", RINGS_OFFSET.to_string()),
        ("PEAKS_OFFSET", PEAKS_OFFSET.to_string()),
        ("REGION_SIZE", REGION_SIZE.to_string()),
        ("ENV_FILE", string(ENV_FILE)),
        ("ENV_LINES", string(ENV_LINES)),
        ("ENV_CHILDREN", string(ENV_CHILDREN)),
        ("FNV_OFFSET", format!("{FNV_OFFSET:#x}ULL")),
        ("FNV_PRIME", format!("{FNV_PRIME:#x}ULL")),
    ]
}
