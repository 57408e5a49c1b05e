"""The native thread pool that runs the parallel loops of compiled functions.

Why our own pool (measured; docs/threads.md has the numbers): it installs
with nothing (LLVM IR compiled by llvmlite, threads started through libc's
`pthread_create`), it starts once per process, a dispatch to spinning
workers costs about a microsecond, and it shares no state with the OpenMP
runtimes that numpy's BLAS or PyTorch bring (two OpenMP runtimes in one
process are a known source of oversubscription and crashes). The system's
libgomp is not guaranteed on a fresh machine, and the `intel-openmp` wheel's
libiomp5 dispatched in ~11 us on this machine kind.

Algorithm: a job is `task(ctx, begin, end)` over `units` independent units
(iterations, or groups of them), handed out dynamically in chunks:

    dispatcher  raster_mlir_parallel_for(task, ctx, units):
        n = min(threads wanted, units); n <= 1 or the pool busy -> task(ctx, 0, units)
        start missing workers (pthread_create, once per process)
        publish task, ctx, units, chunk, n and the caller's MXCSR; next = done = 0;
        keep the workers off the caller's CPU (placement, below)
        job_seq += 1 (odd: open); futex-wake sleeping workers
        claim chunks itself (guided: max(chunk, units left / 2n), by compare-and-swap
        on next) until none is left
        wait until done == units; job_seq += 1 (even: closed); wait until active == 0
    worker k:   wait for job_seq to change (spin, then futex: spinning, below); if the job is open:
        active += 1; if the job is still the same and k < n: load the caller's
        MXCSR, claim and run chunks (done += their units); active -= 1

A worker reads the job's fields only after registering in `active` and
checking that the job is still open, and the dispatcher publishes the next job
only after `active` is back to zero, so fields are never rewritten under a
reader, and `ctx` (on the caller's stack) is never read after the dispatcher
returned. Dynamic claiming matters on a shared machine: a worker that the
kernel has not scheduled yet costs the caller nothing (the caller runs the
chunks itself), where a static split would wait for it. Which thread runs
which unit changes from call to call, but every unit computes the same thing
whoever runs it. A sleeper announces itself (sleepers, a flag) and re-reads
the word it waits on (both sequentially consistent) before `futex_wait`, and
the waker changes the word before reading the announcement: one of them sees
the other, so no wake-up is lost. Workers run with the floating-point mode
(MXCSR: rounding, flush-to-zero, denormals-are-zero) of the dispatching thread.

Chunks are guided: each claim takes 1/(2n) of the units left, at least
`chunk` = units / (16 n). The first claims are large (few atomics), the last
ones small, so the threads finish within a small chunk of each other (fixed
chunks of units / 4n left the caller waiting 5-20 us for the worker's last
one on log of 10^6 floats, ~125 us a call), and a worker that joins late
still finds large claims.

Placement: no worker runs on the CPU the dispatcher opens a job on. At each
job the dispatcher compares its CPU (`sched_getcpu`) with the one the workers
were last moved off; when it differs (the caller migrated, or workers were
started since), it sets every worker's affinity to the CPUs the workers
started with minus its own (`pthread_setaffinity_np`, before waking them).
Nothing is done while the caller stays put. A worker that still finds itself
on the dispatcher's CPU when it joins (its affinity changed from outside, e.g.
`taskset -p` of the whole process) moves itself off it the same way: the
check is kept on every job because nothing else notices such a change, and it
costs one `sched_getcpu` (3.7 ns on glibc 2.36, a load from the rseq area)
against ~1 us per dispatch. Why: a worker woken from its futex sleep
is often placed by Linux on the waking thread's CPU and stays there while
both keep running, so a parallel loop called now and then (after a few ms of
idle) ran at one thread's speed: tanh of 10^6 floats 257 us with two threads
against 256 with one, 135 us once the two were on different CPUs (2 vCPUs,
AMD EPYC). Moving the worker only when it noticed the clash itself was not
enough: pinned to the CPU the caller had just migrated to (the main thread
moves while other libraries' threads run, as in bench_transcendental's
rounds), the woken worker waited behind the caller for up to a 4 ms
scheduler tick, so whole rounds of calls ran on one thread (measured: 11 of
40 rounds of 5 calls after 20 ms pauses, and 4 ms calls). The caller itself
is never pinned.

Spinning: a waiting thread polls (x86 `pause`, ~25 ns each on this Zen 4)
before it sleeps in the kernel. The configured spin, DEFAULT_SPIN polls
(~50 us), bridges the gaps between the parallel loops of a train step. A
worker also adapts its own spin to the gaps between jobs: after a wait that
a job ended within p polls, it polls 2p next time; after one it slept
through, twice the gap counted in polls (from the clock's ticks), if that is
at most _SPIN_GROWTH times the configured spin; never below the configured
spin, and back to it after a longer gap (`raster_mlir_pool_next_spin`). So
while calls come every few hundred microseconds (a loop with some numpy
work between calls), the worker is polling when the next job opens, instead
of paying a futex wake-up: on this 2-vCPU KVM guest an idle vCPU halts, and
waking it took 30-50 us (measured: the worker joined 30-50 us after the job
opened, against 0.1-0.5 us when it was polling). An idle process spins at
most _SPIN_GROWTH x ~50 us once, then sleeps; calls that follow each other
closely keep the spin at the configured one. Only the wait for a job to open
reads the clock; the wait for the current one to close neither adapts nor
reads it.

Statistics: `pool().statistics()` counts jobs, jobs the caller ran alone,
wake-ups from the kernel and placement changes (the dispatcher's counters,
no atomics).

Thread count: `set_num_threads(n)`; default `RASTER_MLIR_NUM_THREADS`, else
the number of CPUs this process may run on (`os.sched_getaffinity`). Only
that many threads ever run a job (the caller is one of them), so the pool
never oversubscribes the cores it was given. Workers are started when a job
first needs them and then live until the process exits; after `fork` the
child starts its own.

Reductions: `raster_mlir_reduction_blocks(units)` tells a compiled function
into how many blocks to cut a parallel reduction: one per thread (fastest;
the summation order then depends on the thread count), or in deterministic
mode a fixed number, `DETERMINISTIC_BLOCKS`, whatever the thread count (the
partial results are combined in block order, so the result is bitwise the
same for any number of threads).

Compiled modules reach the pool through a module global (`rm.parallel_runtime`,
two function pointers) that `install` fills when the module is loaded; a
null pointer makes the function run its parallel loops on the calling thread.
"""

from __future__ import annotations

import ctypes
import os
import threading

from ..errors import RasterError
from .target import host_target

MAX_WORKERS = 63  # the caller plus 63 workers: 64 threads at most
MAX_THREADS = MAX_WORKERS + 1
DETERMINISTIC_BLOCKS = 64  # fixed reduction blocks in deterministic mode (also the partials' capacity)
RUNTIME_GLOBAL = "rm.parallel_runtime"  # [dispatch, reduction_blocks] in every module with parallel loops
# About 50 us of polling (a pause takes ~25 ns on this Zen 4) before a worker or the waiting caller sleeps in
# the kernel: a train step's parallel loops follow each other within microseconds, a futex wake-up costs 5-50 us.
DEFAULT_SPIN = 1 << 11
# While jobs come often, a worker polls up to this many times longer (module docstring, spinning).
_SPIN_GROWTH = 16

# Byte offsets in the state block (fields written by different threads on separate cache lines).
_JOB_SEQ = 0  # i32 futex word: odd while a job is open
_NEXT = 64  # i64: next unclaimed unit
_DONE, _DONE_WAITER = 128, 132  # i32 units completed; i32 non-zero while the dispatcher sleeps on it
_ACTIVE, _ACTIVE_WAITER = 192, 196  # i32 workers inside the open job; i32 non-zero while the dispatcher sleeps on it
_BUSY = 256  # i32 1 while a dispatch is under way
_TASK, _CTX, _UNITS, _CHUNK, _N, _MODE, _CALLER_CPU = 320, 328, 336, 344, 352, 360, 364  # the job (written before it opens)
_THREADS, _STARTED, _SPIN, _DETERMINISTIC = 384, 392, 400, 408  # configuration
_PLACED, _PLACED_CPU = 416, 424  # i64 workers whose affinity avoids CPU _PLACED_CPU - 1 (i32; 0: none yet)
# Statistics (i64, written by the dispatcher only): jobs, jobs whose units the caller ran all alone (no worker
# joined in time), jobs that had to wake a worker from the kernel, changes of the workers' placement.
_JOBS, _SOLO_JOBS, _WAKEUPS, _PLACEMENTS = 264, 272, 280, 288
_SLEEPERS = 448  # i32 workers sleeping on _JOB_SEQ
_STATE_BYTES = 512
# Claims take a 1/(2n) share of the units left (n threads), but at least 1/(_MIN_CHUNKS_PER_THREAD * n) of
# the job: large claims first (few atomics), small ones last (the threads finish together).
_MIN_CHUNKS_PER_THREAD = 16

_FUTEX = {"x86_64": 202, "aarch64": 98}  # SYS_futex
_SCHED_SETAFFINITY = {"x86_64": 203, "aarch64": 122}
_SCHED_GETAFFINITY = {"x86_64": 204, "aarch64": 123}
_CPU_SET_WORDS = 16  # a cpu_set_t: 1,024 CPUs
_FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 128, 129


def _runtime_ir(arch: str) -> str:
    """The pool's LLVM IR (see the module docstring); `arch` from the target triple."""
    x86 = arch == "x86_64"
    sys_futex = _FUTEX[arch]
    sys_setaffinity, sys_getaffinity = _SCHED_SETAFFINITY[arch], _SCHED_GETAFFINITY[arch]
    words = _CPU_SET_WORDS
    pause = "call void @llvm.x86.sse2.pause()" if x86 else "fence seq_cst"
    get_mode = "call void @llvm.x86.sse.stmxcsr(ptr %mode)" if x86 else "store i32 0, ptr %mode"
    set_mode = "call void @llvm.x86.sse.ldmxcsr(ptr %mode)" if x86 else ""
    # A constant-rate clock for the adaptive spin: the TSC, or AArch64's virtual counter (readcyclecounter
    # reads PMCCNTR_EL0 there, which user code usually may not; readsteadycounter has no side effect, so two
    # reads fold into one). The host's asm parser is initialised (target.py).
    clock = "call i64 @llvm.readcyclecounter()" if x86 else 'call i64 asm sideeffect "mrs $0, cntvct_el0", "=r"()'
    x86_decls = (
        "declare void @llvm.x86.sse2.pause()\n"
        "declare void @llvm.x86.sse.stmxcsr(ptr)\n"
        "declare void @llvm.x86.sse.ldmxcsr(ptr)\n"
        if x86
        else ""
    )

    def field(name: str, offset: int) -> str:
        return f"  %{name} = getelementptr inbounds i8, ptr @rm_pool_state, i64 {offset}"

    return f"""
@rm_pool_state = global [{_STATE_BYTES} x i8] zeroinitializer, align 64
declare i64 @syscall(i64, ...)
declare i32 @pthread_create(ptr, ptr, ptr, ptr)
declare i32 @pthread_detach(i64)
declare i32 @sched_getcpu()
declare i64 @llvm.readcyclecounter()
declare i32 @pthread_setaffinity_np(i64, i64, ptr)
@rm_pool_threads = global [{MAX_WORKERS} x i64] zeroinitializer, align 8  ; pthread_t of worker k + 1
@rm_pool_allowed = global [{words} x i64] zeroinitializer, align 8  ; the CPUs workers start with
{x86_decls}
define internal void @futex_wait(ptr %word, i32 %expected) noinline {{
  %e = zext i32 %expected to i64
  %r = call i64 (i64, ...) @syscall(i64 {sys_futex}, ptr %word, i64 {_FUTEX_WAIT_PRIVATE}, i64 %e, ptr null, ptr null, i64 0)
  ret void
}}

define internal void @futex_wake(ptr %word, i64 %count) noinline {{
  %r = call i64 (i64, ...) @syscall(i64 {sys_futex}, ptr %word, i64 {_FUTEX_WAKE_PRIVATE}, i64 %count, ptr null, ptr null, i64 0)
  ret void
}}

define internal i64 @spin_limit() alwaysinline {{
{field("spinp", _SPIN)}
  %spin = load atomic i64, ptr %spinp monotonic, align 8
  ret i64 %spin
}}

; Wait until *word == value (until_equal) or *word != value: poll `spin_limit()` times, then sleep.
define internal i32 @wait_word(ptr %word, i32 %value, i1 %until_equal, ptr %sleepers) {{
entry:
  %spin = call i64 @spin_limit()
  %v = call i32 @poll_then_sleep(ptr %word, i32 %value, i1 %until_equal, ptr %sleepers, i64 %spin, ptr null)
  ret i32 %v
}}

; Wait until *word == value (until_equal) or *word != value: poll `spin` times, then sleep in the
; kernel, announced by adding 1 to *sleepers (a counter) before re-reading the word. Returns the
; word's value; if `polls` is not null, polls[0] = the polls made before the condition held, or -1
; when it slept, and then polls[1] = the clock's ticks when the polling ended.
define internal i32 @poll_then_sleep(ptr %word, i32 %value, i1 %until_equal, ptr %sleepers, i64 %spin, ptr %polls) {{
entry:
  %count = icmp ne ptr %polls, null
  br label %poll
poll:
  %s = phi i64 [ 0, %entry ], [ %s1, %again ]
  %v = load atomic i32, ptr %word acquire, align 4
  %eq = icmp eq i32 %v, %value
  %waiting = xor i1 %eq, %until_equal  ; the condition does not hold yet
  br i1 %waiting, label %again, label %done
again:
  {pause}
  %s1 = add i64 %s, 1
  %more = icmp slt i64 %s1, %spin
  br i1 %more, label %poll, label %polled
polled:
  br i1 %count, label %stamp, label %sleep
stamp:
  %t = {clock}
  %tp = getelementptr inbounds i64, ptr %polls, i64 1
  store i64 %t, ptr %tp, align 8
  br label %sleep
sleep:
  %a = atomicrmw add ptr %sleepers, i32 1 seq_cst, align 4
  %v2 = load atomic i32, ptr %word seq_cst, align 4
  %eq2 = icmp eq i32 %v2, %value
  %waiting2 = xor i1 %eq2, %until_equal  ; the condition does not hold yet
  br i1 %waiting2, label %block, label %woken
block:
  call void @futex_wait(ptr %word, i32 %v2)
  br label %woken
woken:
  %b = atomicrmw sub ptr %sleepers, i32 1 seq_cst, align 4
  %v3 = load atomic i32, ptr %word acquire, align 4
  %eq3 = icmp eq i32 %v3, %value
  %waiting3 = xor i1 %eq3, %until_equal  ; the condition does not hold yet
  br i1 %waiting3, label %sleep, label %done3
done3:
  br i1 %count, label %slept, label %return3
slept:
  store i64 -1, ptr %polls, align 8
  br label %return3
return3:
  ret i32 %v3
done:
  br i1 %count, label %caught, label %return
caught:
  store i64 %s, ptr %polls, align 8
  br label %return
return:
  ret i32 %v
}}

; A worker's wait for the next job: poll `*limit` times, then sleep; then *limit = next_spin(...).
; `adapt` false (waiting for a job to close, not to open): no change, and no clock read.
define internal i32 @wait_job(ptr %seq, i32 %seen, ptr %sleepers, ptr %limitp, i1 %adapt) {{
entry:
  %polls = alloca [2 x i64], align 8
  %limit = load i64, ptr %limitp, align 8
  br i1 %adapt, label %stamp, label %plain
plain:
  %w = call i32 @poll_then_sleep(ptr %seq, i32 %seen, i1 false, ptr %sleepers, i64 %limit, ptr null)
  ret i32 %w
stamp:
  %t0 = {clock}
  %v = call i32 @poll_then_sleep(ptr %seq, i32 %seen, i1 false, ptr %sleepers, i64 %limit, ptr %polls)
  %t2 = {clock}
  %s = load i64, ptr %polls, align 8
  %t1p = getelementptr inbounds i64, ptr %polls, i64 1
  %t1 = load i64, ptr %t1p, align 8  ; (only read when it slept: then set)
  %waited = sub i64 %t2, %t0
  %poll_ticks = sub i64 %t1, %t0
  %base = call i64 @spin_limit()
  %next = call i64 @raster_mlir_pool_next_spin(i64 %base, i64 %limit, i64 %s, i64 %waited, i64 %poll_ticks)
  store i64 %next, ptr %limitp, align 8
  ret i32 %v
}}

; A worker's polls before it sleeps at its next wait for a job (module docstring, spinning), from its last
; wait: `polls` >= 0, it polled that many times before the job came: twice that. `polls` < 0, it slept:
; the gap it slept through was `waited` clock ticks, and its `limit` polls took `poll_ticks`; twice the
; gap counted in polls (waited * limit / poll_ticks) if that is at most {_SPIN_GROWTH} x `base`, else
; `base` (a long gap: the process was idle). Always between `base` and {_SPIN_GROWTH} x `base`.
define i64 @raster_mlir_pool_next_spin(i64 %base, i64 %limit, i64 %polls, i64 %waited, i64 %poll_ticks) {{
entry:
  %most = mul i64 %base, {_SPIN_GROWTH}
  %asleep = icmp slt i64 %polls, 0
  br i1 %asleep, label %gap, label %spun
spun:
  %twice = shl i64 %polls, 1
  br label %clamp
gap:
  %known = icmp sgt i64 %poll_ticks, 0
  %positive = icmp sgt i64 %limit, 0
  %usable = and i1 %known, %positive
  br i1 %usable, label %bound, label %clamp
bound:  ; twice the gap <= most  <=>  waited <= poll_ticks * (most / 2) / limit (no overflow below)
  %half_most = lshr i64 %most, 1
  %cap_num = mul i64 %poll_ticks, %half_most
  %ticks_cap = udiv i64 %cap_num, %limit
  %short = icmp sle i64 %waited, %ticks_cap
  br i1 %short, label %scale, label %clamp
scale:
  %scaled = mul i64 %waited, %limit
  %gap_polls = udiv i64 %scaled, %poll_ticks
  %twice_gap = shl i64 %gap_polls, 1
  br label %clamp
clamp:
  %want = phi i64 [ %twice, %spun ], [ %twice_gap, %scale ], [ 0, %gap ], [ 0, %bound ]
  %low = icmp slt i64 %want, %base
  %w1 = select i1 %low, i64 %base, i64 %want
  %high = icmp sgt i64 %w1, %most
  %w2 = select i1 %high, i64 %most, i64 %w1
  ret i64 %w2
}}

; Wake the dispatcher sleeping on *word if its announcement *waiter is set.
define internal void @wake_waiter(ptr %word, ptr %waiter) {{
entry:
  %w = load atomic i32, ptr %waiter seq_cst, align 4
  %asleep = icmp ne i32 %w, 0
  br i1 %asleep, label %wake, label %done
wake:
  call void @futex_wake(ptr %word, i64 1)
  br label %done
done:
  ret void
}}

; Claim chunks of the open job and run them until none is left. A claim takes 1/(2n) of the units left
; (n threads in the job), at least `chunk` (guided self-scheduling: the last claims are small, so the
; threads end together; a late thread still finds large ones).
define internal i64 @run_chunks(ptr %task, ptr %ctx, i64 %units, i64 %chunk, i64 %n) {{
entry:
{field("next", _NEXT)}
{field("done", _DONE)}
{field("waiter", _DONE_WAITER)}
  %div = shl i64 %n, 1
  br label %claim
claim:
  %ran = phi i64 [ 0, %entry ], [ %ran1, %run ], [ %ran1, %last ]  ; units this thread ran so far
  %first = load atomic i64, ptr %next monotonic, align 8
  br label %try
try:
  %begin = phi i64 [ %first, %claim ], [ %seen, %try_size ]
  %left = icmp slt i64 %begin, %units
  br i1 %left, label %try_size, label %exit
try_size:
  %rest = sub i64 %units, %begin
  %share = udiv i64 %rest, %div
  %tiny = icmp slt i64 %share, %chunk
  %size = select i1 %tiny, i64 %chunk, i64 %share
  %end0 = add i64 %begin, %size
  %over = icmp sgt i64 %end0, %units
  %end = select i1 %over, i64 %units, i64 %end0
  %pair = cmpxchg ptr %next, i64 %begin, i64 %end monotonic monotonic, align 8
  %seen = extractvalue {{ i64, i1 }} %pair, 0
  %claimed = extractvalue {{ i64, i1 }} %pair, 1
  br i1 %claimed, label %run, label %try
run:
  call void %task(ptr %ctx, i64 %begin, i64 %end)
  %count = sub i64 %end, %begin
  %ran1 = add i64 %ran, %count
  %c32 = trunc i64 %count to i32
  %before = atomicrmw add ptr %done, i32 %c32 seq_cst, align 4
  %after = add i32 %before, %c32
  %u32 = trunc i64 %units to i32
  %all = icmp eq i32 %after, %u32
  br i1 %all, label %last, label %claim
last:
  call void @wake_waiter(ptr %done, ptr %waiter)
  br label %claim
exit:
  ret i64 %ran
}}

; *out = the CPU set *allowed without `cpu`; returns whether any CPU is left.
define internal i1 @cpus_without(ptr %allowed, i32 %cpu, ptr %out) noinline {{
entry:
  %all = load <{words} x i64>, ptr %allowed, align 8
  %c = zext i32 %cpu to i64
  %w = lshr i64 %c, 6
  %b = and i64 %c, 63
  %bit = shl i64 1, %b
  %in_set = icmp ult i64 %w, {words}
  %wi = select i1 %in_set, i64 %w, i64 0
  %bit1 = select i1 %in_set, i64 %bit, i64 0
  %old = extractelement <{words} x i64> %all, i64 %wi
  %keep = xor i64 %bit1, -1
  %new = and i64 %old, %keep
  %rest = insertelement <{words} x i64> %all, i64 %new, i64 %wi
  store <{words} x i64> %rest, ptr %out, align 8
  %any = call i64 @llvm.vector.reduce.or.v{words}i64(<{words} x i64> %rest)
  %some = icmp ne i64 %any, 0
  ret i1 %some
}}

; A worker that finds itself on the dispatching thread's CPU leaves it: its affinity becomes the set it
; started with minus that CPU (when anything is left), which migrates it at once (module docstring).
define internal void @move_off_cpu(ptr %allowed, i32 %cpu) noinline {{
entry:
  %mask = alloca [{words} x i64], align 8
  %some = call i1 @cpus_without(ptr %allowed, i32 %cpu, ptr %mask)
  br i1 %some, label %move, label %stay
move:
  %r = call i64 (i64, ...) @syscall(i64 {sys_setaffinity}, i64 0, i64 {words * 8}, ptr %mask)
  br label %stay
stay:
  ret void
}}
declare i64 @llvm.vector.reduce.or.v{words}i64(<{words} x i64>)

define ptr @rm_pool_worker(ptr %arg) {{
entry:
  %mode = alloca i32, align 4
  %limit = alloca i64, align 8  ; this worker's polls before it sleeps (wait_job adapts it)
  %base = call i64 @spin_limit()
  store i64 %base, ptr %limit, align 8
  %allowed = alloca [{words} x i64], align 8  ; the CPUs this worker may run on, as it started (inherited)
  store <{words} x i64> zeroinitializer, ptr %allowed, align 8
  %got_mask = call i64 (i64, ...) @syscall(i64 {sys_getaffinity}, i64 0, i64 {words * 8}, ptr %allowed)
  %packed = ptrtoint ptr %arg to i64
  %k = and i64 %packed, 255
  %seq0 = lshr i64 %packed, 8
  %first = trunc i64 %seq0 to i32
{field("seq", _JOB_SEQ)}
{field("sleepers", _SLEEPERS)}
{field("active", _ACTIVE)}
{field("active_waiter", _ACTIVE_WAITER)}
{field("taskp", _TASK)}
{field("ctxp", _CTX)}
{field("unitsp", _UNITS)}
{field("chunkp", _CHUNK)}
{field("np", _N)}
{field("modep", _MODE)}
{field("callercpup", _CALLER_CPU)}
  br label %loop
loop:
  %seen = phi i32 [ %first, %entry ], [ %g, %closed ], [ %g, %left ]
  %seen_bit = and i32 %seen, 1
  %for_open = icmp eq i32 %seen_bit, 0  ; waiting for a job to open (not for one to close)
  %g = call i32 @wait_job(ptr %seq, i32 %seen, ptr %sleepers, ptr %limit, i1 %for_open)
  %odd = and i32 %g, 1
  %open = icmp ne i32 %odd, 0
  br i1 %open, label %join, label %closed
closed:
  br label %loop
join:
  %a = atomicrmw add ptr %active, i32 1 seq_cst, align 4
  %g2 = load atomic i32, ptr %seq seq_cst, align 4
  %same = icmp eq i32 %g2, %g
  %n = load i64, ptr %np, align 8
  %wanted = icmp slt i64 %k, %n
  %ok = and i1 %same, %wanted
  br i1 %ok, label %work, label %leave
work:
  %task = load ptr, ptr %taskp, align 8
  %ctx = load ptr, ptr %ctxp, align 8
  %units = load i64, ptr %unitsp, align 8
  %chunk = load i64, ptr %chunkp, align 8
  %m = load i32, ptr %modep, align 4
  store i32 %m, ptr %mode, align 4
  {set_mode}
  %caller_cpu = load i32, ptr %callercpup, align 4
  %my_cpu = call i32 @sched_getcpu()
  %known = icmp sge i32 %caller_cpu, 0
  %same_cpu = icmp eq i32 %my_cpu, %caller_cpu
  %clash = and i1 %known, %same_cpu
  br i1 %clash, label %move_off, label %run
move_off:
  call void @move_off_cpu(ptr %allowed, i32 %caller_cpu)
  br label %run
run:
  %ran = call i64 @run_chunks(ptr %task, ptr %ctx, i64 %units, i64 %chunk, i64 %n)
  br label %leave
leave:
  %b = atomicrmw sub ptr %active, i32 1 seq_cst, align 4
  %last = icmp eq i32 %b, 1
  br i1 %last, label %check, label %left
check:
  call void @wake_waiter(ptr %active, ptr %active_waiter)
  br label %left
left:
  br label %loop
}}

; Start workers until `want` exist (the caller holds the pool, no job is open); returns how many exist.
define internal i64 @start_workers(i64 %want) {{
entry:
  %tid = alloca i64, align 8
{field("startedp", _STARTED)}
{field("seq", _JOB_SEQ)}
  %have = load i64, ptr %startedp, align 8
  %fresh = icmp eq i64 %have, 0
  br i1 %fresh, label %record_cpus, label %begin
record_cpus:  ; the workers inherit the starting thread's CPU set: record it for place_workers
  store <{words} x i64> zeroinitializer, ptr @rm_pool_allowed, align 8
  %got = call i64 (i64, ...) @syscall(i64 {sys_getaffinity}, i64 0, i64 {words * 8}, ptr @rm_pool_allowed)
  br label %begin
begin:
  %s = load atomic i32, ptr %seq seq_cst, align 4
  %s64 = zext i32 %s to i64
  %sbits = shl i64 %s64, 8
  br label %check
check:
  %k = phi i64 [ %have, %begin ], [ %k1, %created ]
  %enough = icmp sge i64 %k, %want
  br i1 %enough, label %done, label %create
create:
  %k1 = add i64 %k, 1
  %packed = or i64 %sbits, %k1
  %arg = inttoptr i64 %packed to ptr
  %rc = call i32 @pthread_create(ptr %tid, ptr null, ptr @rm_pool_worker, ptr %arg)
  %ok = icmp eq i32 %rc, 0
  br i1 %ok, label %created, label %done
created:
  %t = load i64, ptr %tid, align 8
  %slot = getelementptr inbounds i64, ptr @rm_pool_threads, i64 %k
  store i64 %t, ptr %slot, align 8
  %d = call i32 @pthread_detach(i64 %t)
  store i64 %k1, ptr %startedp, align 8
  br label %check
done:
  ret i64 %k
}}

; Keep the workers off the dispatching thread's CPU (module docstring, placement): when that CPU is not the
; one the started workers avoid, each worker's affinity becomes the recorded CPU set minus it. Only a
; change costs anything (one pthread_setaffinity_np per worker); the dispatcher holds the pool.
define internal void @place_workers(i32 %cpu, i64 %have) {{
entry:
  %mask = alloca [{words} x i64], align 8
{field("placedp", _PLACED)}
{field("placedcpup", _PLACED_CPU)}
  %known = icmp sge i32 %cpu, 0
  br i1 %known, label %check, label %done
check:
  %key = add i32 %cpu, 1
  %old_key = load i32, ptr %placedcpup, align 4
  %placed = load i64, ptr %placedp, align 8
  %same = icmp eq i32 %old_key, %key
  %all = icmp sge i64 %placed, %have
  %settled = and i1 %same, %all
  br i1 %settled, label %done, label %compute
compute:
  %from = select i1 %same, i64 %placed, i64 0  ; the same CPU: only the workers started since
  %some = call i1 @cpus_without(ptr @rm_pool_allowed, i32 %cpu, ptr %mask)
  br i1 %some, label %loop, label %record  ; a single CPU: nowhere else to go
loop:
  %k = phi i64 [ %from, %compute ], [ %k1, %pin ]
  %more = icmp slt i64 %k, %have
  br i1 %more, label %pin, label %record
pin:
  %slot = getelementptr inbounds i64, ptr @rm_pool_threads, i64 %k
  %thread = load i64, ptr %slot, align 8
  %r = call i32 @pthread_setaffinity_np(i64 %thread, i64 {words * 8}, ptr %mask)
  %k1 = add i64 %k, 1
  br label %loop
record:
{field("placementsp", _PLACEMENTS)}
  call void @count(ptr %placementsp, i1 true)
  store i32 %key, ptr %placedcpup, align 4
  store i64 %have, ptr %placedp, align 8
  br label %done
done:
  ret void
}}

; Statistics: *counter += 1 if `yes` (the dispatcher's own counters: it holds the pool).
define internal void @count(ptr %counter, i1 %yes) alwaysinline {{
  %old = load i64, ptr %counter, align 8
  %add = zext i1 %yes to i64
  %new = add i64 %old, %add
  store i64 %new, ptr %counter, align 8
  ret void
}}

define internal void @count_job(i64 %mine, i64 %units) alwaysinline {{
{field("jobsp", _JOBS)}
{field("solop", _SOLO_JOBS)}
  call void @count(ptr %jobsp, i1 true)
  %alone = icmp eq i64 %mine, %units
  call void @count(ptr %solop, i1 %alone)
  ret void
}}

define void @raster_mlir_parallel_for(ptr %task, ptr %ctx, i64 %units) {{
entry:
  %mode = alloca i32, align 4
{field("threadsp", _THREADS)}
  %wanted = load atomic i64, ptr %threadsp monotonic, align 8
  %lt = icmp slt i64 %units, %wanted
  %n0 = select i1 %lt, i64 %units, i64 %wanted
  %big = icmp sgt i64 %n0, {MAX_THREADS}
  %n1 = select i1 %big, i64 {MAX_THREADS}, i64 %n0
  %single = icmp sle i64 %n1, 1
  br i1 %single, label %serial, label %acquire
acquire:
{field("busy", _BUSY)}
  %pair = cmpxchg ptr %busy, i32 0, i32 1 acquire monotonic, align 4
  %got = extractvalue {{ i32, i1 }} %pair, 1
  br i1 %got, label %start, label %serial
start:
  %need = sub i64 %n1, 1
  %have = call i64 @start_workers(i64 %need)
  %none = icmp eq i64 %have, 0
  br i1 %none, label %release_serial, label %publish
release_serial:
  store atomic i32 0, ptr %busy release, align 4
  br label %serial
publish:
  %fewer = icmp slt i64 %have, %need
  %workers = select i1 %fewer, i64 %have, i64 %need
  %n = add i64 %workers, 1
  %parts = mul i64 %n, {_MIN_CHUNKS_PER_THREAD}
  %chunk0 = sdiv i64 %units, %parts
  %small = icmp slt i64 %chunk0, 1
  %chunk = select i1 %small, i64 1, i64 %chunk0
  {get_mode}
  %m = load i32, ptr %mode, align 4
{field("taskp", _TASK)}
{field("ctxp", _CTX)}
{field("unitsp", _UNITS)}
{field("chunkp", _CHUNK)}
{field("np", _N)}
{field("modep", _MODE)}
{field("callercpup", _CALLER_CPU)}
{field("next", _NEXT)}
{field("done", _DONE)}
{field("done_waiter", _DONE_WAITER)}
{field("active", _ACTIVE)}
{field("active_waiter", _ACTIVE_WAITER)}
{field("seq", _JOB_SEQ)}
{field("sleepers", _SLEEPERS)}
  store ptr %task, ptr %taskp, align 8
  store ptr %ctx, ptr %ctxp, align 8
  store i64 %units, ptr %unitsp, align 8
  store i64 %chunk, ptr %chunkp, align 8
  store i64 %n, ptr %np, align 8
  store i32 %m, ptr %modep, align 4
  %cpu = call i32 @sched_getcpu()
  call void @place_workers(i32 %cpu, i64 %have)
  store i32 %cpu, ptr %callercpup, align 4
  store atomic i64 0, ptr %next monotonic, align 8
  store atomic i32 0, ptr %done monotonic, align 4
  %opened = atomicrmw add ptr %seq, i32 1 seq_cst, align 4
  %sl = load atomic i32, ptr %sleepers seq_cst, align 4
  %any = icmp ne i32 %sl, 0
  br i1 %any, label %wake, label %run
wake:
  call void @futex_wake(ptr %seq, i64 {MAX_WORKERS})
{field("wakeupsp", _WAKEUPS)}
  call void @count(ptr %wakeupsp, i1 true)
  br label %run
run:
  %mine = call i64 @run_chunks(ptr %task, ptr %ctx, i64 %units, i64 %chunk, i64 %n)
  call void @count_job(i64 %mine, i64 %units)
  %all = trunc i64 %units to i32
  %d = call i32 @wait_word(ptr %done, i32 %all, i1 true, ptr %done_waiter)
  %closed = atomicrmw add ptr %seq, i32 1 seq_cst, align 4
  %z = call i32 @wait_word(ptr %active, i32 0, i1 true, ptr %active_waiter)
  store atomic i32 0, ptr %busy release, align 4
  ret void
serial:
  call void %task(ptr %ctx, i64 0, i64 %units)
  ret void
}}

; How many blocks a parallel reduction over `units` units is cut into (module docstring).
define i64 @raster_mlir_reduction_blocks(i64 %units) {{
entry:
{field("detp", _DETERMINISTIC)}
{field("threadsp", _THREADS)}
  %det = load atomic i64, ptr %detp monotonic, align 8
  %threads = load atomic i64, ptr %threadsp monotonic, align 8
  %is_det = icmp ne i64 %det, 0
  %want = select i1 %is_det, i64 {DETERMINISTIC_BLOCKS}, i64 %threads
  %cap = icmp sgt i64 %want, {DETERMINISTIC_BLOCKS}
  %want1 = select i1 %cap, i64 {DETERMINISTIC_BLOCKS}, i64 %want
  %lt = icmp slt i64 %units, %want1
  %b = select i1 %lt, i64 %units, i64 %want1
  %low = icmp slt i64 %b, 1
  %r = select i1 %low, i64 1, i64 %b
  ret i64 %r
}}
"""


def _arch() -> str | None:
    arch = host_target().triple.split("-")[0]
    return arch if arch in _FUTEX and os.uname().sysname == "Linux" else None


class _Pool:
    """The loaded runtime (one per process) and its state block."""

    def __init__(self):
        from .cache import load_or_compile

        arch = _arch()
        if arch is None:
            raise RasterError("the native thread pool needs Linux on x86-64 or AArch64")
        result = load_or_compile(_runtime_ir(arch), host_target(), 3)
        self.jit = result.module
        # Worker threads run this code until the process exits: never free it (not even at
        # interpreter shutdown, when module globals are cleared).
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(self.jit))
        self.state = self.jit.global_address("rm_pool_state")
        self.dispatch = self.jit.function_address("raster_mlir_parallel_for")
        self.reduction_blocks = self.jit.function_address("raster_mlir_reduction_blocks")
        self._word(_SPIN).value = DEFAULT_SPIN

    def _word(self, offset: int) -> ctypes.c_int64:
        return ctypes.c_int64.from_address(self.state + offset)

    def configure(self, threads: int, deterministic: bool) -> None:
        self._word(_THREADS).value = threads
        self._word(_DETERMINISTIC).value = int(deterministic)

    @property
    def started_workers(self) -> int:
        return self._word(_STARTED).value

    def statistics(self) -> dict[str, int]:
        """Counters since the process started (or forked): parallel jobs; jobs the caller ran alone (no worker
        joined before the units ran out); jobs that had to wake a worker sleeping in the kernel; changes of
        the workers' placement (the caller seen on another CPU)."""
        names = {"jobs": _JOBS, "solo_jobs": _SOLO_JOBS, "wakeups": _WAKEUPS, "placements": _PLACEMENTS}
        return {name: self._word(offset).value for name, offset in names.items()}

    def after_fork_in_child(self) -> None:
        """The child has no workers (only the forking thread survives a fork): start afresh."""
        ctypes.memset(self.state, 0, _STATE_BYTES)
        self._word(_SPIN).value = DEFAULT_SPIN
        self.configure(_settings.threads, _settings.deterministic)


class _Settings:
    def __init__(self):
        self.threads = _default_threads()
        self.deterministic = os.environ.get("RASTER_MLIR_DETERMINISTIC", "0") not in ("", "0")


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _default_threads() -> int:
    value = os.environ.get("RASTER_MLIR_NUM_THREADS", "").strip()
    if not value:
        return _available_cpus()
    try:
        n = int(value)
    except ValueError:
        raise RasterError(f"RASTER_MLIR_NUM_THREADS must be a positive integer, got {value!r}") from None
    if n < 1:
        raise RasterError(f"RASTER_MLIR_NUM_THREADS must be a positive integer, got {value!r}")
    return min(n, MAX_THREADS)


_settings = _Settings()
_pool: _Pool | None = None
_pool_failed: str | None = None
_lock = threading.Lock()


def pool() -> _Pool | None:
    """The process's pool, loaded on first use; None where it cannot run (then loops run serially)."""
    global _pool, _pool_failed
    if _pool is not None or _pool_failed is not None:
        return _pool
    with _lock:
        if _pool is None and _pool_failed is None:
            try:
                p = _Pool()
            except RasterError as exc:
                _pool_failed = str(exc)
                return None
            p.configure(_settings.threads, _settings.deterministic)
            _pool = p
    return _pool


def install(jit) -> None:
    """Point a loaded module's `rm.parallel_runtime` at the pool (if it has parallel loops)."""
    address = jit.global_address_or_none(RUNTIME_GLOBAL)
    if not address:
        return
    p = pool()
    slots = (ctypes.c_void_p * 2).from_address(address)
    slots[0], slots[1] = (p.dispatch, p.reduction_blocks) if p is not None else (None, None)


def set_num_threads(n: int) -> None:
    """Use at most `n` threads (the calling thread included) from the next call on."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RasterError(f"set_num_threads: expected a positive int, got {n!r}")
    with _lock:  # (a build on runtime_prep's thread configures the pool it makes from these settings)
        _settings.threads = min(n, MAX_THREADS)
        if _pool is not None:
            _pool.configure(_settings.threads, _settings.deterministic)


def get_num_threads() -> int:
    """The number of threads compiled functions use at most (the calling thread included)."""
    return _settings.threads


def set_deterministic(on: bool) -> None:
    """Cut parallel reductions into a fixed number of blocks (bitwise the same for any thread count)."""
    with _lock:
        _settings.deterministic = bool(on)
        if _pool is not None:
            _pool.configure(_settings.threads, _settings.deterministic)


def get_deterministic() -> bool:
    """Whether parallel reductions use the fixed blocking of deterministic mode."""
    return _settings.deterministic


def _after_fork_in_child() -> None:
    if _pool is not None:
        _pool.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
