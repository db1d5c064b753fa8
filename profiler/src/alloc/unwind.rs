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
//! **Checked against libgcc.** Where framehop has no rule it can cache (no FDE, CFI it
//! evaluates anew each time or cannot evaluate, such as a signal frame's or a realigned
//! stack's), it evaluates the CFI each time or quietly follows the frame pointer, which in
//! code built without one gives plausible and wrong frames. So a walk is taken only when
//! every frame in it was *verified*: its CFI row, read with gimli, is one framehop turns into
//! a cached rule (so the rule is the same every time), and the first time its return address
//! was met, libgcc walked the same sample and found the same next frame (or the same end).
//! That first sample uses libgcc's walk. The sampler's own frames must have such rows too.
//!
//! **Modules.** [`prepare`] (called when sampling is switched on, which each run's start does,
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

/// How a libgcc walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// `ips` was full; the return address of the next frame.
    Full(usize),
    /// The frame with this return address holds the floor (it and its callers left out).
    Floor(usize),
    /// At the outermost frame: the next one's return address is 0.
    Root,
    /// Anywhere else (no unwind information for the next frame).
    Stopped,
}

/// libgcc's walk (through the `backtrace` crate), with the same frames left out as
/// [`backtrace`]'s: how many it put in `ips`, and how it ended.
#[inline(never)]
fn by_libgcc(ceiling: usize, floor: usize, ips: &mut [usize]) -> (usize, Ended) {
    let (mut depth, mut ended) = (0, Ended::Stopped);
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
                if ip == 0 {
                    // libgcc reports the outermost frame's caller with an address of 0.
                    ended = Ended::Root;
                    return false;
                }
                if sp > floor {
                    ended = Ended::Floor(ip);
                    return false;
                }
                if depth == ips.len() {
                    ended = Ended::Full(ip);
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
    // The last frame seen, whose caller's stack pointer is not known.
    match pending {
        Some(0) => ended = Ended::Root,
        Some(ip) if depth < ips.len() => {
            ips[depth] = ip;
            depth += 1;
        }
        Some(ip) => ended = Ended::Full(ip),
        None => {}
    }
    (depth, ended)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use std::cell::Cell;
    use std::ffi::{CStr, CString};
    use std::ops::Range;
    use std::sync::Mutex;

    use crate::alloc::address::AddressSet;
    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};

    type Data = &'static [u8];

    type Addresses = AddressSet<usize>;

    struct State {
        unwinder: UnwinderX86_64<Data>,
        cache: CacheX86_64,
        /// The listed objects' code (executable segments), sorted.
        code: Vec<Range<u64>>,
        /// The listed objects' unwind sections, to read a rule's CFI row (sorted).
        sections: Vec<Sections>,
        /// Lookup addresses (a return address minus one, or the first frame's instruction)
        /// whose CFI row framehop turns into a cached rule and, for the frames kept, whose
        /// walk gave the same next frame as libgcc's.
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

    /// An object's unwind sections, as mapped, with their addresses in the file.
    struct Sections {
        range: Range<u64>,
        bias: u64,
        eh_frame_hdr: (u64, Data),
        eh_frame: (u64, Data),
    }

    impl Sections {
        /// Whether the CFI row at `lookup` (an address in this object) is one framehop turns
        /// into a rule it caches and follows exactly: the return address at CFA - 8 (or
        /// undefined: the outermost frame), the CFA at rsp plus a multiple of 8 (rbp, if
        /// saved, at a multiple of 8 from it) or at rbp + 16 with rbp saved at CFA - 16.
        /// Anything else (no FDE covering it, expressions, other registers) framehop would
        /// evaluate each time or guess from the frame pointer.
        fn cached_rule(&self, lookup: u64) -> bool {
            use addr2line::gimli::{self, CfaRule, RegisterRule, UnwindSection, X86_64};
            let check = || -> Option<bool> {
                let bases = gimli::BaseAddresses::default()
                    .set_eh_frame_hdr(self.eh_frame_hdr.0)
                    .set_eh_frame(self.eh_frame.0);
                let hdr = gimli::EhFrameHdr::new(self.eh_frame_hdr.1, gimli::LittleEndian)
                    .parse(&bases, 8)
                    .ok()?;
                let eh_frame = gimli::EhFrame::new(self.eh_frame.1, gimli::LittleEndian);
                let mut context = gimli::UnwindContext::new();
                let row = hdr
                    .table()?
                    .unwind_info_for_address(
                        &eh_frame,
                        &bases,
                        &mut context,
                        lookup.checked_sub(self.bias)?,
                        gimli::EhFrame::cie_from_offset,
                    )
                    .ok()?;
                match row.register(X86_64::RA) {
                    None | Some(RegisterRule::Undefined) => return Some(true),
                    Some(RegisterRule::Offset(-8)) => {}
                    _ => return Some(false),
                }
                let bp = match row.register(X86_64::RBP) {
                    None | Some(RegisterRule::Undefined | RegisterRule::SameValue) => None,
                    Some(RegisterRule::Offset(offset)) => Some(offset),
                    _ => return Some(false),
                };
                Some(match *row.cfa() {
                    CfaRule::RegisterAndOffset { register, offset } if register == X86_64::RSP => {
                        offset % 8 == 0
                            && u16::try_from(offset / 8).is_ok()
                            && bp.is_none_or(|bp| {
                                (offset + bp) % 8 == 0 && i16::try_from((offset + bp) / 8).is_ok()
                            })
                    }
                    CfaRule::RegisterAndOffset { register, offset } if register == X86_64::RBP => {
                        offset == 16 && bp == Some(-16)
                    }
                    _ => false,
                })
            };
            check().unwrap_or(false)
        }
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
        let mut sections = Vec::new();
        for object in listing.objects {
            sections.push(Sections {
                range: object.range.clone(),
                bias: object.base_avma - object.base_svma,
                eh_frame_hdr: (object.eh_frame_hdr.0.start, object.eh_frame_hdr.1),
                eh_frame: (object.eh_frame.0.start, object.eh_frame.1),
            });
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
        sections.sort_unstable_by_key(|s| s.range.start);
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
            sections,
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

    /// Frames of the sampler framehop unwinds before the first one kept, at most.
    const SKIPPED: usize = 16;

    /// A walk by framehop: `n` return addresses in the buffer, the lookup addresses of the
    /// frames left out below the ceiling, and how it ended.
    struct Walk {
        n: usize,
        skipped: [u64; SKIPPED],
        n_skipped: usize,
        ended: super::Ended,
    }

    impl Walk {
        /// The lookup address of the frame whose rule ended the walk, if any: the frame that
        /// holds the floor, or the outermost one (the last kept).
        fn ending_lookup(&self, ips: &[usize]) -> Option<usize> {
            match self.ended {
                super::Ended::Floor(ra) => Some(ra - 1),
                super::Ended::Root => Some(ips[self.n.checked_sub(1)?] - 1),
                _ => None,
            }
        }
    }

    pub(super) fn backtrace(ceiling: usize, floor: usize, ips: &mut [usize]) -> usize {
        #[cfg(test)]
        FROM_FRAMEHOP.with(|f| f.set(false));
        // Before the lock: the main thread's stack is read from /proc/self/maps once.
        let Some(stack) = stack() else {
            return super::by_libgcc(ceiling, floor, ips).0;
        };
        let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
        let walked = guard
            .as_mut()
            .and_then(|state| walk(state, stack, ceiling, floor, ips));
        let Some(walk) = walked else {
            drop(guard);
            return super::by_libgcc(ceiling, floor, ips).0;
        };
        let trusted = guard.as_ref().is_some_and(|state| {
            let known = |lookup: usize| state.verified.contains(&lookup);
            walk.skipped[..walk.n_skipped]
                .iter()
                .all(|&l| known(l as usize))
                && ips[..walk.n].iter().all(|&ip| known(ip - 1))
                && walk.ending_lookup(ips).is_none_or(known)
        });
        if trusted {
            #[cfg(test)]
            FROM_FRAMEHOP.with(|f| f.set(true));
            return walk.n;
        }
        // Not all of it verified: libgcc walks it too (one frame further), and what checks
        // out is remembered. No lock is held during libgcc's walk (it may call the loader).
        drop(guard);
        let mut theirs = [0usize; 64];
        let room = (ips.len() + 1).min(theirs.len());
        let (m, ended) = super::by_libgcc(ceiling, floor, &mut theirs[..room]);
        if let Some(state) = STATE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            learn(state, &walk, &ips[..walk.n], &theirs[..m], ended);
        }
        let n = m.min(ips.len());
        ips[..n].copy_from_slice(&theirs[..n]);
        n
    }

    /// Remember as verified what a walk compared with libgcc's shows: the sampler's frames
    /// and every kept frame up to the first that differs from libgcc's (same return address,
    /// same next one, or the same end), each only if its CFI row is one framehop caches.
    fn learn(
        state: &mut State,
        walk: &Walk,
        ours: &[usize],
        theirs: &[usize],
        ended: super::Ended,
    ) {
        let State {
            sections, verified, ..
        } = state;
        let mut verify = |lookup: usize| {
            let lookup = lookup as u64;
            let i = sections.partition_point(|s| s.range.start <= lookup);
            let cached = i > 0
                && sections[i - 1].range.contains(&lookup)
                && sections[i - 1].cached_rule(lookup);
            if cached {
                verified.insert(lookup as usize);
            }
            cached
        };
        for &lookup in &walk.skipped[..walk.n_skipped] {
            verify(lookup as usize);
        }
        for (i, &ip) in ours.iter().enumerate() {
            let next_same = match ours.get(i + 1) {
                Some(next) => theirs.get(i + 1) == Some(next),
                // The last frame kept: the walk must end the same way, right after it.
                None => match walk.ended {
                    super::Ended::Full(next) => theirs.get(i + 1) == Some(&next),
                    _ => theirs.len() == ours.len() && ended == walk.ended,
                },
            };
            if theirs.get(i) != Some(&ip) || !next_same || !verify(ip - 1) {
                return;
            }
        }
        if theirs.len() == ours.len()
            && ended == walk.ended
            && let Some(lookup) = walk.ending_lookup(ours)
        {
            verify(lookup);
        }
    }

    /// framehop's walk, or `None` where it cannot vouch for one (another stack, code outside
    /// the listed objects, a frame it could not unwind, too many frames below the ceiling).
    #[inline(never)]
    fn walk(
        state: &mut State,
        (low, high): (usize, usize),
        ceiling: usize,
        floor: usize,
        ips: &mut [usize],
    ) -> Option<Walk> {
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
        let mut out = Walk {
            n: 0,
            skipped: [0; SKIPPED],
            n_skipped: 0,
            ended: super::Ended::Stopped,
        };
        loop {
            // The frame's stack pointer (the ceiling's test), then once unwound its canonical
            // frame address (the floor's): as libgcc's walk compares them.
            let frame_sp = regs.sp() as usize;
            let next = unwinder.unwind_frame(address, &mut regs, cache, &mut read);
            let ra = address.address() as usize;
            if frame_sp <= ceiling {
                *out.skipped.get_mut(out.n_skipped)? = address.address_for_lookup();
                out.n_skipped += 1;
            } else {
                if matches!(next, Ok(Some(_))) && regs.sp() as usize > floor {
                    out.ended = super::Ended::Floor(ra);
                    return Some(out);
                }
                if out.n == ips.len() {
                    out.ended = super::Ended::Full(ra);
                    return Some(out);
                }
                ips[out.n] = ra;
                out.n += 1;
            }
            match next {
                Ok(Some(ra)) if ra.checked_sub(1).is_some_and(in_code) => {
                    address = FrameAddress::from_return_address(ra)?;
                }
                // The outermost frame (its return address is undefined).
                Ok(None) if out.n > 0 => {
                    out.ended = super::Ended::Root;
                    return Some(out);
                }
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

    /// One walk the sampler's way (framehop once verified) and one libgcc's, up to `room`
    /// frames each, both kept from the frame that holds `ceiling` on: ours, theirs, and
    /// whether ours was framehop's. Both are made from here, from different call sites: from
    /// the first frame kept on, they must be equal.
    #[inline(never)]
    fn walk_both(ceiling: usize, floor: usize, room: usize) -> (Vec<usize>, Vec<usize>, bool) {
        let mut ours = vec![0; room];
        let n = backtrace(ceiling, floor, &mut ours);
        let framehop = imp::FROM_FRAMEHOP.with(|f| f.get());
        let mut theirs = vec![0; room];
        let (m, _) = by_libgcc(ceiling, floor, &mut theirs);
        ours.truncate(n);
        theirs.truncate(m);
        (ours, theirs, framehop)
    }

    /// Walk from here both ways, twice, and compare: the second walk, and whether it was
    /// framehop's.
    #[inline(never)]
    fn compare_walks(context: &str) -> (Vec<usize>, bool) {
        let here = 0u8;
        let ceiling = &here as *const u8 as usize;
        let mut last = (Vec::new(), false);
        for _ in 0..std::hint::black_box(2) {
            let (ours, theirs, framehop) = walk_both(ceiling, usize::MAX, 256);
            assert_eq!(ours, theirs, "{context}");
            last = (ours, framehop);
        }
        last
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

    // Functions without unwind information (no CFI directives) that call back: framehop has
    // no rule for their return address and would follow the frame pointer; libgcc finds no
    // FDE and ends the walk there. The second points rbp at a zeroed frame record, where
    // following it looks like the end of the stack.
    std::arch::global_asm!(
        ".globl memcreep_test_without_cfi",
        "memcreep_test_without_cfi:",
        "push rbx",
        "call {callback}",
        "pop rbx",
        "ret",
        ".globl memcreep_test_without_cfi_zero_frame",
        "memcreep_test_without_cfi_zero_frame:",
        "push rbp",
        "push 0",
        "push 0",
        "mov rbp, rsp",
        "call {callback}",
        "add rsp, 16",
        "pop rbp",
        "ret",
        callback = sym without_cfi_callback,
    );

    unsafe extern "C" {
        fn memcreep_test_without_cfi();
        fn memcreep_test_without_cfi_zero_frame();
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
        let functions: [(unsafe extern "C" fn(), &str); 2] = [
            (memcreep_test_without_cfi, "rbp as it is"),
            (
                memcreep_test_without_cfi_zero_frame,
                "rbp at a zeroed frame record",
            ),
        ];
        for (function, case) in functions {
            // SAFETY: the functions only call the callback and return.
            unsafe { function() };
            let (frames, framehop) = SEEN
                .with(|s| s.borrow_mut().take())
                .expect("the walks differed (see the panic above)");
            // Equal to libgcc's walk (checked inside), which ends at the function without CFI.
            let start = function as *const () as usize;
            let last = *frames.last().unwrap();
            assert!(
                (start..start + 32).contains(&last),
                "{case}: {frames:x?} ends at {last:x}"
            );
            assert!(
                !framehop,
                "{case}: an unverifiable walk was taken from framehop"
            );
        }
    }

    #[test]
    fn a_full_buffer_walk_is_verified_too() {
        prepare();
        let mut out = Vec::new();
        nested(40, &mut || {
            let here = 0u8;
            let ceiling = &here as *const u8 as usize;
            for _ in 0..std::hint::black_box(2) {
                out.push(walk_both(ceiling, usize::MAX, 32));
            }
        });
        for (ours, theirs, _) in &out {
            assert_eq!(ours.len(), 32);
            assert_eq!(ours, theirs);
        }
        assert!(out[1].2, "the second walk was not framehop's");
    }

    #[test]
    fn a_floor_cuts_the_walk_at_the_frame_holding_it() {
        prepare();
        let here = 0u8;
        let floor = &here as *const u8 as usize;
        let mut out = (0, Vec::new(), Vec::new(), false);
        nested(3, &mut || {
            let inner = 0u8;
            let ceiling = &inner as *const u8 as usize;
            let mut ips = [0; 64];
            // Twice, before any walk without a floor: the second walk is framehop's once the
            // first verified it, the frame that holds the floor included.
            let mut cut = 0;
            for _ in 0..std::hint::black_box(2) {
                cut = backtrace(ceiling, floor, &mut ips);
            }
            let framehop = imp::FROM_FRAMEHOP.with(|f| f.get());
            let cut_ips = ips[..cut].to_vec();
            let full = backtrace(ceiling, usize::MAX, &mut ips);
            let mut theirs = [0; 64];
            let (m, _) = by_libgcc(ceiling, floor, &mut theirs);
            out = (full, cut_ips, theirs[..m].to_vec(), framehop);
        });
        let (full, cut, theirs, framehop) = out;
        assert!(framehop, "the second walk with a floor was not framehop's");
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
