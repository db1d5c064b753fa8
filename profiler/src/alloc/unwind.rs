// Owns the backtrace of a sampled allocation: the calling thread's return addresses, unwound
// from .eh_frame with a cache of unwind rules, each rule checked once against libgcc's walk.
// Must never give a stack libgcc would not (anything unverified or unusual is walked by
// libgcc), never read outside the thread's own stack, and never call the loader from inside
// an allocation.

//! Sampled backtraces without interpreting the CFI anew for every frame.
//!
//! The system unwinder (libgcc's, behind the `backtrace` crate) finds each frame's FDE and
//! runs its CFI program on every walk: 85% of what a sample cost. This module unwinds with
//! `framehop`, which keeps the unwind rule of each return address it met in a cache, so a call
//! path seen before unwinds at the cost of a few loads per frame.
//!
//! **Checked against libgcc.** Where framehop has no rule it can use (no FDE, CFI it cannot
//! evaluate, such as a signal frame's or a realigned stack's), it quietly follows the frame
//! pointer, which in code built without one gives plausible and wrong frames. So a walk is
//! taken only when every frame in it was *verified*: the first time a return address is met,
//! the sample is walked by libgcc too, and each address whose next frame (or end) framehop got
//! the same is remembered as verified; that sample uses libgcc's walk. Rules are per address
//! and fixed, so a call path is walked twice once, and cheaply after.
//!
//! **Modules.** [`prepare`] (called when sampling is switched on and at each run's start,
//! never inside an allocation) lists the objects loaded in the process with
//! `dl_iterate_phdr`: for each, its code's range and its `.eh_frame_hdr` and `.eh_frame` as
//! the loader mapped them. A shared object is kept only once it is pinned (`RTLD_NODELETE`),
//! so the memory read here can never be unmapped under a walk: a library loaded when sampling
//! starts stays loaded for the life of the process (`dlclose` no longer unloads it). A return
//! address outside every listed object's code (a library loaded after [`prepare`], a JIT)
//! leaves the walk to libgcc.
//!
//! **Reads** of stack memory are bounded by the thread's own stack (from
//! `pthread_getattr_np`, once per thread): a walk on another stack (a coroutine's, a signal
//! stack) is left to libgcc.
//!
//! **Which frames.** A frame is kept when its stack pointer is above `ceiling` (the address
//! of a local of the sampler: the sampler's frames, the one holding it included, are left
//! out) and its canonical frame address is not above `floor` (the address of a local of the
//! workload's caller: that frame and its callers are left out). Both walks compare the same.

/// The calling thread's return addresses, innermost first, into `ips` (at most its length):
/// the frames whose stack pointer is at or below `ceiling` (the frame holding it included),
/// and those whose canonical frame address is above `floor` (the frame holding it included),
/// left out. Returns how many.
#[inline(never)]
pub(super) fn backtrace(ceiling: usize, floor: usize, ips: &mut [usize]) -> usize {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        imp::backtrace(ceiling, floor, ips)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        by_libgcc(ceiling, floor, ips).0
    }
}

/// List the loaded objects for [`backtrace`] (again: objects loaded since are added).
pub(super) fn prepare() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    imp::prepare();
}

/// libgcc's walk (through the `backtrace` crate), with the same frames left out as
/// [`backtrace`]'s: how many it put in `ips`, and the return address after the last one when
/// `ips` was too short for the stack.
#[inline(never)]
fn by_libgcc(ceiling: usize, floor: usize, ips: &mut [usize]) -> (usize, Option<usize>) {
    let (mut depth, mut after) = (0, None);
    // A frame kept by the ceiling, waiting for its caller's stack pointer (its own canonical
    // frame address) to be compared with the floor.
    let mut pending: Option<usize> = None;
    // SAFETY: unsynchronized tracing is only unsafe on Windows' dbghelp; on the platforms this
    // builds for it walks the stack with the system unwinder, which does not call back into
    // the Rust allocator.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            // This frame's stack pointer: libgcc's canonical frame address of its callee.
            let sp = frame.sp() as usize;
            if let Some(ip) = pending.take() {
                if sp > floor {
                    return false;
                }
                if depth == ips.len() {
                    after = Some(ip);
                    return false;
                }
                ips[depth] = ip;
                depth += 1;
            }
            if sp > ceiling {
                pending = Some(frame.ip() as usize);
            }
            true
        })
    };
    // The outermost frame, whose caller is not known.
    if let Some(ip) = pending {
        if depth < ips.len() {
            ips[depth] = ip;
            depth += 1;
        } else {
            after = Some(ip);
        }
    }
    // libgcc reports the outermost frame (the thread's clone) with an address of 0.
    while depth > 0 && ips[depth - 1] == 0 {
        depth -= 1;
    }
    (depth, after)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use std::cell::Cell;
    use std::collections::HashSet;
    use std::ffi::{CStr, CString};
    use std::hash::{BuildHasherDefault, Hasher};
    use std::ops::Range;
    use std::sync::Mutex;

    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};

    type Data = &'static [u8];

    /// Return addresses are well spread already: a multiply is hash enough.
    #[derive(Default)]
    struct AddressHasher(u64);

    impl Hasher for AddressHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
            }
        }
        fn write_u64(&mut self, n: u64) {
            let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            self.0 = h ^ (h >> 29);
        }
        fn write_usize(&mut self, n: usize) {
            self.write_u64(n as u64);
        }
    }

    type Addresses = HashSet<usize, BuildHasherDefault<AddressHasher>>;

    struct State {
        unwinder: UnwinderX86_64<Data>,
        cache: CacheX86_64,
        /// The listed objects' code (executable segments), sorted.
        code: Vec<Range<u64>>,
        /// Return addresses whose framehop rule gave the same next frame as libgcc.
        verified: Addresses,
        /// Shared objects pinned so far (each only once).
        pinned: Vec<CString>,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    thread_local! {
        /// Whether this thread's last walk was framehop's (for tests).
        #[cfg(test)]
        pub(super) static FROM_FRAMEHOP: Cell<bool> = const { Cell::new(false) };

        /// This thread's stack, `[low, high)`; `(0, 0)` before the first walk, `(1, 1)` when
        /// it cannot be known.
        static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// One loaded object: its ranges and unwind sections, as mapped.
    struct Object {
        name: String,
        range: Range<u64>,
        code: Vec<Range<u64>>,
        /// Its lowest segment's address in the file, and where it is loaded.
        base_svma: u64,
        base_avma: u64,
        eh_frame_hdr: (Range<u64>, Data),
        eh_frame: (Range<u64>, Data),
    }

    /// `len` bytes at `addr`, mapped by the loader for as long as the object stays loaded.
    fn mapped(addr: u64, len: u64) -> Data {
        // SAFETY: ranges of a loaded object's PT_LOAD segments, readable for as long as the
        // object is loaded (pinned, or the main program).
        unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) }
    }

    /// What `dl_iterate_phdr`'s callbacks fill: the names of the shared objects loaded, or the
    /// objects themselves (those whose name is in `pinned`, and the main program).
    struct Listing {
        pinned: Vec<CString>,
        names: Vec<CString>,
        objects: Vec<Object>,
    }

    unsafe extern "C" fn visit_names(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        out: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info with a NUL-terminated name; `out` is the
        // Listing given to dl_iterate_phdr.
        let (name, out) = unsafe {
            (
                CStr::from_ptr((*info).dlpi_name),
                &mut *(out as *mut Listing),
            )
        };
        if !name.is_empty() {
            out.names.push(name.to_owned());
        }
        0
    }

    unsafe extern "C" fn visit_objects(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        out: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: as in `visit_names`.
        let (info, out) = unsafe { (&*info, &mut *(out as *mut Listing)) };
        // SAFETY: a NUL-terminated name, empty for the main program.
        let name = unsafe { CStr::from_ptr(info.dlpi_name) };
        if name.is_empty() || out.pinned.iter().any(|p| p.as_c_str() == name) {
            // SAFETY: `info` as the loader gave it.
            if let Some(object) = unsafe { object_of(info) } {
                out.objects.push(object);
            }
        }
        0
    }

    /// # Safety
    /// `info` as `dl_iterate_phdr` gives it.
    unsafe fn object_of(info: &libc::dl_phdr_info) -> Option<Object> {
        let bias = info.dlpi_addr;
        // SAFETY: dlpi_phnum headers at dlpi_phdr.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let loads: Vec<&libc::Elf64_Phdr> = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD)
            .collect();
        let base_svma = loads.iter().map(|h| h.p_vaddr).min()?;
        let end_svma = loads.iter().map(|h| h.p_vaddr + h.p_memsz).max()?;
        let code = loads
            .iter()
            .filter(|h| h.p_flags & libc::PF_X != 0)
            .map(|h| bias + h.p_vaddr..bias + h.p_vaddr + h.p_memsz)
            .collect();
        let hdr = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME)?;
        let hdr_at = bias + hdr.p_vaddr;
        let hdr_data = mapped(hdr_at, hdr.p_memsz);
        // Version 1, the pointer to .eh_frame pc-relative signed 4 bytes, and a search table
        // (count and entries present, entries relative to the header, signed 4 bytes): what
        // linkers write. framehop finds FDEs through that table; without one, it would
        // follow the frame pointer for every frame of the object.
        if hdr_data.len() < 12 || hdr_data[..4] != [1, 0x1b, 0x03, 0x3b] {
            return None;
        }
        let field = i32::from_le_bytes(hdr_data[4..8].try_into().ok()?);
        let eh_frame_at = (hdr_at + 4).checked_add_signed(i64::from(field))?;
        // .eh_frame runs to at most the end of its segment: the header's table gives each
        // FDE's offset, so bytes after its end are never read as entries.
        let segment = loads
            .iter()
            .map(|h| bias + h.p_vaddr..bias + h.p_vaddr + h.p_memsz)
            .find(|r| r.contains(&eh_frame_at))?;
        let eh_frame_len = segment.end - eh_frame_at;
        // SAFETY: a NUL-terminated name, empty for the main program.
        let name = unsafe { CStr::from_ptr(info.dlpi_name) };
        Some(Object {
            name: name.to_string_lossy().into_owned(),
            range: bias + base_svma..bias + end_svma,
            code,
            base_svma,
            base_avma: bias + base_svma,
            eh_frame_hdr: (hdr.p_vaddr..hdr.p_vaddr + hdr.p_memsz, hdr_data),
            eh_frame: (
                eh_frame_at - bias..eh_frame_at - bias + eh_frame_len,
                mapped(eh_frame_at, eh_frame_len),
            ),
        })
    }

    /// Keep the loaded object `name` loaded for good (`RTLD_NODELETE`), if it is.
    fn pin(name: &CStr) -> bool {
        // SAFETY: NOLOAD only looks the object up; NODELETE marks it never to be unloaded.
        let handle = unsafe {
            libc::dlopen(
                name.as_ptr(),
                libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            )
        };
        !handle.is_null()
    }

    pub(super) fn prepare() {
        // No lock is held while the loader is called: a thread inside `dlopen` may be
        // allocating (a library's constructor), and its samples wait for the lock.
        let pinned = STATE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.pinned.clone())
            .unwrap_or_default();
        let mut listing = Listing {
            pinned,
            names: Vec::new(),
            objects: Vec::new(),
        };
        // The shared objects are pinned between two listings (not from inside the loader's
        // callback): those listed the second time and pinned can no longer be unloaded. A name
        // listed twice (the same library in two namespaces) is left out: which one a pin
        // would hold is not known.
        // SAFETY: the callbacks only read what the loader gives them and fill `listing`.
        unsafe { libc::dl_iterate_phdr(Some(visit_names), (&raw mut listing).cast()) };
        let names = std::mem::take(&mut listing.names);
        for name in &names {
            let once = names.iter().filter(|n| *n == name).count() == 1;
            if once && !listing.pinned.contains(name) && pin(name) {
                listing.pinned.push(name.clone());
            }
        }
        listing
            .pinned
            .retain(|p| names.iter().filter(|n| *n == p).count() == 1);
        // SAFETY: as above.
        unsafe { libc::dl_iterate_phdr(Some(visit_objects), (&raw mut listing).cast()) };
        let mut unwinder = UnwinderX86_64::new();
        let mut code = Vec::new();
        for object in listing.objects {
            let info = ExplicitModuleSectionInfo {
                base_svma: object.base_svma,
                eh_frame_svma: Some(object.eh_frame.0),
                eh_frame: Some(object.eh_frame.1),
                eh_frame_hdr_svma: Some(object.eh_frame_hdr.0),
                eh_frame_hdr: Some(object.eh_frame_hdr.1),
                ..Default::default()
            };
            code.extend(object.code);
            unwinder.add_module(Module::new(
                object.name,
                object.range,
                object.base_avma,
                info,
            ));
        }
        code.sort_unstable_by_key(|r| r.start);
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        let (cache, verified, mut pinned) = match state.take() {
            Some(s) => (s.cache, s.verified, s.pinned),
            None => (CacheX86_64::new(), Addresses::default(), Vec::new()),
        };
        for name in listing.pinned {
            if !pinned.contains(&name) {
                pinned.push(name);
            }
        }
        *state = Some(State {
            unwinder,
            cache,
            code,
            verified,
            pinned,
        });
    }

    /// This thread's stack, `[low, high)`, or `None` when it cannot be known.
    fn stack() -> Option<(usize, usize)> {
        let (low, high) = STACK.try_with(|s| s.get()).ok()?;
        if (low, high) != (0, 0) {
            return (low < high).then_some((low, high));
        }
        let found = thread_stack().unwrap_or((1, 1));
        let _ = STACK.try_with(|s| s.set(found));
        (found.0 < found.1).then_some(found)
    }

    fn thread_stack() -> Option<(usize, usize)> {
        // SAFETY: an attribute object initialised by pthread_getattr_np and destroyed after.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
                return None;
            }
            let mut addr: *mut libc::c_void = std::ptr::null_mut();
            let mut size: libc::size_t = 0;
            let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
            libc::pthread_attr_destroy(&mut attr);
            (rc == 0 && !addr.is_null()).then(|| (addr as usize, addr as usize + size))
        }
    }

    /// A walk by framehop: `n` addresses in the buffer, and the return address after the last
    /// when the buffer was too short.
    struct Walk {
        n: usize,
        after: Option<usize>,
    }

    pub(super) fn backtrace(ceiling: usize, floor: usize, ips: &mut [usize]) -> usize {
        #[cfg(test)]
        FROM_FRAMEHOP.with(|f| f.set(false));
        let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
        let walked = guard
            .as_mut()
            .and_then(|state| walk(state, ceiling, floor, ips));
        let Some(walk) = walked else {
            drop(guard);
            return super::by_libgcc(ceiling, floor, ips).0;
        };
        let verified = guard
            .as_ref()
            .is_some_and(|state| ips[..walk.n].iter().all(|ip| state.verified.contains(ip)));
        if verified {
            #[cfg(test)]
            FROM_FRAMEHOP.with(|f| f.set(true));
            return walk.n;
        }
        // Met for the first time: libgcc walks it too (far enough to see past framehop's
        // last frame), and what framehop got the same is verified. No lock is held during
        // libgcc's walk (it may call into the loader).
        drop(guard);
        let mut theirs = [0usize; 256];
        let (m, _) = super::by_libgcc(ceiling, floor, &mut theirs);
        if let Some(state) = STATE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            learn(
                &mut state.verified,
                &ips[..walk.n],
                walk.after,
                &theirs[..m],
            );
        }
        let n = m.min(ips.len());
        ips[..n].copy_from_slice(&theirs[..n]);
        n
    }

    /// Mark as verified each address of `ours` that libgcc has at the same place with the
    /// same next frame (or the same end).
    fn learn(verified: &mut Addresses, ours: &[usize], after: Option<usize>, theirs: &[usize]) {
        for (i, ip) in ours.iter().enumerate() {
            if theirs.get(i) != Some(ip) {
                return;
            }
            let next_same = match (ours.get(i + 1), after) {
                (Some(next), _) => theirs.get(i + 1) == Some(next),
                (None, Some(after)) => theirs.get(i + 1) == Some(&after),
                (None, None) => theirs.len() == ours.len(),
            };
            if !next_same {
                return;
            }
            verified.insert(*ip);
        }
    }

    /// framehop's walk, or `None` where it cannot vouch for one (another stack, code outside
    /// the listed objects, a frame it could not unwind).
    #[inline(never)]
    fn walk(state: &mut State, ceiling: usize, floor: usize, ips: &mut [usize]) -> Option<Walk> {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads this function's own instruction pointer, stack and frame pointers.
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        let (low, high) = stack()?;
        if !(low..high).contains(&(sp as usize)) || ceiling < sp as usize {
            return None;
        }
        let State {
            unwinder,
            cache,
            code,
            ..
        } = state;
        let mut read = |addr: u64| {
            if addr.is_multiple_of(8) && addr >= sp && addr.saturating_add(8) <= high as u64 {
                // SAFETY: an aligned word of this thread's stack, between its pointer and top.
                Ok(unsafe { std::ptr::read_volatile(addr as *const u64) })
            } else {
                Err(())
            }
        };
        let in_code = |addr: u64| {
            let i = code.partition_point(|r| r.start <= addr);
            i > 0 && code[i - 1].contains(&addr)
        };
        let mut regs = UnwindRegsX86_64::new(ip, sp, bp);
        let mut address = FrameAddress::from_instruction_pointer(ip);
        let mut n = 0;
        loop {
            // The frame's stack pointer (the ceiling's test), then once unwound its canonical
            // frame address (the floor's): as libgcc's walk compares them.
            let frame_sp = regs.sp() as usize;
            let next = unwinder.unwind_frame(address, &mut regs, cache, &mut read);
            if frame_sp > ceiling {
                if matches!(next, Ok(Some(_))) && regs.sp() as usize > floor {
                    return Some(Walk { n, after: None });
                }
                if n == ips.len() {
                    let after = Some(address.address() as usize);
                    return Some(Walk { n, after });
                }
                ips[n] = address.address() as usize;
                n += 1;
            }
            match next {
                Ok(Some(ra)) if ra.checked_sub(1).is_some_and(in_code) => {
                    address = FrameAddress::from_return_address(ra)?;
                }
                // The outermost frame (its return address is undefined).
                Ok(None) => return Some(Walk { n, after: None }),
                _ => return None,
            }
        }
    }
}

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[inline(never)]
    fn nested(depth: u32, f: &mut dyn FnMut()) {
        if depth == 0 {
            f()
        } else {
            nested(depth - 1, f);
            std::hint::black_box(depth);
        }
    }

    /// Walk here the sampler's way (framehop once verified) and libgcc's, twice, and compare:
    /// the second walk, and whether it was framehop's.
    #[inline(never)]
    fn compare_walks(context: &str) -> (Vec<usize>, bool) {
        let here = 0u8;
        let ceiling = &here as *const u8 as usize;
        let mut walks = Vec::new();
        for _ in 0..2 {
            let mut ours = [0; 256];
            let n = backtrace(ceiling, usize::MAX, &mut ours);
            let framehop = imp::FROM_FRAMEHOP.with(|f| f.get());
            let mut theirs = [0; 256];
            let (m, _) = by_libgcc(ceiling, usize::MAX, &mut theirs);
            // Both walks were made from this function, from different call sites: from the
            // first frame kept (the return address into this one's caller) on, they are equal.
            assert_eq!(ours[..n], theirs[..m], "{context}");
            walks.push((ours[..n].to_vec(), framehop));
        }
        walks.pop().unwrap()
    }

    #[test]
    fn walks_equal_libgccs_and_are_framehops_once_verified() {
        prepare();
        for depth in [0, 1, 5, 20] {
            let mut out = (0, false);
            nested(depth, &mut || {
                let (frames, framehop) = compare_walks(&format!("depth {depth}"));
                out = (frames.len(), framehop);
            });
            assert!(out.0 > depth as usize, "depth {depth}: {} frames", out.0);
            assert!(out.1, "depth {depth}: the second walk was not framehop's");
        }
        // Inside std's code calling back into ours: a sort's comparator, an iterator's map,
        // a map's entry, a spawned thread (whose stack ends in the C library's thread start).
        let mut v = [3, 1, 2];
        v.sort_by(|a, b| {
            compare_walks("sort_by");
            a.cmp(b)
        });
        let doubled: Vec<i32> = v
            .iter()
            .map(|x| {
                assert!(compare_walks("map").1);
                x * 2
            })
            .collect();
        assert_eq!(doubled, [2, 4, 6]);
        let mut m = std::collections::HashMap::new();
        m.entry(1).or_insert_with(|| {
            compare_walks("or_insert_with");
            0
        });
        std::thread::spawn(|| assert!(compare_walks("thread").1))
            .join()
            .unwrap();
    }

    // A function without unwind information (no CFI directives) that calls back: framehop
    // has no rule for its return address and would follow the frame pointer; libgcc finds no
    // FDE and ends the walk there.
    std::arch::global_asm!(
        ".globl memcreep_test_without_cfi",
        "memcreep_test_without_cfi:",
        "push rbx",
        "call {callback}",
        "pop rbx",
        "ret",
        callback = sym without_cfi_callback,
    );

    unsafe extern "C" {
        fn memcreep_test_without_cfi();
    }

    thread_local! {
        static SEEN: std::cell::RefCell<Option<(Vec<usize>, bool)>> = const { std::cell::RefCell::new(None) };
    }

    extern "C" fn without_cfi_callback() {
        // Nothing may unwind into the assembly function: a failed assertion is caught here.
        let seen = std::panic::catch_unwind(|| compare_walks("without CFI")).ok();
        SEEN.with(|s| *s.borrow_mut() = seen);
    }

    #[test]
    fn a_frame_without_unwind_information_is_never_guessed() {
        prepare();
        // SAFETY: the function only calls the callback and returns.
        unsafe { memcreep_test_without_cfi() };
        let (frames, framehop) = SEEN
            .with(|s| s.borrow_mut().take())
            .expect("the walks differed (see the panic above)");
        // Equal to libgcc's walk (checked inside), which ends at the function without CFI.
        let start = memcreep_test_without_cfi as *const () as usize;
        let last = *frames.last().unwrap();
        assert!(
            (start..start + 16).contains(&last),
            "{frames:x?} ends at {last:x}"
        );
        assert!(!framehop, "an unverifiable walk was taken from framehop");
    }

    #[test]
    fn a_floor_cuts_the_walk_at_the_frame_holding_it() {
        prepare();
        let here = 0u8;
        let floor = &here as *const u8 as usize;
        let mut out = (0, Vec::new(), Vec::new());
        nested(3, &mut || {
            let inner = 0u8;
            let ceiling = &inner as *const u8 as usize;
            let mut ips = [0; 64];
            let full = backtrace(ceiling, usize::MAX, &mut ips);
            // Twice: the second walk is framehop's once the first verified it.
            let mut cut = 0;
            for _ in 0..2 {
                cut = backtrace(ceiling, floor, &mut ips);
            }
            let mut theirs = [0; 64];
            let (m, _) = by_libgcc(ceiling, floor, &mut theirs);
            out = (full, ips[..cut].to_vec(), theirs[..m].to_vec());
        });
        let (full, cut, theirs) = out;
        // Cut where libgcc's walk is cut: `nested`'s frames (four, or fewer where the
        // optimiser merged some), not the closure holding the ceiling, nor this test's frame,
        // which holds the floor, nor the harness's below it.
        assert_eq!(cut, theirs);
        assert!(
            (3..=4).contains(&cut.len()),
            "{} of {full} frames",
            cut.len()
        );
    }
}
