#!/usr/bin/env python3
"""Where a one-core keyward stops serving: read a Go execution trace.

    curl -o t.trace 'http://127.0.0.1:6060/debug/pprof/trace?seconds=4'   # serve --pprof-addr
    go tool trace -d=parsed t.trace | python3 docs/perf/trace-stalls.py

It prints, from the trace's state transitions:

- the gaps between network wake-ups (a goroutine that waited on the
  network made runnable again): while none happens, no request is read
  or answered; the longest gaps are the latency tail;
- the time goroutines spent in syscalls, by the innermost SQLite function
  (or Go syscall) and the innermost keyward function on the stack; a
  long syscall keeps its processor unless Go's monitor takes it back;
- for each, how many calls gave their processor up: Go's monitor took
  it while the call blocked, and the goroutine came back Runnable, not
  Running; the others kept the processor, and nothing else ran meanwhile.

Used for README "Performance" (issue 14's cache-miss p99); standard
library only.
"""
import collections
import re
import sys

TRANSITION = re.compile(r'StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)(?: Reason="([^"]*)")?')


def where(frames):
    lib = [f.split('lib._', 1)[1] for f in frames if 'sqlite/lib._' in f]
    ours = [f.split('internal/', 1)[1] for f in frames if 'keyward/internal/' in f]
    inner = lib[0] if lib else (frames[1] if len(frames) > 1 else '?')
    return inner, ours[0] if ours else '-'


def main():
    first = last = None
    net_waiting, wakes = set(), []
    in_syscall, syscall_n, syscall_ms = {}, collections.Counter(), collections.Counter()
    gave_up = collections.Counter()
    pending, frames = None, []  # a Running->Syscall whose stack is being read
    for line in sys.stdin:
        if pending is not None:
            if line.startswith('TransitionStack='):
                continue
            if line.startswith('\t'):
                s = line.strip()
                if not s.startswith('/'):
                    frames.append(s.split(' @')[0])
                continue
            g, t = pending
            in_syscall[g] = (t, where(frames))
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
        if was == 'Running' and now == 'Syscall':
            pending = (g, t)
        elif was == 'Syscall' and g in in_syscall:
            began, key = in_syscall.pop(g)
            syscall_n[key] += 1
            syscall_ms[key] += (t - began) / 1e6
            if now == 'Runnable':
                gave_up[key] += 1

    if first is None:
        sys.exit('no state transitions read: pipe in `go tool trace -d=parsed FILE`')
    wall = (last - first) / 1e6
    wakes.sort()
    gaps = sorted(((b - a) / 1e6, (a - first) / 1e6) for a, b in zip(wakes, wakes[1:]))
    print(f'trace {wall:.0f} ms, {len(wakes)} network wake-ups')
    for ms in (2, 5, 10, 20):
        print(f'  gaps without one >= {ms} ms: {sum(1 for d, _ in gaps if d >= ms)}')
    for d, at in reversed(gaps[-10:]):
        print(f'  {d:6.2f} ms from {at:.1f} ms')
    print('time in syscalls (ms, calls, per call, calls that gave the processor up, innermost | keyward):')
    for key, ms in syscall_ms.most_common(14):
        n = syscall_n[key]
        print(f'  {ms:8.1f} {n:7d} {1000 * ms / n:8.1f} us {gave_up[key]:6d}  {key[0]} | {key[1]}')


if __name__ == '__main__':
    main()
