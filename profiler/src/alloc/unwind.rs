// Owns the backtrace of a sampled allocation: the calling thread's return addresses, unwound
// from .eh_frame with a table of unwind rules, each rule checked once against libgcc's walk.
// Must never give a stack libgcc would not (anything unverified or unusual is walked by
// libgcc), never read outside the thread's own stack, and never call the loader from inside
// an allocation.

//! Sampled backtraces without interpreting the CFI anew for every frame.
//!
//! The system unwinder (libgcc's, behind the `backtrace` crate) finds each frame's FDE and
//! runs its CFI program on every walk: 85% of what a sample cost. This module follows the
//! unwind rule of each address itself, from a table of rules already checked, so a call path
//! seen before unwinds at the cost of one table lookup and two or three loads per frame.
//!
//! **Rules it follows.** Only the CFI rows of ordinary frames: the return address at CFA - 8
//! (or undefined: the outermost frame), and the CFA at rsp plus a multiple of 8 (rbp, if
//! saved, at a multiple of 8 from it) or at rbp + 16 with rbp saved at CFA - 16. Anything
//! else (no FDE, expressions, other registers, a signal frame's or a realigned stack's rows)
//! leaves the walk to libgcc: a frame is never guessed, say from the frame pointer, which in
//! code built without one gives plausible and wrong frames.
//!
//! **Checked against libgcc.** A rule is read from the CFI with gimli the first time its
//! address is met, and that sample is walked by libgcc too: the rule is kept as *verified*
//! only if libgcc found the same next frame (or the same end). A walk is taken only when
//! every rule in it was verified; until then libgcc's is used. Verified rules sit in a fixed
//! table of lookup addresses (open addressing, written once per slot under a lock, read
//! without one): the rule cache and the verified set are the same lookup. The sampler's own
//! frames are checked the same way, along with the first frame kept after them.
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
    use std::sync::atomic::{AtomicU64, Ordering::*};
    use std::sync::{Mutex, MutexGuard};

    use super::Ended;

    type Data = &'static [u8];

    /// How a frame is unwound to its caller: the CFI rows this module follows itself. Any other
    /// row (expressions, other registers, a return address elsewhere than CFA - 8) is left to
    /// libgcc.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Rule {
        /// The outermost frame: its return address is undefined.
        Root,
        /// CFA = rsp + 8 * `cfa`, the return address at CFA - 8, and rbp, if saved, at
        /// CFA + 8 * `bp` (else unchanged).
        Sp { cfa: u16, bp: Option<i16> },
        /// CFA = rbp + 16, the return address at CFA - 8 and rbp at CFA - 16.
        Bp,
    }

    impl Rule {
        /// As a table word (never 0).
        fn encode(self) -> u64 {
            match self {
                Rule::Root => 1,
                Rule::Bp => 2,
                Rule::Sp { cfa, bp } => {
                    let bp = bp.map_or(0, |b| (1 << 16) | u64::from(b as u16));
                    3 | u64::from(cfa) << 8 | bp << 24
                }
            }
        }

        fn decode(word: u64) -> Option<Rule> {
            match word & 0xff {
                1 => Some(Rule::Root),
                2 => Some(Rule::Bp),
                3 => Some(Rule::Sp {
                    cfa: (word >> 8) as u16,
                    bp: (word >> 40 & 1 == 1).then_some((word >> 24) as u16 as i16),
                }),
                _ => None,
            }
        }

        /// Unwind `regs` (rsp, rbp) to the caller's, reading the stack with `read`: the
        /// caller's return address, `Some(None)` at the outermost frame, `None` where the rule
        /// leads nowhere sensible (a read refused, a CFA not above the stack pointer).
        #[inline(always)]
        fn unwind(
            self,
            regs: &mut (u64, u64),
            read: impl Fn(u64) -> Option<u64>,
        ) -> Option<Option<u64>> {
            let (sp, bp) = *regs;
            let (cfa, bp_at) = match self {
                Rule::Root => return Some(None),
                Rule::Sp { cfa, bp } => {
                    let cfa = sp.checked_add(8 * u64::from(cfa))?;
                    (cfa, bp.map(|b| cfa.wrapping_add_signed(8 * i64::from(b))))
                }
                Rule::Bp => (bp.checked_add(16)?, Some(bp)),
            };
            if cfa <= sp {
                return None;
            }
            let ra = read(cfa - 8)?;
            let bp = match bp_at {
                Some(at) => read(at)?,
                None => bp,
            };
            *regs = (cfa, bp);
            Some(Some(ra))
        }
    }

    /// The rules verified so far, by lookup address (a return address minus one, or the first
    /// frame's instruction): open addressing over a fixed table, filled under [`STATE`]'s lock
    /// and read without any. A slot is written once (its rule, then its address, released)
    /// and never changed, so a reader that sees an address sees its rule. A rule that finds no
    /// free slot within [`PROBES`] of its own is not kept: its walks stay libgcc's.
    struct Table([Slot; SLOTS]);

    #[repr(align(16))]
    struct Slot {
        lookup: AtomicU64,
        rule: AtomicU64,
    }

    const SLOTS: usize = 1 << 13;
    const PROBES: usize = 8;

    static TRUSTED: Table = Table(
        [const {
            Slot {
                lookup: AtomicU64::new(0),
                rule: AtomicU64::new(0),
            }
        }; SLOTS],
    );

    impl Table {
        fn slots(&self, lookup: u64) -> impl Iterator<Item = &Slot> {
            let start = crate::alloc::address::hash(lookup as usize) as usize;
            (0..PROBES).map(move |k| &self.0[(start + k) % SLOTS])
        }

        #[inline(always)]
        fn get(&self, lookup: u64) -> Option<Rule> {
            for slot in self.slots(lookup) {
                match slot.lookup.load(Acquire) {
                    at if at == lookup => return Rule::decode(slot.rule.load(Relaxed)),
                    0 => return None,
                    _ => {}
                }
            }
            None
        }

        /// Keep `rule` for `lookup` (under [`STATE`]'s lock: one writer at a time).
        fn insert(&self, lookup: u64, rule: Rule) {
            for slot in self.slots(lookup) {
                match slot.lookup.load(Relaxed) {
                    at if at == lookup => return,
                    0 => {
                        slot.rule.store(rule.encode(), Relaxed);
                        slot.lookup.store(lookup, Release);
                        return;
                    }
                    _ => {}
                }
            }
        }

        /// Fault the table's pages in now (a no-op write to each), not while a run samples.
        fn touch(&self) {
            for slot in self.0.iter().step_by(4096 / size_of::<Slot>()) {
                slot.lookup.fetch_or(0, Relaxed);
            }
        }
    }

    struct State {
        /// The listed objects' unwind sections, sorted.
        sections: Vec<Sections>,
        /// Shared objects pinned so far (each only once).
        pinned: Vec<CString>,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    thread_local! {
        /// Whether this thread's last walk was taken from verified rules alone (for tests).
        #[cfg(test)]
        pub(super) static FROM_TABLE: Cell<bool> = const { Cell::new(false) };

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
        /// The rule of the CFI row at `lookup` (an address in this object), if it is one this
        /// module follows: the return address at CFA - 8 (or undefined: the outermost frame),
        /// the CFA at rsp plus a multiple of 8 (rbp, if saved, at a multiple of 8 from it) or
        /// at rbp + 16 with rbp saved at CFA - 16. `None` for anything else, or no FDE.
        fn rule_at(&self, lookup: u64) -> Option<Rule> {
            use addr2line::gimli::{self, CfaRule, RegisterRule, UnwindSection, X86_64};
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
                Some(RegisterRule::Undefined) => return Some(Rule::Root),
                Some(RegisterRule::Offset(-8)) => {}
                _ => return None,
            }
            let bp = match row.register(X86_64::RBP) {
                None | Some(RegisterRule::Undefined | RegisterRule::SameValue) => None,
                Some(RegisterRule::Offset(offset)) if offset % 8 == 0 => {
                    Some(i16::try_from(offset / 8).ok()?)
                }
                _ => return None,
            };
            match *row.cfa() {
                CfaRule::RegisterAndOffset { register, offset }
                    if register == X86_64::RSP && offset > 0 && offset % 8 == 0 =>
                {
                    Some(Rule::Sp {
                        cfa: u16::try_from(offset / 8).ok()?,
                        bp,
                    })
                }
                CfaRule::RegisterAndOffset { register, offset }
                    if register == X86_64::RBP && offset == 16 && bp == Some(-2) =>
                {
                    Some(Rule::Bp)
                }
                _ => None,
            }
        }
    }

    impl State {
        /// The rule at `lookup` read from the CFI of the listed object holding it. Out of line:
        /// gimli's parse takes kilobytes of stack, which a walk from verified rules never
        /// touches (so its frame stays a few lines of cache).
        #[cold]
        #[inline(never)]
        fn rule_at(&self, lookup: u64) -> Option<Rule> {
            let i = self.sections.partition_point(|s| s.range.start <= lookup);
            let sections = &self.sections[i.checked_sub(1)?];
            sections
                .range
                .contains(&lookup)
                .then(|| sections.rule_at(lookup))?
        }
    }
    /// One loaded object: its ranges and unwind sections, as mapped.
    struct Object {
        range: Range<u64>,
        /// Where it is loaded against its addresses in the file.
        bias: u64,
        /// Its unwind sections' addresses in the file, and their bytes as mapped.
        eh_frame_hdr: (u64, Data),
        eh_frame: (u64, Data),
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
        let hdr = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME)?;
        let hdr_at = bias + hdr.p_vaddr;
        let hdr_data = mapped(hdr_at, hdr.p_memsz);
        // Version 1, the pointer to .eh_frame pc-relative signed 4 bytes, and a search table
        // (count and entries present, entries relative to the header, signed 4 bytes): what
        // linkers write. A rule's FDE is found through that table.
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
        Some(Object {
            range: bias + base_svma..bias + end_svma,
            bias,
            eh_frame_hdr: (hdr.p_vaddr, hdr_data),
            eh_frame: (eh_frame_at - bias, mapped(eh_frame_at, eh_frame_len)),
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
        let mut sections: Vec<Sections> = listing
            .objects
            .into_iter()
            .map(|object| Sections {
                range: object.range,
                bias: object.bias,
                eh_frame_hdr: object.eh_frame_hdr,
                eh_frame: object.eh_frame,
            })
            .collect();
        sections.sort_unstable_by_key(|s| s.range.start);
        TRUSTED.touch();
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        let mut pinned = state.take().map(|s| s.pinned).unwrap_or_default();
        for name in listing.pinned {
            if !pinned.contains(&name) {
                pinned.push(name);
            }
        }
        *state = Some(State { sections, pinned });
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

    /// Frames of the sampler unwound before the first one kept, at most.
    const SKIPPED: usize = 16;

    /// A frame whose rule a walk read from the CFI, not from the verified ones.
    struct Fresh {
        /// Its place in the walk, from the innermost frame (the sampler's frames included).
        index: usize,
        lookup: u64,
        rule: Rule,
    }

    /// A walk: `n` return addresses in the buffer, after `n_skipped` frames of the sampler,
    /// how it ended, and the frames whose rule was not verified yet.
    struct Walk {
        n: usize,
        n_skipped: usize,
        ended: Ended,
        fresh: Vec<Fresh>,
    }

    impl Walk {
        /// Whether every rule it followed was verified (the frame past a full buffer aside:
        /// its rule only tells a full buffer from one cut by the floor, the same frames).
        fn trusted(&self) -> bool {
            let past_full = matches!(self.ended, Ended::Full(_)).then_some(self.n_skipped + self.n);
            self.fresh.iter().all(|f| Some(f.index) == past_full)
        }
    }

    pub(super) fn backtrace(ceiling: usize, floor: usize, ips: &mut [usize]) -> usize {
        #[cfg(test)]
        FROM_TABLE.with(|f| f.set(false));
        // Before any lock: the main thread's stack is read from /proc/self/maps once.
        let Some(stack) = stack() else {
            return super::by_libgcc(ceiling, floor, ips).0;
        };
        let walked = walk(stack, ceiling, floor, ips);
        let Some(walk) = walked else {
            return super::by_libgcc(ceiling, floor, ips).0;
        };
        if walk.trusted() {
            #[cfg(test)]
            FROM_TABLE.with(|f| f.set(true));
            return walk.n;
        }
        // Not all of it verified: libgcc walks it too (one frame further), and what checks
        // out is remembered. No lock is held during libgcc's walk (it may call the loader).
        let mut theirs = [0usize; 64];
        let room = (ips.len() + 1).min(theirs.len());
        let (m, ended) = super::by_libgcc(ceiling, floor, &mut theirs[..room]);
        let _state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        learn(&walk, &ips[..walk.n], &theirs[..m], ended);
        let n = m.min(ips.len());
        ips[..n].copy_from_slice(&theirs[..n]);
        n
    }

    /// Keep as verified (under [`STATE`]'s lock) the rules a walk read from the CFI that its
    /// comparison with libgcc's shows right: the sampler's frames when the first frame kept
    /// is libgcc's too, and every kept frame up to the first that differs from libgcc's (same
    /// return address, same next one, or the same end), and the rule that ended the walk.
    fn learn(walk: &Walk, ours: &[usize], theirs: &[usize], ended: Ended) {
        let same_end = theirs.len() == ours.len() && ended == walk.ended;
        // Frames (by their place in the walk) before this one are verified.
        let mut verified = 0;
        if ours.first() == theirs.first() && (!ours.is_empty() || same_end) {
            verified = walk.n_skipped;
            for (i, &ip) in ours.iter().enumerate() {
                let next_same = match ours.get(i + 1) {
                    Some(next) => theirs.get(i + 1) == Some(next),
                    // The last frame kept: the walk must end the same way, right after it.
                    None => match walk.ended {
                        Ended::Full(next) => theirs.get(i + 1) == Some(&next),
                        _ => same_end,
                    },
                };
                if theirs.get(i) != Some(&ip) || !next_same {
                    break;
                }
                verified += 1;
            }
            // The frame holding the floor: its rule found the walk's end.
            if verified == walk.n_skipped + ours.len()
                && same_end
                && matches!(walk.ended, Ended::Floor(_))
            {
                verified += 1;
            }
        }
        for fresh in walk.fresh.iter().filter(|f| f.index < verified) {
            TRUSTED.insert(fresh.lookup, fresh.rule);
        }
    }

    /// Walk the calling thread's stack with the verified rules, reading from the CFI (under
    /// [`STATE`]'s lock) those not verified yet, or `None` where no rule this module follows
    /// will do (another stack, code outside the listed objects, a row it leaves to libgcc, too
    /// many frames below the ceiling).
    #[inline(never)]
    fn walk(
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
        let read = |addr: u64| {
            if addr.is_multiple_of(8) && addr >= sp && addr.saturating_add(8) <= high as u64 {
                // SAFETY: an aligned word of this thread's stack, between its pointer and top.
                Some(unsafe { std::ptr::read_volatile(addr as *const u64) })
            } else {
                None
            }
        };
        let mut state: Option<MutexGuard<'_, Option<State>>> = None;
        let mut regs = (sp, bp);
        // This frame's address (its instruction, then its return address) and the address
        // its rule is looked up at (the return address minus one: the call).
        let (mut address, mut lookup) = (ip, ip);
        let mut out = Walk {
            n: 0,
            n_skipped: 0,
            ended: Ended::Stopped,
            fresh: Vec::new(),
        };
        for index in 0.. {
            let rule = match TRUSTED.get(lookup) {
                Some(rule) => rule,
                None => {
                    let state = state
                        .get_or_insert_with(|| STATE.lock().unwrap_or_else(|e| e.into_inner()));
                    let rule = state.as_ref()?.rule_at(lookup)?;
                    out.fresh.push(Fresh {
                        index,
                        lookup,
                        rule,
                    });
                    rule
                }
            };
            // The frame's stack pointer (the ceiling's test), then once unwound its canonical
            // frame address (the floor's): as libgcc's walk compares them.
            let frame_sp = regs.0 as usize;
            let next = rule.unwind(&mut regs, read)?;
            let ra = address as usize;
            if frame_sp <= ceiling {
                if out.n_skipped == SKIPPED {
                    return None;
                }
                out.n_skipped += 1;
            } else {
                if next.is_some() && regs.0 as usize > floor {
                    out.ended = Ended::Floor(ra);
                    return Some(out);
                }
                if out.n == ips.len() {
                    out.ended = Ended::Full(ra);
                    return Some(out);
                }
                ips[out.n] = ra;
                out.n += 1;
            }
            match next {
                Some(next) => {
                    address = next;
                    lookup = next.checked_sub(1)?;
                }
                // The outermost frame (its return address is undefined).
                None if out.n > 0 => {
                    out.ended = Ended::Root;
                    return Some(out);
                }
                None => return None,
            }
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rules_survive_the_table_word() {
            let mut rules = vec![Rule::Root, Rule::Bp];
            for cfa in [1, 2, 7, 300, u16::MAX] {
                for bp in [None, Some(-2), Some(-1), Some(0), Some(5), Some(i16::MIN)] {
                    rules.push(Rule::Sp { cfa, bp });
                }
            }
            for rule in rules {
                assert_ne!(rule.encode(), 0, "{rule:?}: 0 is an empty slot");
                assert_eq!(Rule::decode(rule.encode()), Some(rule));
            }
            assert_eq!(Rule::decode(0), None);
        }

        #[test]
        fn a_rule_unwinds_from_the_stack_it_reads() {
            // A stack of words at 0x1000.. (addresses are this test's, the reads a map).
            let stack = [0x11u64, 0x22, 0x1040, 0x4444, 0x55, 0x66];
            let read = |addr: u64| {
                let i = addr.checked_sub(0x1000)? / 8;
                addr.is_multiple_of(8)
                    .then(|| stack.get(i as usize).copied())?
            };
            // CFA = rsp + 32: return address at 0x1018, rbp saved at CFA - 16 (0x1010).
            let mut regs = (0x1000, 7);
            let sp = Rule::Sp {
                cfa: 4,
                bp: Some(-2),
            };
            assert_eq!(sp.unwind(&mut regs, read), Some(Some(0x4444)));
            assert_eq!(regs, (0x1020, 0x1040));
            // rbp unsaved: unchanged.
            let mut regs = (0x1000, 7);
            let sp = Rule::Sp { cfa: 2, bp: None };
            assert_eq!(sp.unwind(&mut regs, read), Some(Some(0x22)));
            assert_eq!(regs, (0x1010, 7));
            // CFA = rbp + 16: return address at rbp + 8, rbp at rbp.
            let mut regs = (0x1000, 0x1010);
            assert_eq!(Rule::Bp.unwind(&mut regs, read), Some(Some(0x4444)));
            assert_eq!(regs, (0x1020, 0x1040));
            // A CFA not above the stack pointer, or a read refused, leads nowhere.
            let mut regs = (0x1000, 0x0ff0);
            assert_eq!(Rule::Bp.unwind(&mut regs, read), None);
            let mut regs = (0x1028, 0);
            assert_eq!(Rule::Sp { cfa: 4, bp: None }.unwind(&mut regs, read), None);
            assert_eq!(regs, (0x1028, 0), "left as it was");
            assert_eq!(Rule::Root.unwind(&mut (0x1000, 0), read), Some(None));
        }

        #[test]
        fn the_table_keeps_each_rule_once_and_finds_it_past_collisions() {
            let table = Box::new(Table(
                [const {
                    Slot {
                        lookup: AtomicU64::new(0),
                        rule: AtomicU64::new(0),
                    }
                }; SLOTS],
            ));
            let rule = |cfa| Rule::Sp { cfa, bp: None };
            // Addresses whose probes start at the same slot, more than a probe sequence holds.
            let home = |a: u64| crate::alloc::address::hash(a as usize) as usize % SLOTS;
            let colliding: Vec<u64> = (1u64..)
                .filter(|&a| home(a) == home(1))
                .take(PROBES + 2)
                .collect();
            for (i, &a) in colliding.iter().enumerate() {
                table.insert(a, rule(i as u16 + 1));
            }
            for (i, &a) in colliding.iter().enumerate() {
                let expected = (i < PROBES).then(|| rule(i as u16 + 1));
                assert_eq!(table.get(a), expected, "address {a}, probe {i}");
            }
            // A second insert of a kept address changes nothing.
            table.insert(colliding[0], Rule::Bp);
            assert_eq!(table.get(colliding[0]), Some(rule(1)));
            assert_eq!(table.get(colliding[PROBES + 1] + 1), None);
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

    /// One walk the sampler's way (from verified rules once checked) and one libgcc's, up to `room`
    /// frames each, both kept from the frame that holds `ceiling` on: ours, theirs, and
    /// whether ours followed verified rules alone. Both are made from here, from different call sites: from
    /// the first frame kept on, they must be equal.
    #[inline(never)]
    fn walk_both(ceiling: usize, floor: usize, room: usize) -> (Vec<usize>, Vec<usize>, bool) {
        let mut ours = vec![0; room];
        let n = backtrace(ceiling, floor, &mut ours);
        let from_table = imp::FROM_TABLE.with(|f| f.get());
        let mut theirs = vec![0; room];
        let (m, _) = by_libgcc(ceiling, floor, &mut theirs);
        ours.truncate(n);
        theirs.truncate(m);
        (ours, theirs, from_table)
    }

    /// Walk from here both ways, twice, and compare: the second walk, and whether it was
    /// from verified rules.
    #[inline(never)]
    fn compare_walks(context: &str) -> (Vec<usize>, bool) {
        let here = 0u8;
        let ceiling = &here as *const u8 as usize;
        let mut last = (Vec::new(), false);
        for _ in 0..std::hint::black_box(2) {
            let (ours, theirs, from_table) = walk_both(ceiling, usize::MAX, 256);
            assert_eq!(ours, theirs, "{context}");
            last = (ours, from_table);
        }
        last
    }

    #[test]
    fn walks_equal_libgccs_and_follow_verified_rules_once_checked() {
        prepare();
        for depth in [0, 1, 5, 20] {
            let mut out = (0, false);
            nested(depth, &mut || {
                let (frames, from_table) = compare_walks(&format!("depth {depth}"));
                out = (frames.len(), from_table);
            });
            assert!(out.0 > depth as usize, "depth {depth}: {} frames", out.0);
            assert!(
                out.1,
                "depth {depth}: the second walk was not from verified rules"
            );
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

    // Functions without unwind information (no CFI directives) that call back: there is no
    // rule for their return address (a frame-pointer unwinder would follow rbp); libgcc finds
    // no FDE and ends the walk there. The second points rbp at a zeroed frame record, where
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
            let (frames, from_table) = SEEN
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
                !from_table,
                "{case}: an unverifiable walk was taken from the verified rules"
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
        assert!(out[1].2, "the second walk was not from verified rules");
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
            // Twice, before any walk without a floor: the second walk follows verified rules once the
            // first verified it, the frame that holds the floor included.
            let mut cut = 0;
            for _ in 0..std::hint::black_box(2) {
                cut = backtrace(ceiling, floor, &mut ips);
            }
            let from_table = imp::FROM_TABLE.with(|f| f.get());
            let cut_ips = ips[..cut].to_vec();
            let full = backtrace(ceiling, usize::MAX, &mut ips);
            let mut theirs = [0; 64];
            let (m, _) = by_libgcc(ceiling, floor, &mut theirs);
            out = (full, cut_ips, theirs[..m].to_vec(), from_table);
        });
        let (full, cut, theirs, from_table) = out;
        assert!(
            from_table,
            "the second walk with a floor was not from verified rules"
        );
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
