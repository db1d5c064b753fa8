// Owns the backtrace of a sampled allocation: the calling thread's return addresses, unwound
// from .eh_frame with a cache of unwind rules. Must never give a stack it is not sure of
// (anything unusual is left to the caller's libgcc walk), never read outside the thread's own
// stack, and never touch the loader from inside an allocation.

//! Sampled backtraces without interpreting the CFI anew for every frame.
//!
//! The system unwinder (libgcc's, behind the `backtrace` crate) finds each frame's FDE and
//! runs its CFI program on every walk: most of what a sample cost. This module unwinds with
//! `framehop`, which keeps the unwind rule of each return address it met in a cache, so a call
//! path seen before unwinds at the cost of a few loads per frame.
//!
//! **Modules.** [`prepare`] (called when sampling is switched on, never inside an
//! allocation) lists the objects loaded in the process with `dl_iterate_phdr`: for each, its
//! loaded range, its code and its `.eh_frame_hdr` and `.eh_frame` as the loader mapped them.
//! A shared object is kept only once it is pinned (`RTLD_NODELETE`), so the memory read here
//! can never be unmapped under a walk: while a run samples, a library loaded before it is not
//! unloaded by `dlclose`. A return address outside every listed object (a library loaded
//! after [`prepare`], a JIT) ends the walk with `None`, and the caller walks with libgcc.
//!
//! **Reads** of stack memory are bounded by the thread's own stack (from
//! `pthread_getattr_np`, once per thread): a walk on another stack (a coroutine's, a signal
//! stack) is not attempted.

/// Return addresses of the calling thread, innermost first, into `ips`: the first `skip`
/// frames left out (the first is inside this module, the second its caller's), and the frames
/// whose canonical frame address is above `floor` (those of the caller of the workload and
/// up). `None` when this module cannot vouch for the walk.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(super) use imp::trace;

/// List the loaded objects for [`trace`] (again: objects loaded since are added).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(super) use imp::prepare;

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub(super) fn trace(_floor: usize, _skip: usize, _ips: &mut [usize]) -> Option<usize> {
    None
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub(super) fn prepare() {}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use std::cell::Cell;
    use std::ops::Range;
    use std::sync::Mutex;

    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};

    type Data = &'static [u8];

    struct State {
        unwinder: UnwinderX86_64<Data>,
        cache: CacheX86_64,
        /// Loaded ranges of the listed objects, sorted.
        known: Vec<Range<u64>>,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    thread_local! {
        /// This thread's stack, `[low, high)`; `(0, 0)` before the first walk, `(1, 1)` when
        /// it cannot be known.
        static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// One loaded object: its range and sections, as mapped.
    struct Object {
        name: String,
        range: Range<u64>,
        bias: u64,
        text: Option<(Range<u64>, Data)>,
        eh_frame_hdr: (Range<u64>, Data),
        eh_frame: (Range<u64>, Data),
    }

    /// `len` bytes at `addr`, mapped by the loader for as long as the object stays loaded.
    fn mapped(addr: u64, len: u64) -> Data {
        // SAFETY: ranges of a loaded object's PT_LOAD segments, readable for as long as the
        // object is loaded (pinned, or the main program).
        unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) }
    }

    /// What `dl_iterate_phdr`'s callbacks fill: the names of the shared objects loaded, or
    /// the objects themselves (those whose name is in `pinned`, and the main program).
    struct Listing {
        pinned: Vec<std::ffi::CString>,
        names: Vec<std::ffi::CString>,
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
                std::ffi::CStr::from_ptr((*info).dlpi_name),
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
        let name = unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) };
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
        let loads: Vec<Range<u64>> = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD)
            .map(|h| bias + h.p_vaddr..bias + h.p_vaddr + h.p_memsz)
            .collect();
        let range = loads.iter().map(|r| r.start).min()?..loads.iter().map(|r| r.end).max()?;
        let hdr = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME)?;
        let hdr_at = bias + hdr.p_vaddr;
        let hdr_data = mapped(hdr_at, hdr.p_memsz);
        // version 1, then the encoding of the pointer to .eh_frame: pc-relative or absolute,
        // signed or unsigned 4 bytes (what linkers write).
        if hdr_data.len() < 8 || hdr_data[0] != 1 {
            return None;
        }
        let field = i32::from_le_bytes(hdr_data[4..8].try_into().ok()?);
        let eh_frame_at = match hdr_data[1] {
            0x1b => (hdr_at + 4).checked_add_signed(i64::from(field))?,
            0x03 => u64::from(field as u32),
            0x0b => bias.checked_add_signed(i64::from(field))?,
            _ => return None,
        };
        // .eh_frame runs to at most the end of its segment: the header's table gives each
        // FDE's offset, so bytes after its end are never read as entries.
        let segment = loads.iter().find(|r| r.contains(&eh_frame_at))?;
        let eh_frame_len = segment.end - eh_frame_at;
        let text = headers
            .iter()
            .find(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_X != 0)
            .map(|h| {
                let svma = h.p_vaddr..h.p_vaddr + h.p_filesz;
                (svma, mapped(bias + h.p_vaddr, h.p_filesz))
            });
        // SAFETY: a NUL-terminated name, empty for the main program.
        let name = unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) };
        Some(Object {
            name: name.to_string_lossy().into_owned(),
            range,
            bias,
            text,
            eh_frame_hdr: (hdr.p_vaddr..hdr.p_vaddr + hdr.p_memsz, hdr_data),
            eh_frame: (
                eh_frame_at - bias..eh_frame_at - bias + eh_frame_len,
                mapped(eh_frame_at, eh_frame_len),
            ),
        })
    }

    /// Keep the loaded object `name` loaded for good (`RTLD_NODELETE`), if it is.
    fn pin(name: &std::ffi::CStr) -> bool {
        // SAFETY: NOLOAD only looks the object up; NODELETE marks it never to be unloaded.
        let handle = unsafe {
            libc::dlopen(
                name.as_ptr(),
                libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            )
        };
        !handle.is_null()
    }

    pub(in crate::alloc) fn prepare() {
        let mut listing = Listing {
            pinned: Vec::new(),
            names: Vec::new(),
            objects: Vec::new(),
        };
        // The shared objects are pinned between two listings (not from inside the loader's
        // callback): those listed the second time and pinned can no longer be unloaded.
        // SAFETY: the callbacks only read what the loader gives them and fill `listing`.
        unsafe { libc::dl_iterate_phdr(Some(visit_names), (&raw mut listing).cast()) };
        listing.pinned = std::mem::take(&mut listing.names)
            .into_iter()
            .filter(|name| pin(name))
            .collect();
        // SAFETY: as above.
        unsafe { libc::dl_iterate_phdr(Some(visit_objects), (&raw mut listing).cast()) };
        let mut unwinder = UnwinderX86_64::new();
        let mut known = Vec::new();
        for object in listing.objects {
            let (text_svma, text) = match object.text {
                Some((svma, data)) => (Some(svma), Some(data)),
                None => (None, None),
            };
            let info = ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma,
                text,
                eh_frame_svma: Some(object.eh_frame.0),
                eh_frame: Some(object.eh_frame.1),
                eh_frame_hdr_svma: Some(object.eh_frame_hdr.0),
                eh_frame_hdr: Some(object.eh_frame_hdr.1),
                ..Default::default()
            };
            known.push(object.range.clone());
            unwinder.add_module(Module::new(object.name, object.range, object.bias, info));
        }
        known.sort_unstable_by_key(|r| r.start);
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        let cache = state.take().map_or_else(CacheX86_64::new, |s| s.cache);
        *state = Some(State {
            unwinder,
            cache,
            known,
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

    #[inline(never)]
    pub(in crate::alloc) fn trace(floor: usize, skip: usize, ips: &mut [usize]) -> Option<usize> {
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
        if !(low..high).contains(&(sp as usize)) {
            return None;
        }
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        let State {
            unwinder,
            cache,
            known,
        } = state.as_mut()?;
        let mut read = |addr: u64| {
            if addr.is_multiple_of(8) && addr >= sp && addr.saturating_add(8) <= high as u64 {
                // SAFETY: an aligned word of this thread's stack, between its pointer and top.
                Ok(unsafe { std::ptr::read_volatile(addr as *const u64) })
            } else {
                Err(())
            }
        };
        let is_known = |addr: u64| {
            let i = known.partition_point(|r| r.start <= addr);
            i > 0 && known[i - 1].contains(&addr)
        };
        let mut regs = UnwindRegsX86_64::new(ip, sp, bp);
        let mut address = FrameAddress::from_instruction_pointer(ip);
        let (mut depth, mut skip) = (0, skip);
        while depth < ips.len() {
            let next = unwinder.unwind_frame(address, &mut regs, cache, &mut read);
            // The frame's canonical frame address is the caller's stack pointer.
            if next.is_ok() && regs.sp() as usize > floor {
                break;
            }
            if skip > 0 {
                skip -= 1;
            } else {
                ips[depth] = address.address() as usize;
                depth += 1;
            }
            match next {
                Ok(Some(ra)) if is_known(ra - 1) => {
                    address = FrameAddress::from_return_address(ra)?;
                }
                // The outermost frame (its return address is undefined).
                Ok(None) => break,
                // Code no object listed holds, or a frame that could not be unwound: the
                // other walker decides.
                _ => return None,
            }
        }
        Some(depth)
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

    /// The return addresses of the libgcc walk, from the caller of `trace` on.
    fn by_libgcc() -> Vec<usize> {
        let mut ips = Vec::new();
        backtrace::trace(|frame| {
            ips.push(frame.ip() as usize);
            true
        });
        // libgcc reports the outermost frame (the thread's clone) with an address of 0.
        while ips.last() == Some(&0) {
            ips.pop();
        }
        ips
    }

    #[test]
    fn the_walk_matches_libgccs_frame_for_frame() {
        prepare();
        for depth in [0, 1, 5, 20] {
            let walked = nested_walks(depth);
            assert!(walked > depth as usize, "depth {depth}: {walked} frames");
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
                compare_walks("map");
                x * 2
            })
            .collect();
        assert_eq!(doubled, [2, 4, 6]);
        let mut m = std::collections::HashMap::new();
        m.entry(1).or_insert_with(|| {
            compare_walks("or_insert_with");
            0
        });
        std::thread::spawn(|| compare_walks("thread"))
            .join()
            .unwrap();
    }

    fn nested_walks(depth: u32) -> usize {
        let mut walked = 0;
        nested(depth, &mut || {
            walked = compare_walks(&format!("depth {depth}"))
        });
        walked
    }

    /// Walk here both ways and compare; the frames both walks share.
    #[inline(never)]
    fn compare_walks(context: &str) -> usize {
        let mut ips = [0; 64];
        let n = trace(usize::MAX, 0, &mut ips).expect("walked");
        let (ours, theirs) = (&ips[..n], by_libgcc());
        // Both start inside their own walker: compare from the first shared address (the
        // return address into this function's caller), and all the way down.
        let start = ours
            .iter()
            .position(|ip| theirs.contains(ip))
            .expect("shared");
        let from = theirs.iter().position(|ip| *ip == ours[start]).unwrap();
        assert_eq!(ours[start..], theirs[from..], "{context}");
        ours.len() - start
    }

    #[test]
    fn a_floor_cuts_the_walk_at_the_frame_holding_it() {
        prepare();
        let mut full = [0; 64];
        let mut cut = [0; 64];
        let here = 0u8;
        let floor = &here as *const u8 as usize;
        let (n_full, n_cut) = {
            let mut out = (0, 0);
            nested(3, &mut || {
                out = (
                    trace(usize::MAX, 0, &mut full).unwrap(),
                    trace(floor, 0, &mut cut).unwrap(),
                );
            });
            out
        };
        assert!(n_cut < n_full);
        // The cut walk is the full one's first frames (but for the return address into the
        // closure: `trace` is called from two places).
        assert_eq!(cut[2..n_cut], full[2..n_cut]);
        // It holds the frames of `nested` and the closure, not this test's or its callers'.
        assert!(n_cut >= 5, "{n_cut}");
    }
}
