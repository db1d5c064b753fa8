// Owns resolving return addresses of the running executable to frames (function, file, line,
// inlined frames included) from only the compile units they fall in. Must never give a frame
// it is not sure of: whatever it cannot resolve goes back to the caller (the `backtrace`
// crate's resolver, which reads every unit).

//! Symbols of this executable without reading all of its debug information.
//!
//! The `backtrace` crate resolves an address through `addr2line`, which first parses the
//! header, abbreviations and root entry of *every* compile unit of the binary: 25 ms of the
//! 32 ms the catalog's first resolution took (the whole catalog runs in about 0.35 s), and
//! more for a test binary with full debug information. A sampled stack only ever touches a
//! few units (yours, std's allocation plumbing). So this module maps the executable, finds
//! each address's unit in `.debug_aranges`, and gives `addr2line` a `.debug_info` that holds
//! only the units resolved so far, at their own offsets, the gaps between them filled with
//! empty units that share one abbreviation table: `addr2line` then skips the gaps for
//! nothing. When a new unit is needed, that section is built again (a few unit copies) and
//! the context with it.
//!
//! Anything unusual (no `.debug_aranges`, compressed or 64-bit DWARF, an address outside the
//! executable or in no unit's ranges, a unit without a name for the address) is left to the
//! caller.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use addr2line::gimli;
use gimli::{EndianSlice, RunTimeEndian, SectionId};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

use super::Frame;

type Reader = EndianSlice<'static, RunTimeEndian>;

/// The executable, mapped, with what resolving needs of it.
struct Exe {
    /// Its sections (the mapping is kept for the life of the process).
    sections: Vec<(SectionId, &'static [u8])>,
    info: &'static [u8],
    endian: RunTimeEndian,
    /// The loader's base of the executable, and runtime address minus the file's address.
    base: usize,
    bias: usize,
    /// `[begin, end)` address ranges of units (by `.debug_aranges`), sorted by `begin`.
    ranges: Vec<(u64, u64, usize)>,
    /// Every unit's offset and total length in `.debug_info`.
    units: Vec<(usize, usize)>,
    /// The filler units' abbreviation table (appended to `.debug_abbrev`), and the address size.
    filler_abbrev: u32,
    address_size: u8,
    /// A context per unit resolved so far (`None`: it could not be made).
    contexts: HashMap<usize, Option<UnitContext>>,
    /// The file, mapped for the life of the process.
    data: &'static [u8],
    /// The symbol table's functions (address, size, name), sorted: names of code without
    /// debug entries (the allocator shims the compiler generates). Read the first time one
    /// is needed (1 ms of the catalog's first resolution, which needed none).
    symbols: std::cell::OnceCell<Vec<(u64, u64, &'static str)>>,
}

/// `addr2line`'s context over a `.debug_info` holding one unit at its own offset.
struct UnitContext {
    /// Declared before `buffer`: dropped first, it borrows it.
    context: addr2line::Context<Reader>,
    _buffer: Anon,
}

/// An anonymous mapping (zero-filled, pages made resident only where written).
struct Anon {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by `Exe`, used under its mutex only.
unsafe impl Send for Anon {}
// SAFETY: the context's readers point into `Anon` and the executable's mapping, both owned or
// kept alive as long as it; the whole is used under the mutex only.
unsafe impl Send for Exe {}

impl Drop for Anon {
    fn drop(&mut self) {
        // SAFETY: mapped by `Anon::new` with this length.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl Anon {
    fn new(len: usize) -> Option<Anon> {
        // SAFETY: a fresh private anonymous mapping.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Anon {
            ptr: ptr.cast(),
            len: len.max(1),
        })
    }
}

static EXE: Mutex<Option<Option<Exe>>> = Mutex::new(None);

/// Units one context may hold (one and those it refers to) before its addresses are left to
/// the other resolver.
const MAX_UNITS: usize = 64;

/// The frames at `probe` in `context`, innermost first; an error when its entries refer to
/// an entry the context does not hold (`NoEntryAtGivenOffset`), or no name for a frame.
fn frames_at(
    context: &addr2line::Context<Reader>,
    probe: u64,
    symbol: impl Fn() -> Option<&'static str>,
) -> Result<Vec<Frame>, gimli::Error> {
    let mut iter = context.find_frames(probe).skip_all_loads()?;
    let mut frames = Vec::new();
    while let Some(frame) = iter.next()? {
        // Code without a debug entry (a compiler-generated shim): the symbol table's name.
        let raw = match frame.function.as_ref() {
            Some(function) => function.raw_name()?,
            None => symbol().ok_or(gimli::Error::MissingUnitDie)?.into(),
        };
        let function = format!("{:#}", backtrace::SymbolName::new(raw.as_bytes()));
        let (file, line) = frame
            .location
            .as_ref()
            .map_or((None, None), |l| (l.file, l.line));
        frames.push(Frame::at(function, file.map(std::path::Path::new), line));
    }
    Ok(frames)
}

/// The frames at return address `ip` (innermost first), or `None` when this module cannot
/// vouch for them.
pub(super) fn resolve(ip: usize) -> Option<Vec<Frame>> {
    let mut exe = EXE.lock().unwrap_or_else(|e| e.into_inner());
    let exe = exe.get_or_insert_with(Exe::open).as_mut()?;
    exe.frames(ip)
}

/// The bytes of the file at `path`, mapped read-only for the life of the process.
fn map_file(path: &str) -> Option<&'static [u8]> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    // SAFETY: a private read-only mapping of a file we opened; never unmapped.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED || len == 0 {
        return None;
    }
    // SAFETY: `len` readable bytes, mapped for good.
    Some(unsafe { std::slice::from_raw_parts(ptr.cast(), len) })
}

/// The load address of the object containing `addr`, as the dynamic loader has it.
fn object_base(addr: usize) -> Option<usize> {
    // SAFETY: dladdr only reads the loader's tables.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let found = unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) };
    (found != 0).then_some(info.dli_fbase as usize)
}

impl Exe {
    fn open() -> Option<Exe> {
        let data = map_file("/proc/self/exe")?;
        let file = object::File::parse(data).ok()?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        // The loader's base is the page of the lowest loaded segment.
        let lowest = file.segments().map(|s| s.address()).min()? as usize & !0xfff;
        let base = object_base(Exe::open as *const () as usize)?;
        // Only when this code is in the main program, whose file /proc/self/exe is (not in a
        // shared library: a Python extension, a plugin).
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
        if phdr == 0 || object_base(phdr)? != base {
            return None;
        }
        let bias = base.checked_sub(lowest)?;
        let ids = [
            SectionId::DebugAbbrev,
            SectionId::DebugAddr,
            SectionId::DebugAranges,
            SectionId::DebugInfo,
            SectionId::DebugLine,
            SectionId::DebugLineStr,
            SectionId::DebugRanges,
            SectionId::DebugRngLists,
            SectionId::DebugStr,
            SectionId::DebugStrOffsets,
        ];
        let mut sections = Vec::new();
        for id in ids {
            if let Some(section) = file.section_by_name(id.name()) {
                // Compressed debug information is the other resolver's to handle.
                let data = match section.compressed_file_range().ok()?.format {
                    object::CompressionFormat::None => section.data().ok()?,
                    _ => return None,
                };
                sections.push((id, data));
            }
        }
        let section = |sections: &[(SectionId, &'static [u8])], id| {
            sections.iter().find(|(s, _)| *s == id).map(|(_, d)| *d)
        };
        let info = section(&sections, SectionId::DebugInfo)?;
        // The abbreviations, and after them a table of our own for the filler units: code 1,
        // a partial unit without children or attributes, so that parsing one stops at once.
        let abbrev = section(&sections, SectionId::DebugAbbrev)?;
        let filler_abbrev = u32::try_from(abbrev.len()).ok()?;
        let mut with_filler = abbrev.to_vec();
        with_filler.extend_from_slice(&[1, 0x3c, 0, 0, 0, 0]);
        let with_filler: &'static [u8] = Box::leak(with_filler.into_boxed_slice());
        for (id, data) in &mut sections {
            if *id == SectionId::DebugAbbrev {
                *data = with_filler;
            }
        }
        let aranges =
            gimli::DebugAranges::new(section(&sections, SectionId::DebugAranges)?, endian);
        let mut ranges = Vec::new();
        let mut headers = aranges.headers();
        while let Ok(Some(header)) = headers.next() {
            let unit = header.debug_info_offset().0;
            let mut entries = header.entries();
            while let Ok(Some(entry)) = entries.next() {
                let range = entry.range();
                if range.end > range.begin {
                    ranges.push((range.begin, range.end, unit));
                }
            }
        }
        ranges.sort_unstable();
        let units = unit_spans(info, endian)?;
        let first = gimli::DebugInfo::new(info, endian).units().next().ok()??;
        Some(Exe {
            data,
            sections,
            info,
            endian,
            base,
            bias,
            ranges,
            units,
            filler_abbrev,
            address_size: first.address_size(),
            contexts: HashMap::new(),
            symbols: std::cell::OnceCell::new(),
        })
    }

    fn frames(&mut self, ip: usize) -> Option<Vec<Frame>> {
        if object_base(ip)? != self.base {
            return None;
        }
        // A return address: look one byte back, at the call.
        let probe = (ip.checked_sub(self.bias)? - 1) as u64;
        let unit = self.unit_of(probe)?;
        if !self.contexts.contains_key(&unit) {
            // A split-DWARF skeleton's functions are in a .dwo: the other resolver loads it.
            let made = if self.is_skeleton(unit) {
                None
            } else {
                self.unit_context(self.with_references(unit))
            };
            self.contexts.insert(unit, made);
        }
        let context = self.contexts.get(&unit)?.as_ref()?;
        let frames = frames_at(&context.context, probe, || self.symbol(probe)).ok()?;
        (!frames.is_empty()).then_some(frames)
    }

    /// `unit` and the units its entries refer to (an inlined function's origin may be in
    /// another unit), [`MAX_UNITS`] at most: an entry outside them fails the lookup, which is
    /// then left to the other resolver.
    fn with_references(&self, unit: usize) -> BTreeSet<usize> {
        let mut units = BTreeSet::from([unit]);
        units.extend(
            self.references(unit)
                .unwrap_or_default()
                .into_iter()
                .take(MAX_UNITS - 1),
        );
        units
    }

    /// The header of `unit` and its abbreviations, to read its entries raw.
    fn header(&self, unit: usize) -> Option<(gimli::UnitHeader<Reader>, gimli::Abbreviations)> {
        let info = gimli::DebugInfo::new(self.info, self.endian);
        let header = info.header_from_offset(gimli::DebugInfoOffset(unit)).ok()?;
        let abbrev = self
            .sections
            .iter()
            .find(|(id, _)| *id == SectionId::DebugAbbrev)?
            .1;
        let abbreviations = header
            .abbreviations(&gimli::DebugAbbrev::new(abbrev, self.endian))
            .ok()?;
        Some((header, abbreviations))
    }

    /// Whether `unit` is a split-DWARF skeleton (its entries are in a `.dwo` file), or cannot
    /// be read.
    fn is_skeleton(&self, unit: usize) -> bool {
        let skeleton = || -> Option<bool> {
            let (header, abbreviations) = self.header(unit)?;
            if matches!(header.type_(), gimli::UnitType::Skeleton(_)) {
                return Some(true);
            }
            let mut entries = header.entries_raw(&abbreviations, None).ok()?;
            let root = entries.read_abbreviation().ok()??;
            Some(root.attributes().iter().any(|spec| {
                matches!(
                    spec.name(),
                    gimli::DW_AT_dwo_name | gimli::DW_AT_GNU_dwo_name | gimli::DW_AT_GNU_dwo_id
                )
            }))
        };
        skeleton().unwrap_or(true)
    }

    /// The units that the entries of `unit` refer to by `.debug_info` offset.
    fn references(&self, unit: usize) -> Option<BTreeSet<usize>> {
        let (header, abbreviations) = self.header(unit)?;
        let mut entries = header.entries_raw(&abbreviations, None).ok()?;
        let mut out = BTreeSet::new();
        while !entries.is_empty() {
            let Some(abbreviation) = entries.read_abbreviation().ok()? else {
                continue;
            };
            // Only a `ref_addr` (or an `indirect` form, which may be one) can refer to another
            // unit: every other attribute is skipped undecoded, most of them by their size
            // alone (decoding them all was most of the time spent here).
            let refers = |spec: &gimli::AttributeSpecification| {
                matches!(
                    spec.form(),
                    gimli::DW_FORM_ref_addr | gimli::DW_FORM_indirect
                )
            };
            let specs = abbreviation.attributes();
            if !specs.iter().any(refers) {
                entries.skip_attributes(specs).ok()?;
                continue;
            }
            for spec in specs {
                if !refers(spec) {
                    entries.skip_attributes(std::slice::from_ref(spec)).ok()?;
                    continue;
                }
                let attribute = entries.read_attribute(*spec).ok()?;
                if let gimli::AttributeValue::DebugInfoRef(offset) = attribute.value()
                    && let Some(other) = self.unit_at(offset.0)
                    && other != unit
                {
                    out.insert(other);
                }
            }
        }
        Some(out)
    }

    /// The name of the function of the symbol table that holds `probe`.
    fn symbol(&self, probe: u64) -> Option<&'static str> {
        let symbols = self.symbols.get_or_init(|| {
            let Ok(file) = object::File::parse(self.data) else {
                return Vec::new();
            };
            let mut symbols: Vec<(u64, u64, &'static str)> = file
                .symbols()
                .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
                .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?)))
                .collect();
            symbols.sort_unstable();
            symbols
        });
        let i = symbols.partition_point(|(start, _, _)| *start <= probe);
        let (start, size, name) = *symbols.get(i.checked_sub(1)?)?;
        (probe < start + size.max(1)).then_some(name)
    }

    /// The unit that holds `.debug_info` offset `offset`.
    fn unit_at(&self, offset: usize) -> Option<usize> {
        let i = self.units.partition_point(|(start, _)| *start <= offset);
        let (start, len) = *self.units.get(i.checked_sub(1)?)?;
        (offset < start + len).then_some(start)
    }

    /// The unit whose ranges hold `probe`.
    fn unit_of(&self, probe: u64) -> Option<usize> {
        let i = self.ranges.partition_point(|(begin, _, _)| *begin <= probe);
        // Ranges may nest or overlap (rare): look back a little for one that holds it.
        self.ranges[..i]
            .iter()
            .rev()
            .take(8)
            .find(|(begin, end, _)| (*begin..*end).contains(&probe))
            .map(|(_, _, unit)| *unit)
    }

    /// A context over a `.debug_info` that holds `units` at their own offsets, one empty unit
    /// in each gap before them: parsing it reads those units only.
    fn unit_context(&self, units: BTreeSet<usize>) -> Option<UnitContext> {
        let spans: Vec<(usize, usize)> = units
            .iter()
            .map(|u| {
                let i = self
                    .units
                    .binary_search_by_key(u, |(offset, _)| *offset)
                    .ok()?;
                Some(self.units[i])
            })
            .collect::<Option<_>>()?;
        let (last, last_len) = *spans.last()?;
        let buffer = Anon::new(last + last_len)?;
        // SAFETY: `buffer.len` writable bytes, owned by `buffer`.
        let out = unsafe { std::slice::from_raw_parts_mut(buffer.ptr, buffer.len) };
        let mut at = 0;
        for (offset, len) in spans {
            if offset > at {
                self.filler(&mut out[at..offset])?;
            }
            out[offset..offset + len].copy_from_slice(&self.info[offset..offset + len]);
            at = offset + len;
        }
        // SAFETY: the context that borrows it is dropped before the buffer (field order in
        // `UnitContext`), which is never moved out of it.
        let info: &'static [u8] = unsafe { std::slice::from_raw_parts(buffer.ptr, buffer.len) };
        let endian = self.endian;
        let sections = &self.sections;
        let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, ()> {
            let data = if id == SectionId::DebugInfo {
                info
            } else {
                sections
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map_or(&[][..], |(_, d)| *d)
            };
            Ok(EndianSlice::new(data, endian))
        })
        .ok()?;
        let context = addr2line::Context::from_dwarf(dwarf).ok()?;
        Some(UnitContext {
            context,
            _buffer: buffer,
        })
    }
}

impl Exe {
    /// Make `gap` (zeros: a fresh mapping) one empty DWARF 4 unit: its header, then a root
    /// entry of the filler table (no children, no attributes). Only its first page is
    /// touched.
    fn filler(&self, gap: &mut [u8]) -> Option<()> {
        use gimli::Endianity;
        // unit_length (4), version (2), debug_abbrev_offset (4), address_size (1), root (1).
        if gap.len() < 12 {
            return None;
        }
        let length = u32::try_from(gap.len() - 4).ok()?;
        self.endian.write_u32(&mut gap[0..4], length);
        self.endian.write_u16(&mut gap[4..6], 4);
        self.endian.write_u32(&mut gap[6..10], self.filler_abbrev);
        gap[10] = self.address_size;
        gap[11] = 1;
        Some(())
    }
}

/// Every unit's offset and total length, from the lengths in their headers (32-bit DWARF
/// only).
fn unit_spans(info: &[u8], endian: RunTimeEndian) -> Option<Vec<(usize, usize)>> {
    use gimli::Endianity;
    let mut spans = Vec::new();
    let mut at = 0;
    while at + 4 <= info.len() {
        let length = endian.read_u32(&info[at..at + 4]) as usize;
        if length >= 0xffff_fff0 {
            return None;
        }
        let total = 4 + length;
        if at + total > info.len() {
            return None;
        }
        spans.push((at, total));
        at += total;
    }
    Some(spans)
}
