/*
 * Exact heap counters for any dynamically linked program, for `profile -- COMMAND`.
 *
 * Loaded with LD_PRELOAD by the profiler (memcreep), this library interposes the malloc
 * family, forwards every call to the next definition (dlsym RTLD_NEXT: glibc's malloc, or
 * jemalloc/tcmalloc when the program links one dynamically) and counts what it did, per
 * thread, in a region of shared memory the profiler created for this one run (a file in a
 * private 0700 directory, created 0600 with O_EXCL, named by MEMCREEP_HEAP_FILE). With markers
 * (MEMCREEP_HEAP_LINES=1) it also snapshots its counters whenever the program writes a line to
 * stdout or stderr, so that the profiler can pair the k-th line it reads with the state of the
 * program when that line was written, however far the program runs ahead.
 *
 * Written in C, not Rust, on purpose: this code runs inside arbitrary processes, before their
 * main and inside their malloc. A Rust cdylib brings its runtime (its own TLS with destructors
 * registered through the allocator being interposed, panics that unwind through C frames, a
 * std that allocates) into every one of them; here the whole state is a few static-TLS words
 * (initial-exec: no __tls_get_addr, which may itself call malloc), nothing allocates, and each
 * path is small enough to check for re-entrancy by reading it.
 *
 * Sizes are malloc_usable_size of the block, read on allocation and on free: no header is
 * added, so the program's memory layout is the one it has without us.
 *
 * Counting: each thread owns a 64-byte slot (owner pid, in use, live bytes, allocations,
 * frees, allocated bytes, peak, published, calls at the window's start). Only the owning
 * thread writes its counters (whoever starts a peak window writes the last field and the
 * peak), with one non-locked add instruction per counter on x86-64 (so a signal handler that
 * allocates on the same thread cannot lose an update), relaxed atomic adds elsewhere. A thread that exits
 * hands its slot, counts and all, to the next new thread of its process. A thread that runs
 * after its exit destructor, or finds no free slot, uses its process's shared slot with
 * atomic read-modify-writes. Nothing on these paths takes a lock. malloc and free test one
 * thread-local pointer (tl_hot: counting, sizes from glibc's header, a slot of its own) and
 * then do only the adds; every other case takes the general path.
 *
 * Peak: every slot keeps the peak of its own live bytes, raised on allocation only (a free
 * never looks at it). A new peak window starts when the line writer (with markers) or the
 * profiler (in time) sets each slot's peak to its live bytes and bumps the epoch, the window's
 * number. The sum of the slots' peaks is exact when one thread makes all the calls, but with
 * several it counts what one thread allocates and another frees (a producer and a consumer
 * read as the whole traffic). So each slot also publishes its live bytes into its process's record
 * (a slot of its own, see the layout's RECORD) whenever they moved more than PUBLISH_BEYOND
 * from what it last published (checked after each call is counted), with one atomic add to
 * the record's sum and a raise of the sum's peak; an exiting thread publishes what is left.
 * Between calls no slot holds more than PUBLISH_BEYOND unpublished, so the process's heap
 * never exceeds the published sum plus that much per slot (for a slot that made no call in
 * the window, what it held when the window started). The process's peak is the lower of
 * the two bounds, and never below its live bytes. A thread that allocates or publishes
 * during a reset may keep a peak from just before it.
 *
 * Processes: the first process that attaches is the root (the program). A fork child, or a
 * program it executes, counts in its own slots when MEMCREEP_HEAP_CHILDREN=1 and otherwise
 * stops counting (its allocations are its own, not the program's). A process image replaced
 * by exec leaves its slots behind: the new image marks them dead when it attaches.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* The layout constants (MC_*) come from build.rs, from src/layout.rs. */
#ifndef MC_MAGIC
#error "build with the MC_* layout macros (build.rs passes them)"
#endif

#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TLS __thread __attribute__((tls_model("initial-exec")))

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t slots;
    uint32_t ring;
    uint32_t root_pid;
    uint32_t processes;
    uint32_t flags;
    uint32_t used;
    uint32_t declined;
    uint64_t hwm;
    int64_t exited_allocations;
    int64_t exited_allocated;
    uint64_t epoch;
    uint64_t reclaims;
    char pad1[MC_H_LINES - MC_H_RECLAIMS - 8];
    uint64_t lines[2];
} header_t;

typedef struct {
    uint32_t owner;
    uint32_t in_use;
    int64_t live_bytes;
    int64_t allocations;
    int64_t frees;
    int64_t allocated_bytes;
    int64_t peak;
    int64_t published;
    int64_t reset_calls;
} slot_t;

/* A process's record: a slot with in_use RECORD. */
typedef struct {
    uint32_t owner;
    uint32_t in_use;
    int64_t sum;
    int64_t peak;
    int64_t pad[5];
} record_t;

typedef struct {
    uint64_t seq;
    uint64_t hash;
    int64_t live_bytes;
    int64_t blocks;
    int64_t allocated_bytes;
    int64_t allocations;
    uint64_t epoch;
    uint32_t pid;
    uint32_t pad;
} entry_t;

typedef struct {
    uint64_t tag;
    int64_t peak;
} peak_t;

_Static_assert(offsetof(header_t, magic) == MC_H_MAGIC, "header layout");
_Static_assert(offsetof(header_t, version) == MC_H_VERSION, "header layout");
_Static_assert(offsetof(header_t, slots) == MC_H_SLOTS, "header layout");
_Static_assert(offsetof(header_t, ring) == MC_H_RING, "header layout");
_Static_assert(offsetof(header_t, root_pid) == MC_H_ROOT_PID, "header layout");
_Static_assert(offsetof(header_t, processes) == MC_H_PROCESSES, "header layout");
_Static_assert(offsetof(header_t, declined) == MC_H_DECLINED, "header layout");
_Static_assert(offsetof(header_t, hwm) == MC_H_HWM, "header layout");
_Static_assert(offsetof(header_t, exited_allocations) == MC_H_EXITED_ALLOCATIONS, "header layout");
_Static_assert(offsetof(header_t, exited_allocated) == MC_H_EXITED_ALLOCATED, "header layout");
_Static_assert(offsetof(header_t, reclaims) == MC_H_RECLAIMS, "header layout");
_Static_assert(offsetof(header_t, flags) == MC_H_FLAGS, "header layout");
_Static_assert(offsetof(header_t, used) == MC_H_USED, "header layout");
_Static_assert(offsetof(header_t, epoch) == MC_H_EPOCH, "header layout");
_Static_assert(offsetof(header_t, lines) == MC_H_LINES, "header layout");
_Static_assert(sizeof(header_t) <= MC_HEADER_SIZE, "header layout");
_Static_assert(sizeof(slot_t) == MC_SLOT_SIZE, "slot layout");
_Static_assert(offsetof(slot_t, owner) == MC_S_OWNER, "slot layout");
_Static_assert(offsetof(slot_t, in_use) == MC_S_IN_USE, "slot layout");
_Static_assert(offsetof(slot_t, live_bytes) == MC_S_LIVE_BYTES, "slot layout");
_Static_assert(offsetof(slot_t, allocations) == MC_S_ALLOCATIONS, "slot layout");
_Static_assert(offsetof(slot_t, frees) == MC_S_FREES, "slot layout");
_Static_assert(offsetof(slot_t, allocated_bytes) == MC_S_ALLOCATED_BYTES, "slot layout");
_Static_assert(offsetof(slot_t, peak) == MC_S_PEAK, "slot layout");
_Static_assert(offsetof(slot_t, published) == MC_S_PUBLISHED, "slot layout");
_Static_assert(offsetof(slot_t, reset_calls) == MC_S_RESET_CALLS, "slot layout");
_Static_assert(sizeof(record_t) == MC_SLOT_SIZE, "record layout");
_Static_assert(offsetof(record_t, sum) == MC_R_SUM, "record layout");
_Static_assert(offsetof(record_t, peak) == MC_R_PEAK, "record layout");
_Static_assert(sizeof(entry_t) == MC_ENTRY_SIZE, "entry layout");
_Static_assert(offsetof(entry_t, seq) == MC_E_SEQ, "entry layout");
_Static_assert(offsetof(entry_t, hash) == MC_E_HASH, "entry layout");
_Static_assert(offsetof(entry_t, live_bytes) == MC_E_LIVE_BYTES, "entry layout");
_Static_assert(offsetof(entry_t, blocks) == MC_E_BLOCKS, "entry layout");
_Static_assert(offsetof(entry_t, allocated_bytes) == MC_E_ALLOCATED_BYTES, "entry layout");
_Static_assert(offsetof(entry_t, allocations) == MC_E_ALLOCATIONS, "entry layout");
_Static_assert(offsetof(entry_t, epoch) == MC_E_EPOCH, "entry layout");
_Static_assert(offsetof(entry_t, pid) == MC_E_PID, "entry layout");
_Static_assert(sizeof(peak_t) == MC_PEAK_SIZE, "peak layout");

/* ---- state ------------------------------------------------------------------------------ */

enum { MODE_UNINIT, MODE_RESOLVING, MODE_PASS, MODE_COUNT };
static int mode = MODE_UNINIT;

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static size_t (*real_usable)(void *);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fflush)(FILE *);
static pid_t (*real_fork)(void);

/* The next malloc_usable_size belongs to the object of the next malloc: sizes can be read.
 * Without it the process is not counted (see resolve). */
static int sizes_known;

/* glibc's chunk header gives the usable size in one load from memory the call just touched
 * (musable() without its look at the next chunk, which only matters for a free block). Used
 * when the next malloc is glibc's and a self-test at start agrees with malloc_usable_size. */
static int glibc_sizes;

/* The usable size from glibc's chunk header: the chunk size less its 8-byte header, less 8
 * more for an mmapped chunk (IS_MMAPPED, bit 1: (h & 2) << 2 is 8 then, 0 otherwise). */
static inline size_t glibc_usable(const void *p) {
    size_t h = ((const size_t *)p)[-1];
    return (h & ~(size_t)7) - 8 - ((h & 2) << 2);
}

static inline size_t usable(void *p) {
#if defined(__x86_64__)
    if (LIKELY(glibc_sizes))
        return glibc_usable(p);
#endif
    return real_usable(p);
}


static char *region;
static header_t *hdr;
static slot_t *slots;
static entry_t *rings[2];
static peak_t *peaks;
static uint32_t my_pid;
static slot_t *shared_slot;
static record_t *record;
static int children_on;
static int lines_wanted;
static int lines_on;
static pthread_key_t exit_key;
static int key_ok;

enum { TL_NONE, TL_OWN, TL_CLAIMING, TL_SHARED, TL_EXITED, TL_RESOLVING };
static TLS slot_t *tl_slot;
/* tl_slot when sizes come from glibc's header, else NULL: the one test of malloc's and free's
 * fast paths. A thread has a slot only while its process counts (fork_child clears it, the
 * only way out of MODE_COUNT), so this says "counting, glibc, own slot" in one load. */
static TLS slot_t *tl_hot;
static TLS int tl_state;

/* ---- bootstrap arena: what dlsym asks for before the real functions are known ------------ */

#define BOOT_SIZE (256 * 1024)
static _Alignas(64) char boot[BOOT_SIZE];
static size_t boot_used;

static void *boot_alloc(size_t n, size_t align) {
    if (align < 16)
        align = 16;
    if (n > BOOT_SIZE || align > BOOT_SIZE / 4)
        goto full;
    for (;;) {
        size_t cur = LOAD(&boot_used);
        uintptr_t start = (uintptr_t)boot + cur + 16;
        uintptr_t p = (start + align - 1) & ~(uintptr_t)(align - 1);
        size_t end = (size_t)(p - (uintptr_t)boot) + n;
        if (end > BOOT_SIZE)
            goto full;
        if (__atomic_compare_exchange_n(&boot_used, &cur, end, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
            ((size_t *)p)[-1] = n;
            return (void *)p; /* static memory, never reused: already zero */
        }
    }
full:
    errno = ENOMEM;
    return NULL;
}

static inline int in_boot(const void *p) {
    return (const char *)p >= boot && (const char *)p < boot + BOOT_SIZE;
}

static inline size_t boot_size(const void *p) { return ((const size_t *)p)[-1]; }

/* ---- resolving the next definitions ---------------------------------------------------- */

static void *next(const char *name, const char *fallback) {
    void *f = dlsym(RTLD_NEXT, name);
    if (!f && fallback)
        f = dlsym(RTLD_NEXT, fallback);
    return f;
}

/* Find the functions we forward to. dlsym may allocate: those calls see MODE_RESOLVING on a
 * thread in TL_RESOLVING and are served from the bootstrap arena. */
static void resolve(void) {
    int m = LOAD_ACQ(&mode);
    if (LIKELY(m >= MODE_PASS))
        return;
    if (tl_state == TL_RESOLVING)
        return;
    int expected = MODE_UNINIT;
    if (!__atomic_compare_exchange_n(&mode, &expected, MODE_RESOLVING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        while (LOAD_ACQ(&mode) == MODE_RESOLVING)
            sched_yield();
        return;
    }
    int saved = tl_state;
    tl_state = TL_RESOLVING;
    real_malloc = (void *(*)(size_t))next("malloc", "__libc_malloc");
    real_free = (void (*)(void *))next("free", "__libc_free");
    real_calloc = (void *(*)(size_t, size_t))next("calloc", "__libc_calloc");
    real_realloc = (void *(*)(void *, size_t))next("realloc", "__libc_realloc");
    real_posix_memalign = (int (*)(void **, size_t, size_t))next("posix_memalign", NULL);
    real_aligned_alloc = (void *(*)(size_t, size_t))next("aligned_alloc", NULL);
    real_memalign = (void *(*)(size_t, size_t))next("memalign", "__libc_memalign");
    real_valloc = (void *(*)(size_t))next("valloc", NULL);
    real_pvalloc = (void *(*)(size_t))next("pvalloc", NULL);
    real_usable = (size_t(*)(void *))next("malloc_usable_size", NULL);
    real_write = (ssize_t(*)(int, const void *, size_t))next("write", NULL);
    real_writev = (ssize_t(*)(int, const struct iovec *, int))next("writev", NULL);
    real_fflush = (int (*)(FILE *))next("fflush", NULL);
    real_fork = (pid_t(*)(void))next("_Fork", NULL);
    tl_state = saved;
    /* Sizes are read with the malloc_usable_size of the allocator that made the block: one
     * from another object (an allocator that does not define it, so that glibc's is found)
     * would read headers that are not there. Such a process is not counted. */
    Dl_info of_malloc, of_usable;
    sizes_known = real_malloc && real_usable && dladdr((void *)real_malloc, &of_malloc) &&
                  dladdr((void *)real_usable, &of_usable) &&
                  of_malloc.dli_fbase == of_usable.dli_fbase;
#if defined(__x86_64__)
    Dl_info info;
    if (real_malloc && real_usable && real_free && dladdr((void *)real_malloc, &info) &&
        info.dli_fname && strstr(info.dli_fname, "libc.so")) {
        int agree = 1;
        /* The mapped size is above glibc's 32 MiB cap on the mmap threshold it raises when
         * a mapped block is freed: a smaller one moved the threshold for the whole program
         * (blocks of 140-300 KB served from the heap instead of mapped: other RSS). */
        static const size_t sizes[] = {1, 24, 100, 1000, 70000, (size_t)33 << 20};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            void *p = real_malloc(sizes[k]);
            if (!p)
                continue;
            size_t h = ((size_t *)p)[-1];
            agree &= real_usable(p) == glibc_usable(p) &&
                     glibc_usable(p) == (h & ~(size_t)7) - ((h & 2) ? 16 : 8);
            real_free(p);
        }
        glibc_sizes = agree;
    }
#endif
    if (!real_malloc || !real_free || !real_calloc || !real_realloc || !real_usable) {
        static const char msg[] =
            "memcreep preload: no malloc to forward to; the program cannot run with it\n";
        syscall(SYS_write, 2, msg, sizeof msg - 1);
        _exit(127);
    }
    STORE_REL(&mode, MODE_PASS);
}

/* True when the real functions are not there yet for this call: serve it from the arena. */
static inline int early(void) {
    if (LIKELY(LOAD_ACQ(&mode) >= MODE_PASS))
        return 0;
    if (tl_state == TL_RESOLVING || LOAD_ACQ(&mode) == MODE_RESOLVING)
        return 1;
    resolve();
    return LOAD_ACQ(&mode) < MODE_PASS;
}

/* ---- slots ----------------------------------------------------------------------------- */

static inline void own_add(int64_t *p, int64_t v) {
#if defined(__x86_64__)
    /* One instruction: a signal handler on this thread runs before or after it, never
     * inside; no lock prefix, since only this thread writes the slot. */
    __asm__ volatile("addq %1, %0" : "+m"(*p) : "er"(v));
#else
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#endif
}

static uint32_t used_slots(void) {
    uint32_t used = LOAD_ACQ(&hdr->used);
    return used < MC_SLOTS ? used : MC_SLOTS;
}

/* Whether the process `owner` is gone (reaped): its slots can be taken over. The system call
 * itself, not libc's kill(), which a program may interpose. */
static int gone(uint32_t owner) {
    if (owner == (uint32_t)MC_DEAD)
        return 1;
    if (owner == 0 || owner == (uint32_t)MC_RECLAIMING || owner == my_pid)
        return 0;
    int saved = errno;
    int none = syscall(SYS_kill, (pid_t)owner, 0) != 0 && errno == ESRCH;
    errno = saved;
    return none;
}

/* A slot of a process that is gone, cleared for this one: what it counted moves to the
 * header's exited counts (the reclaim count odd meanwhile), so that the tree's cumulative
 * counts never fall. With --include-children, a program that ran a few hundred short
 * commands (each process takes a record and a slot or two) used every slot up, and its later
 * children went uncounted: a worker's leak read as "heap counters are missing". NULL when
 * every slot is some live process's. */
static slot_t *reclaimed_slot(uint32_t in_use) {
    /* Owners come in runs of slots (a record, then its threads'): ask once per run. */
    uint32_t alive = 0;
    for (uint32_t i = 0; i < MC_SLOTS; i++) {
        slot_t *s = &slots[i];
        uint32_t owner = LOAD_ACQ(&s->owner);
        if (owner == alive)
            continue;
        if (!gone(owner)) {
            alive = owner;
            continue;
        }
        if (!__atomic_compare_exchange_n(&s->owner, &owner,
                                                         (uint32_t)MC_RECLAIMING, 0,
                                                         __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        __atomic_fetch_add(&hdr->reclaims, 1, __ATOMIC_ACQ_REL);
        if (LOAD(&s->in_use) != MC_RECORD) {
            __atomic_fetch_add(&hdr->exited_allocations, LOAD(&s->allocations), __ATOMIC_RELAXED);
            __atomic_fetch_add(&hdr->exited_allocated, LOAD(&s->allocated_bytes),
                               __ATOMIC_RELAXED);
        }
        STORE(&s->live_bytes, 0);
        STORE(&s->allocations, 0);
        STORE(&s->frees, 0);
        STORE(&s->allocated_bytes, 0);
        STORE(&s->peak, 0);
        STORE(&s->published, 0);
        STORE(&s->reset_calls, 0);
        STORE(&s->in_use, in_use);
        __atomic_fetch_add(&hdr->reclaims, 1, __ATOMIC_ACQ_REL);
        STORE_REL(&s->owner, my_pid);
        return s;
    }
    return NULL;
}

/* A never-used slot for this process (or, once none is left, one a process that is gone
 * left), `in_use` set as given. NULL when none is left. */
static slot_t *fresh_slot(uint32_t in_use) {
    uint32_t i = __atomic_fetch_add(&hdr->used, 1, __ATOMIC_ACQ_REL);
    if (i >= MC_SLOTS) {
        slot_t *s = reclaimed_slot(in_use);
        if (!s)
            __atomic_fetch_or(&hdr->flags, MC_FLAG_OUT_OF_SLOTS, __ATOMIC_RELAXED);
        return s;
    }
    slot_t *s = &slots[i];
    STORE(&s->in_use, in_use);
    STORE_REL(&s->owner, my_pid);
    return s;
}

/* A slot for a new thread of this process: one an exited thread of it left (counts kept),
 * else a never-used one. NULL when none is left. */
static slot_t *claim_slot(void) {
    uint32_t used = used_slots();
    for (uint32_t i = 0; i < used; i++) {
        slot_t *s = &slots[i];
        if (LOAD_ACQ(&s->owner) == my_pid && s != shared_slot && LOAD(&s->in_use) == 0) {
            uint32_t zero = 0;
            if (__atomic_compare_exchange_n(&s->in_use, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED))
                return s;
        }
    }
    return fresh_slot(1);
}

/* ---- publishing (see "Peak" above) ------------------------------------------------------ */

static void raise_to(int64_t *peak, int64_t value) {
    int64_t seen = LOAD(peak);
    while (value > seen && !__atomic_compare_exchange_n(peak, &seen, value, 1,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static inline int too_far(int64_t live, int64_t published) {
    return live - published > MC_PUBLISH_BEYOND || published - live > MC_PUBLISH_BEYOND;
}

/* Publish the slot's live bytes. The exchange keeps the record's sum equal to the sum of
 * `published` even when a signal handler publishes on this thread in between (or threads
 * sharing a slot race); but then the value exchanged last may be the older one, so the
 * drift is looked at again until it is within bounds. */
static __attribute__((noinline)) void publish(slot_t *s) {
    int64_t now = LOAD(&s->live_bytes);
    do {
        int64_t before = __atomic_exchange_n(&s->published, now, __ATOMIC_RELAXED);
        int64_t sum = __atomic_add_fetch(&record->sum, now - before, __ATOMIC_RELAXED);
        raise_to(&record->peak, sum);
        now = LOAD(&s->live_bytes);
    } while (too_far(now, LOAD(&s->published)));
}

/* After live bytes grew to `live`: publish when they are too far above. `published` is read
 * as a plain field, so that the test is one compare with memory: only this thread writes it
 * (the exchange in `publish`; a signal handler's runs before or after the read). Live bytes
 * never come near the ends of an int64. */
static inline void publish_above(slot_t *s, int64_t live) {
    if (UNLIKELY(live - MC_PUBLISH_BEYOND > s->published))
        publish(s);
}

/* After live bytes fell: publish when they are too far below. */
static inline void publish_below(slot_t *s) {
    if (UNLIKELY(LOAD(&s->live_bytes) + MC_PUBLISH_BEYOND < s->published))
        publish(s);
}

/* The calling thread's slot when it has none yet; *shared says whether it is the process's
 * shared one. NULL when this process does not count. */
static slot_t *slot_cold(int *shared) {
    *shared = 1;
    if (LOAD_ACQ(&mode) != MODE_COUNT)
        return NULL;
    if (tl_state == TL_CLAIMING || tl_state == TL_SHARED || tl_state == TL_EXITED)
        return shared_slot;
    tl_state = TL_CLAIMING;
    slot_t *s = claim_slot();
    if (!s) {
        tl_state = TL_SHARED;
        return shared_slot;
    }
    if (key_ok)
        pthread_setspecific(exit_key, s);
    tl_slot = s;
    tl_hot = glibc_sizes ? s : NULL;
    tl_state = TL_OWN;
    *shared = 0;
    return s;
}

static void count_shared(slot_t *s, int64_t grow, int64_t allocated, int64_t allocs,
                         int64_t frees) {
    int64_t live = __atomic_add_fetch(&s->live_bytes, grow, __ATOMIC_RELAXED);
    if (allocs)
        __atomic_fetch_add(&s->allocations, allocs, __ATOMIC_RELAXED);
    if (frees)
        __atomic_fetch_add(&s->frees, frees, __ATOMIC_RELAXED);
    if (allocated)
        __atomic_fetch_add(&s->allocated_bytes, allocated, __ATOMIC_RELAXED);
    raise_to(&s->peak, live);
    if (UNLIKELY(too_far(live, LOAD(&s->published))))
        publish(s);
}

/* An allocation of `size` usable bytes, or a realloc from `old` (old >= 0) to `size`. */
static void count_alloc_cold(int64_t size, int64_t old) {
    int shared;
    slot_t *s = slot_cold(&shared);
    if (!s)
        return;
    int64_t grow = old >= 0 ? size - old : size;
    if (shared) {
        count_shared(s, grow, size, 1, old >= 0);
        return;
    }
    own_add(&s->live_bytes, grow);
    own_add(&s->allocations, 1);
    if (old >= 0)
        own_add(&s->frees, 1);
    own_add(&s->allocated_bytes, size);
    int64_t live = LOAD(&s->live_bytes);
    if (live > LOAD(&s->peak))
        STORE(&s->peak, live);
    publish_above(s, live);
    publish_below(s);
}

static inline void count_alloc(int64_t size) {
    slot_t *s = tl_slot;
    if (UNLIKELY(!s)) {
        count_alloc_cold(size, -1);
        return;
    }
    own_add(&s->live_bytes, size);
    own_add(&s->allocations, 1);
    own_add(&s->allocated_bytes, size);
    int64_t live = LOAD(&s->live_bytes);
    if (live > LOAD(&s->peak))
        STORE(&s->peak, live);
    publish_above(s, live);
}

static inline void count_realloc(int64_t size, int64_t old) {
    slot_t *s = tl_slot;
    if (UNLIKELY(!s)) {
        count_alloc_cold(size, old);
        return;
    }
    own_add(&s->live_bytes, size - old);
    own_add(&s->allocations, 1);
    own_add(&s->frees, 1);
    own_add(&s->allocated_bytes, size);
    int64_t live = LOAD(&s->live_bytes);
    if (live > LOAD(&s->peak))
        STORE(&s->peak, live);
    publish_above(s, live);
    publish_below(s);
}

static void count_free_cold(int64_t size) {
    int shared;
    slot_t *s = slot_cold(&shared);
    if (!s)
        return;
    if (shared) {
        count_shared(s, -size, 0, 0, 1);
        return;
    }
    own_add(&s->live_bytes, -size);
    own_add(&s->frees, 1);
    publish_below(s);
}

static inline void count_free(int64_t size) {
    slot_t *s = tl_slot;
    if (UNLIKELY(!s)) {
        count_free_cold(size);
        return;
    }
    own_add(&s->live_bytes, -size);
    own_add(&s->frees, 1);
    publish_below(s);
}

static inline int counting(void) { return LOAD(&mode) == MODE_COUNT; }

/* ---- the malloc family ----------------------------------------------------------------- */

/* The hot paths (malloc and free with glibc underneath, a thread with its own slot) are
 * written for the fewest instructions: one flag, the header's size, the slot, the adds. Every
 * other case takes the general path below them, unchanged. */
static __attribute__((noinline)) void malloc_counted(void *p) {
    if (counting())
        count_alloc((int64_t)usable(p));
}

EXPORT void *malloc(size_t n) {
    if (UNLIKELY(LOAD_ACQ(&mode) < MODE_PASS) && early())
        return boot_alloc(n, 16);
    void *p = real_malloc(n);
    if (UNLIKELY(p == NULL))
        return p;
    slot_t *s = tl_hot;
    if (LIKELY(s != NULL)) {
        int64_t size = (int64_t)glibc_usable(p);
        own_add(&s->live_bytes, size);
        own_add(&s->allocations, 1);
        own_add(&s->allocated_bytes, size);
        int64_t live = LOAD(&s->live_bytes);
        if (UNLIKELY(live > LOAD(&s->peak)))
            STORE(&s->peak, live);
        publish_above(s, live);
        return p;
    }
    malloc_counted(p);
    return p;
}

static __attribute__((noinline)) void free_general(void *p);

EXPORT void free(void *p) {
    slot_t *s = tl_hot;
    if (UNLIKELY(s == NULL))
        goto general;
    if (UNLIKELY(p == NULL) || UNLIKELY((uintptr_t)p - (uintptr_t)boot < BOOT_SIZE))
        goto general;
    own_add(&s->live_bytes, -(int64_t)glibc_usable(p));
    own_add(&s->frees, 1);
    publish_below(s);
    real_free(p);
    return;
general:
    free_general(p);
}

static __attribute__((noinline)) void free_general(void *p) {
    if (UNLIKELY(p == NULL || in_boot(p)))
        return;
    if (UNLIKELY(LOAD_ACQ(&mode) < MODE_PASS)) {
        /* Only a pointer the arena did not give can get here, from a thread racing the
         * resolution: forward it once the real free is known. */
        resolve();
        if (!real_free)
            return;
    }
    if (LOAD(&mode) == MODE_COUNT)
        count_free((int64_t)usable(p));
    real_free(p);
}

EXPORT void *calloc(size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    if (UNLIKELY(early()))
        return boot_alloc(n * size, 16);
    void *p = real_calloc(n, size);
    if (LIKELY(p != NULL) && counting())
        count_alloc((int64_t)usable(p));
    return p;
}

EXPORT void *realloc(void *p, size_t n) {
    if (p == NULL)
        return malloc(n);
    if (UNLIKELY(in_boot(p))) {
        size_t old = boot_size(p);
        void *q = malloc(n ? n : 1);
        if (q)
            memcpy(q, p, old < n ? old : n);
        return q;
    }
    if (UNLIKELY(early()))
        return NULL;
    if (!counting())
        return real_realloc(p, n);
    int64_t old = (int64_t)usable(p);
    void *q = real_realloc(p, n);
    if (q != NULL)
        count_realloc((int64_t)usable(q), old);
    else if (n == 0)
        count_free(old); /* glibc frees the block and returns NULL */
    return q;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

static inline void *count_new(void *p) {
    if (p != NULL && counting())
        count_alloc((int64_t)usable(p));
    return p;
}

static int valid_alignment(size_t align) {
    return align != 0 && (align & (align - 1)) == 0;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    if (!valid_alignment(align) || align % sizeof(void *) != 0)
        return EINVAL;
    if (UNLIKELY(early())) {
        void *p = boot_alloc(n, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    int r;
    if (real_posix_memalign) {
        r = real_posix_memalign(out, align, n);
    } else {
        void *p = real_memalign ? real_memalign(align, n) : NULL;
        r = p ? 0 : ENOMEM;
        if (p)
            *out = p;
    }
    if (r == 0)
        count_new(*out);
    return r;
}

static void *aligned(size_t align, size_t n, void *(*f)(size_t, size_t)) {
    if (UNLIKELY(early()))
        return boot_alloc(n, align);
    if (f)
        return count_new(f(align, n));
    void *p = NULL;
    if (!valid_alignment(align))
        align = 16;
    if (align < sizeof(void *))
        align = sizeof(void *);
    int r = posix_memalign(&p, align, n); /* counts */
    if (r != 0) {
        errno = r;
        return NULL;
    }
    return p;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
    if (UNLIKELY(early()))
        return boot_alloc(n, align);
    return aligned(align, n, real_aligned_alloc);
}

EXPORT void *memalign(size_t align, size_t n) {
    if (UNLIKELY(early()))
        return boot_alloc(n, align);
    return aligned(align, n, real_memalign);
}

EXPORT void *valloc(size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (UNLIKELY(early()))
        return boot_alloc(n, page);
    if (real_valloc)
        return count_new(real_valloc(n));
    return aligned(page, n, real_memalign);
}

EXPORT void *pvalloc(size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = (n + page - 1) & ~(page - 1);
    if (rounded < n) {
        errno = ENOMEM;
        return NULL;
    }
    if (UNLIKELY(early()))
        return boot_alloc(rounded ? rounded : page, page);
    if (real_pvalloc)
        return count_new(real_pvalloc(n));
    return aligned(page, rounded ? rounded : page, real_memalign);
}

EXPORT size_t malloc_usable_size(void *p) {
    if (p == NULL)
        return 0;
    if (in_boot(p))
        return boot_size(p);
    if (UNLIKELY(early()))
        return 0;
    return real_usable(p);
}

/* C23's sized frees (glibc 2.39+): the size is a hint; count what the block really has. */
EXPORT void free_sized(void *p, size_t size) {
    (void)size;
    free(p);
}

EXPORT void free_aligned_sized(void *p, size_t align, size_t size) {
    (void)align;
    (void)size;
    free(p);
}

/* ---- line snapshots -------------------------------------------------------------------- */

typedef struct {
    int64_t live;
    int64_t allocations;
    int64_t frees;
    int64_t allocated;
    int64_t peak;
    /* Allocations and bytes allocated of the whole tree with children counted (the processes
     * that exited included), of this process otherwise: what a line's snapshot records. */
    int64_t tree_allocations;
    int64_t tree_allocated;
} sums_t;

/* With children counted, a line's allocations are the whole tree's, the processes that already
 * exited included (their slots keep their counts, or the header does once their slots were
 * taken over): add the other processes' to `o`, read again while a takeover is moving counts. */
static void others_cumulative(sums_t *o) {
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t before = LOAD_ACQ(&hdr->reclaims);
        int64_t allocations = LOAD(&hdr->exited_allocations);
        int64_t allocated = LOAD(&hdr->exited_allocated);
        uint32_t used = used_slots();
        for (uint32_t i = 0; i < used; i++) {
            slot_t *s = &slots[i];
            if (LOAD(&s->in_use) == MC_RECORD || LOAD_ACQ(&s->owner) == my_pid)
                continue;
            allocations += LOAD(&s->allocations);
            allocated += LOAD(&s->allocated_bytes);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        /* A process killed in the middle of a takeover leaves the count odd for good: the
         * last read is taken then. */
        if (((before & 1) == 0 && LOAD_ACQ(&hdr->reclaims) == before) || attempt == 99) {
            o->tree_allocations += allocations;
            o->tree_allocated += allocated;
            return;
        }
        sched_yield();
    }
}

/* This process's counters now (and the tree's allocations, see sums_t), and its peak since the
 * last window started (the lower of the
 * two bounds of "Peak" above); with `reset`, a new window starts (every slot's peak becomes
 * its live bytes, the record's peak its sum). The record's window is closed after the slots'
 * and the next one opened before them: a slot that peaks while they are reset one by one is
 * in both of its windows, never in neither. The profiler computes the same for a process
 * from outside (external/heap.rs). */
static void process_sums(sums_t *o, int reset) {
    memset(o, 0, sizeof *o);
    int64_t slot_peaks = 0, unpublished = 0;
    int64_t record_peak = reset ? __atomic_exchange_n(&record->peak, LOAD(&record->sum),
                                                      __ATOMIC_RELAXED)
                                : LOAD(&record->peak);
    uint32_t used = used_slots();
    for (uint32_t i = 0; i < used; i++) {
        slot_t *s = &slots[i];
        if (LOAD(&s->in_use) == MC_RECORD)
            continue;
        if (LOAD_ACQ(&s->owner) != my_pid)
            continue;
        int64_t live = LOAD(&s->live_bytes);
        int64_t calls = LOAD(&s->allocations) + LOAD(&s->frees);
        o->live += live;
        o->allocations += LOAD(&s->allocations);
        o->frees += LOAD(&s->frees);
        o->allocated += LOAD(&s->allocated_bytes);
        int64_t pk = LOAD(&s->peak);
        slot_peaks += pk > live ? pk : live;
        int64_t drift = live - LOAD(&s->published);
        if (calls != LOAD(&s->reset_calls))
            drift = drift > MC_PUBLISH_BEYOND ? drift : MC_PUBLISH_BEYOND;
        unpublished += drift > 0 ? drift : 0;
        if (reset) {
            STORE(&s->peak, live);
            STORE(&s->reset_calls, calls);
        }
    }
    int64_t sum = LOAD(&record->sum), peak = LOAD(&record->peak);
    if (peak > record_peak)
        record_peak = peak;
    int64_t published = (record_peak > sum ? record_peak : sum) + unpublished;
    if (published < o->live)
        published = o->live;
    o->peak = published < slot_peaks ? published : slot_peaks;
    o->tree_allocations = o->allocations;
    o->tree_allocated = o->allocated;
    if (children_on)
        others_cumulative(o);
}

typedef struct {
    int busy;
    uint64_t hash; /* FNV-1a of the line written so far */
} line_state_t;

static line_state_t line_state[2];

static inline uint64_t fnv(uint64_t h, unsigned char c) {
    return (h ^ c) * (uint64_t)MC_FNV_PRIME;
}

/* Bytes `from` of a list of segments: the common shape of write (one) and writev (many). */
typedef struct {
    const struct iovec *iov;
    int count;
} bytes_t;

static size_t newlines(bytes_t b, size_t limit) {
    size_t n = 0, seen = 0;
    for (int i = 0; i < b.count && seen < limit; i++) {
        const char *p = b.iov[i].iov_base;
        size_t len = b.iov[i].iov_len;
        if (len > limit - seen)
            len = limit - seen;
        const char *end = p + len;
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            n++;
            p++;
        }
        seen += b.iov[i].iov_len;
    }
    return n;
}

/* The hash of the unfinished line after `limit` bytes, starting from `h`. */
static uint64_t tail_hash(bytes_t b, size_t limit, uint64_t h) {
    size_t seen = 0;
    for (int i = 0; i < b.count && seen < limit; i++) {
        const unsigned char *p = b.iov[i].iov_base;
        size_t len = b.iov[i].iov_len;
        if (len > limit - seen)
            len = limit - seen;
        for (size_t j = 0; j < len; j++)
            h = p[j] == '\n' ? (uint64_t)MC_FNV_OFFSET : fnv(h, p[j]);
        seen += b.iov[i].iov_len;
    }
    return h;
}

static void record_peak(uint64_t epoch, int64_t peak) {
    peak_t *p = &peaks[epoch % MC_RING];
    STORE(&p->tag, 0);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    STORE(&p->peak, peak);
    STORE_REL(&p->tag, epoch + 1);
}

/* Before `b` is written to stream `st` (0: stdout, 1: stderr): a snapshot per line it ends.
 * Returns the index of the first one, with *count set; the line state stays locked. */
static int lines_before(int st, bytes_t b, size_t total, uint64_t *first, size_t *count,
                        uint64_t *hash_before) {
    line_state_t *ls = &line_state[st];
    int zero = 0;
    if (!__atomic_compare_exchange_n(&ls->busy, &zero, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)) {
        /* Another thread of this process writes this stream, or a signal handler interrupted
         * a write: this line is not snapshotted (the profiler reads it live). */
        __atomic_fetch_or(&hdr->flags, MC_FLAG_LINE_SKIPPED, __ATOMIC_RELAXED);
        return 0;
    }
    *hash_before = ls->hash;
    size_t n = newlines(b, total);
    *count = n;
    if (n == 0) {
        ls->hash = tail_hash(b, total, ls->hash);
        return 1;
    }
    /* One snapshot for all the lines of this write: they are written at the same moment. The
     * first closes the current peak window. */
    uint64_t epoch = __atomic_fetch_add(&hdr->epoch, 1, __ATOMIC_ACQ_REL);
    sums_t sums;
    process_sums(&sums, 1);
    record_peak(epoch, sums.peak);
    uint64_t idx = __atomic_fetch_add(&hdr->lines[st], n, __ATOMIC_ACQ_REL);
    *first = idx;
    uint64_t h = ls->hash;
    size_t seen = 0;
    for (int i = 0; i < b.count && seen < total; i++) {
        const unsigned char *p = b.iov[i].iov_base;
        size_t len = b.iov[i].iov_len;
        if (len > total - seen)
            len = total - seen;
        for (size_t j = 0; j < len; j++) {
            if (p[j] != '\n') {
                h = fnv(h, p[j]);
                continue;
            }
            entry_t *e = &rings[st][idx % MC_RING];
            STORE(&e->seq, 0);
            __atomic_thread_fence(__ATOMIC_RELEASE);
            STORE(&e->hash, h);
            STORE(&e->live_bytes, sums.live);
            STORE(&e->blocks, sums.allocations - sums.frees);
            STORE(&e->allocated_bytes, sums.tree_allocated);
            STORE(&e->allocations, sums.tree_allocations);
            STORE(&e->epoch, epoch);
            STORE(&e->pid, my_pid);
            STORE_REL(&e->seq, idx + 1);
            idx++;
            h = (uint64_t)MC_FNV_OFFSET;
        }
        seen += b.iov[i].iov_len;
    }
    ls->hash = h;
    return 1;
}

/* After the write: lines it did not write lose their snapshots (the program will write them
 * again, with new ones); the unfinished line's hash is what was written of it. */
static void lines_after(int st, bytes_t b, size_t total, uint64_t first, size_t count,
                        uint64_t hash_before, ssize_t written) {
    line_state_t *ls = &line_state[st];
    if (written < 0 || (size_t)written < total) {
        size_t done = written > 0 ? (size_t)written : 0;
        size_t kept = count ? newlines(b, done) : 0;
        for (size_t k = kept; k < count; k++) {
            entry_t *e = &rings[st][(first + k) % MC_RING];
            if (LOAD(&e->seq) == first + k + 1)
                STORE_REL(&e->seq, 0);
        }
        ls->hash = tail_hash(b, done, hash_before);
    }
    __atomic_store_n(&ls->busy, 0, __ATOMIC_RELEASE);
}

static inline int stream_of(int fd) { return fd == 1 ? 0 : fd == 2 ? 1 : -1; }

static ssize_t raw_write(int fd, const void *buf, size_t n) {
    if (real_write)
        return real_write(fd, buf, n);
    return syscall(SYS_write, fd, buf, n);
}

static ssize_t raw_writev(int fd, const struct iovec *iov, int count) {
    if (real_writev)
        return real_writev(fd, iov, count);
    return syscall(SYS_writev, fd, iov, count);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n) {
    int st = stream_of(fd);
    if (LIKELY(!LOAD(&lines_on) || st < 0 || n == 0))
        return raw_write(fd, buf, n);
    struct iovec one = {(void *)buf, n};
    bytes_t b = {&one, 1};
    uint64_t first = 0, before = 0;
    size_t count = 0;
    if (!lines_before(st, b, n, &first, &count, &before))
        return raw_write(fd, buf, n);
    ssize_t r = raw_write(fd, buf, n);
    int saved = errno;
    lines_after(st, b, n, first, count, before, r);
    errno = saved;
    return r;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int count) {
    int st = stream_of(fd);
    if (LIKELY(!LOAD(&lines_on) || st < 0 || count <= 0))
        return raw_writev(fd, iov, count);
    size_t total = 0;
    for (int i = 0; i < count; i++)
        total += iov[i].iov_len;
    bytes_t b = {iov, count};
    uint64_t first = 0, before = 0;
    size_t lines = 0;
    if (!lines_before(st, b, total, &first, &lines, &before))
        return raw_writev(fd, iov, count);
    ssize_t r = raw_writev(fd, iov, count);
    int saved = errno;
    lines_after(st, b, total, first, lines, before, r);
    errno = saved;
    return r;
}

/* glibc's stdio writes through its own internal write, which no library can interpose: the
 * lines a C program flushes with fflush (what the marker protocol asks of it) are seen here,
 * from the stream's buffer, just before they are written. */
static int flush_stream(FILE *fp) {
    int st = stream_of(fileno_unlocked(fp));
    if (st < 0)
        return real_fflush(fp);
    flockfile(fp);
    size_t n = fp->_IO_write_ptr > fp->_IO_write_base
                   ? (size_t)(fp->_IO_write_ptr - fp->_IO_write_base)
                   : 0;
    struct iovec one = {fp->_IO_write_base, n};
    bytes_t b = {&one, 1};
    uint64_t first = 0, before = 0;
    size_t count = 0;
    int locked = n > 0 && lines_before(st, b, n, &first, &count, &before);
    int r = real_fflush(fp);
    if (locked) {
        size_t left = fp->_IO_write_ptr > fp->_IO_write_base
                          ? (size_t)(fp->_IO_write_ptr - fp->_IO_write_base)
                          : 0;
        ssize_t written = left >= n ? 0 : (ssize_t)(n - left);
        lines_after(st, b, n, first, count, before, r == 0 ? (ssize_t)n : written);
    }
    funlockfile(fp);
    return r;
}

EXPORT int fflush(FILE *fp) {
    if (!real_fflush) {
        resolve();
        if (!real_fflush)
            return 0;
    }
    if (LIKELY(!LOAD(&lines_on)))
        return real_fflush(fp);
    if (fp != NULL)
        return flush_stream(fp);
    /* Only the standard streams still open on a watched descriptor: glibc's fflush(NULL)
     * skips a closed one, which flushed here set EBADF and returned EOF. */
    int r = 0;
    FILE *standard[] = {stdout, stderr};
    for (int k = 0; k < 2; k++) {
        int saved = errno;
        int fd = fileno_unlocked(standard[k]); /* EBADF on a closed stream */
        errno = saved;
        if (fd >= 0 && stream_of(fd) >= 0 && flush_stream(standard[k]) != 0)
            r = EOF;
    }
    if (real_fflush(NULL) != 0)
        r = EOF;
    return r;
}

/* ---- attaching, threads, fork ---------------------------------------------------------- */

/* The environment the process started with, while the constructor runs: it runs first of
 * all (-z initfirst), before libc has set `environ`. */
static char **start_env;

static const char *env_get(const char *name) {
    if (start_env == NULL)
        return getenv(name);
    size_t n = strlen(name);
    for (char **e = start_env; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static int env_is_1(const char *name) {
    const char *v = env_get(name);
    return v != NULL && v[0] == '1' && v[1] == '\0';
}

/* This process starts counting in the region: slots an earlier image of this pid left are
 * dead (its record too), the process gets its shared slot and its record. */
static int start_process(void) {
    uint32_t used = used_slots();
    for (uint32_t i = 0; i < used; i++) {
        /* An exchange: another process may be taking the slot over meanwhile. */
        uint32_t mine = my_pid;
        __atomic_compare_exchange_n(&slots[i].owner, &mine, (uint32_t)MC_DEAD, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    }
    record = (record_t *)fresh_slot(MC_RECORD);
    if (!record)
        return 0;
    shared_slot = claim_slot();
    if (!shared_slot)
        return 0;
    __atomic_fetch_add(&hdr->processes, 1, __ATOMIC_RELAXED);
    memset(line_state, 0, sizeof line_state);
    line_state[0].hash = line_state[1].hash = (uint64_t)MC_FNV_OFFSET;
    return 1;
}

/* Map every page of the region this process will write into its page tables now: the
 * slots, the line snapshots (with --marker) and the peaks of closed windows. Pages of a shared
 * mapping count in the process's RSS from the first time it touches them, so a program writing
 * lines would
 * otherwise see its RSS grow by a page per 64 lines (and a page per 256 windows) until the
 * rings wrapped: a tester's clean C program printing 100 log lines per iteration read as an
 * RSS leak of 7.8 KiB per iteration, 2.3 MiB over the first 16,384 lines. Touched with an
 * atomic add of 0 where madvise cannot, as another process may be writing the same word. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static void touch_pages(size_t from, size_t to) {
    /* One call where the kernel has it (225 us for the whole region, against 450 us a page at
     * a time, measured): pages are whole, the offsets are multiples of a page. */
    if (madvise(region + from, to - from, MADV_POPULATE_WRITE) == 0)
        return;
    for (size_t at = from; at < to; at += 4096)
        __atomic_fetch_add((uint64_t *)(region + at), 0, __ATOMIC_RELAXED);
}

static void map_ahead(int lines) {
    touch_pages(MC_SLOTS_OFFSET, MC_RINGS_OFFSET);
    if (lines)
        touch_pages(MC_RINGS_OFFSET, MC_PEAKS_OFFSET);
    touch_pages(MC_PEAKS_OFFSET, MC_REGION_SIZE);
}

static void attach(void) {
    if (!sizes_known)
        return;
    const char *path = env_get(MC_ENV_FILE);
    if (path == NULL || path[0] == '\0')
        return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < (size_t)MC_REGION_SIZE) {
        close(fd);
        return;
    }
    void *m = mmap(NULL, MC_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return;
    region = m;
    hdr = (header_t *)region;
    slots = (slot_t *)(region + MC_SLOTS_OFFSET);
    rings[0] = (entry_t *)(region + MC_RINGS_OFFSET);
    rings[1] = rings[0] + MC_RING;
    peaks = (peak_t *)(region + MC_PEAKS_OFFSET);
    my_pid = (uint32_t)getpid();
    children_on = env_is_1(MC_ENV_CHILDREN);
    lines_wanted = env_is_1(MC_ENV_LINES);
    uint32_t zero = 0;
    int root = __atomic_compare_exchange_n(&hdr->root_pid, &zero, my_pid, 0, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE) ||
               zero == my_pid;
    if (!root && !children_on)
        __atomic_fetch_add(&hdr->declined, 1, __ATOMIC_RELAXED);
    if ((!root && !children_on) || !start_process()) {
        munmap(m, MC_REGION_SIZE);
        region = NULL;
        return;
    }
    map_ahead(lines_wanted);
    if (root) {
        STORE(&hdr->version, (uint32_t)MC_VERSION);
        STORE(&hdr->slots, (uint32_t)MC_SLOTS);
        STORE(&hdr->ring, (uint32_t)MC_RING);
        STORE_REL(&hdr->magic, (uint64_t)MC_MAGIC);
    }
    STORE(&lines_on, lines_wanted);
    STORE_REL(&mode, MODE_COUNT);
}

static void on_thread_exit(void *value) {
    slot_t *s = value;
    tl_slot = NULL;
    tl_hot = NULL;
    tl_state = TL_EXITED;
    if (s != NULL && s != shared_slot) {
        /* Nothing left unpublished: from the next window on, until a new thread takes it,
         * the slot adds nothing to the bound. In this one it may have held bytes the sum
         * did not have: it counts as a slot that made calls (no count matches -1). */
        if (LOAD(&s->live_bytes) != LOAD(&s->published)) {
            publish(s);
            STORE(&s->reset_calls, -1);
        }
        STORE_REL(&s->in_use, 0);
    }
}

static void fork_child(void) {
    tl_slot = NULL;
    tl_hot = NULL;
    tl_state = TL_NONE;
    if (key_ok)
        pthread_setspecific(exit_key, NULL);
    if (LOAD(&mode) != MODE_COUNT)
        return;
    STORE(&lines_on, 0);
    STORE(&mode, MODE_PASS);
    if (!children_on) {
        __atomic_fetch_add(&hdr->declined, 1, __ATOMIC_RELAXED);
        return;
    }
    my_pid = (uint32_t)getpid();
    if (start_process()) {
        /* A forked child inherits the mapping but not its page-table entries. */
        map_ahead(lines_wanted);
        STORE(&lines_on, lines_wanted);
        STORE_REL(&mode, MODE_COUNT);
    }
}

/* The root process's own RSS high-water mark, as it exits through exit(): the mm's VmHWM, which
 * starts afresh at exec (the kernel's ru_maxrss of a started program also counts the image it
 * was exec'd from, the profiler's). No allocation: a read into a stack buffer. The file is open
 * for an instant as the program exits: a sample of its fds taken then reads one more (the
 * profiler's count at the end is a median of the last samples for that). */
__attribute__((destructor)) static void memcreep_end(void) {
    if (region == NULL || (uint32_t)getpid() != LOAD(&hdr->root_pid))
        return;
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *p = strstr(buf, "VmHWM:");
    if (p == NULL)
        return;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    uint64_t kib = 0;
    while (*p >= '0' && *p <= '9')
        kib = kib * 10 + (uint64_t)(*p++ - '0');
    STORE_REL(&hdr->hwm, kib * 1024);
}

/* glibc's _Fork (2.34+) makes a child without running the atfork handlers, so the child went
 * on counting in its parent's slots (with plain adds, as their owner): a parent whose helper
 * children each kept 10 blocks and exited read as leaking them, exit 1. The child here runs
 * what fork() runs in it. A child made by a raw clone system call cannot be seen. */
EXPORT pid_t _Fork(void) {
    /* Async-signal-safe, as _Fork is: the real one was found in resolve(), not here. */
    resolve();
    if (!real_fork) {
        errno = ENOSYS;
        return -1;
    }
    pid_t pid = real_fork();
    if (pid == 0)
        fork_child();
    return pid;
}

/* Linked with -z initfirst, this runs before the constructors of every other library of
 * the program (glibc's own early initialisation is done by then): what they allocate is
 * counted, so that freeing it later does not read as a negative heap, and our fork handler
 * is the first registered, so that no other library's child handler counts into the
 * parent's slot. (Where another object claims initfirst, as libpthread did before glibc
 * 2.34, the last one loaded has it and this runs in the usual order.) */
__attribute__((constructor)) static void memcreep_start(int argc, char **argv, char **envp) {
    (void)argc;
    (void)argv;
    start_env = envp;
    resolve();
    if (pthread_key_create(&exit_key, on_thread_exit) == 0)
        key_ok = 1;
    pthread_atfork(NULL, NULL, fork_child);
    attach();
    start_env = NULL;
}
