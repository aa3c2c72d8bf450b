#!/usr/bin/env python3
"""Where a one-core keyward stops serving: read a Go execution trace.

    curl -so t.trace 'http://127.0.0.1:6060/debug/pprof/trace?seconds=4'   # serve --pprof-addr
    go tool trace -d=parsed t.trace | python3 docs/perf/trace-stalls.py

It prints, from the trace's state transitions:

- the gaps between network wake-ups (a goroutine that waited on the
  network made runnable again): while none happens, no request is read
  or answered; the longest gaps are the latency tail;
- what the goroutines did during the gaps of 10 ms or more: time in
  syscalls and time running, by the innermost SQLite function (or Go
  syscall) and the innermost keyward function on the stack where the
  span ended (the N largest, N the optional argument, default 10), and
  summed by who held the processor: fsyncs that kept it, the writer's
  and the checkpointer's SQLite work, reads by digest, the rest; what is
  left of the gaps is time nothing was recorded;
- the time goroutines spent in syscalls, by the same stacks, and how
  many calls gave their processor up (the goroutine came back Runnable,
  not Running: the runtime took the P while the call blocked, Go's
  monitor or a stop for GC); the others kept it, and no other goroutine
  ran meanwhile.

Used for README "Performance" (issue 14's cache-miss p99); standard
library only.
"""
import bisect
import collections
import re
import sys

TRANSITION = re.compile(r'StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)(?: Reason="([^"]*)")?')
LONG_GAP_MS = 10
WRITER = re.compile(r'sqlstore\.\(\*(batchRun|tx|checkpointer|groupCommitter)\)')
READS = re.compile(r'CredentialByDigest|scanCredential')


def holder(state, key):
    """Who held the processor during a span, for the gap summary."""
    inner, ours = key
    if 'gave its P up' in state:
        return 'syscalls that gave their P up'
    if state == 'Syscall' and inner == 'full_fsync':
        return 'fsyncs that kept the P'
    if WRITER.search(ours):
        return "the writer's and checkpointer's SQLite work"
    if READS.search(ours):
        return 'reads by digest'
    return 'the rest'


def where(frames):
    lib = [f.split('lib._', 1)[1] for f in frames if 'sqlite/lib._' in f]
    ours = [f.split('internal/', 1)[1] for f in frames if 'keyward/internal/' in f]
    inner = lib[0] if lib else (frames[0] if frames else '?')
    return inner, ours[0] if ours else '-'


def main():
    first = last = None
    net_waiting, wakes = set(), []
    began = {}  # goroutine -> (state, start) of its current Running or Syscall span
    spans = []  # (start, end, state, (inner, keyward)), ns
    syscall_key = {}  # goroutine -> where its syscall in progress was entered
    syscall_n, syscall_ms, gave_up = collections.Counter(), collections.Counter(), collections.Counter()
    pending, frames = None, []  # a span that ended, whose stack is being read
    for line in sys.stdin:
        if pending is not None:
            if line.startswith('TransitionStack='):
                continue
            if line.startswith('\t'):
                if ' @ 0x' in line:  # a frame; its file:line follows, indented twice
                    frames.append(line.strip().split(' @')[0])
                continue
            g, start, end, state, now, lost = pending
            key = where(frames)
            if state == 'Running' and now == 'Syscall':
                syscall_key[g] = key  # the stack the syscall was entered with
            elif state == 'Syscall':
                key = syscall_key.pop(g, ('?', '-'))
            spans.append((start, end, state + (' (gave its P up)' if lost else ''), key))
            if state == 'Syscall':
                syscall_n[key] += 1
                syscall_ms[key] += (end - start) / 1e6
                gave_up[key] += lost
            pending, frames = None, []
        m = TRANSITION.search(line)
        if not m:
            continue
        t, g, was, now, reason = int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5) or ''
        first = t if first is None else first
        last = t
        if was == 'Running' and now == 'Waiting' and reason == 'network':
            net_waiting.add(g)
        elif was == 'Waiting' and now == 'Runnable' and g in net_waiting:
            net_waiting.discard(g)
            wakes.append(t)
        if g in began and began[g][0] == was:
            state, start = began.pop(g)
            # The stack printed with this event is where the span ended.
            pending = (g, start, t, state, now, int(state == 'Syscall' and now == 'Runnable'))
        # A syscall counts from its entry; one under way when the trace
        # began (a thread parked in the kernel, without a P) is left out.
        if now == 'Running' or now == 'Syscall' and was == 'Running':
            began[g] = (now, t)

    if first is None:
        sys.exit('no state transitions read: pipe in `go tool trace -d=parsed FILE`')
    wall = (last - first) / 1e6
    wakes.sort()
    gaps = sorted((b - a, a, b) for a, b in zip(wakes, wakes[1:]))
    print(f'trace {wall:.0f} ms, {len(wakes)} network wake-ups')
    for ms in (2, 5, 10, 20):
        print(f'  gaps without one >= {ms} ms: {sum(1 for d, _, _ in gaps if d >= ms * 1e6)}')
    for d, a, _ in reversed(gaps[-10:]):
        print(f'  {d / 1e6:6.2f} ms from {(a - first) / 1e6:.1f} ms')

    long_gaps = [(a, b) for d, a, b in gaps if d >= LONG_GAP_MS * 1e6]
    if long_gaps:
        long_gaps.sort()
        starts = [a for a, _ in long_gaps]
        during = collections.Counter()
        total = sum(b - a for a, b in long_gaps) / 1e6
        for start, end, state, key in spans:
            i = max(bisect.bisect_right(starts, start) - 1, 0)
            while i < len(long_gaps) and long_gaps[i][0] < end:
                a, b = long_gaps[i]
                overlap = min(end, b) - max(start, a)
                if overlap > 0:
                    during[(state, key)] += overlap / 1e6
                i += 1
        print(f'during the {len(long_gaps)} gaps of {LONG_GAP_MS} ms or more ({total:.0f} ms):')
        for (state, key), ms in during.most_common(int(sys.argv[1]) if len(sys.argv) > 1 else 10):
            print(f'  {ms:8.1f} ms {state}: {key[0]} | {key[1]}')
        held = collections.Counter()
        for (state, key), ms in during.items():
            held[holder(state, key)] += ms
        for who, ms in held.most_common():
            print(f'  {ms:8.1f} ms in all: {who}')
        print(f'  {total - sum(during.values()):8.1f} ms with nothing recorded running or in a syscall')

    print('time in syscalls (ms, calls, per call, calls that gave the processor up, innermost | keyward):')
    for key, ms in syscall_ms.most_common(14):
        n = syscall_n[key]
        print(f'  {ms:8.1f} {n:7d} {1000 * ms / n:8.1f} us {gave_up[key]:6d}  {key[0]} | {key[1]}')


if __name__ == '__main__':
    main()
