#!/usr/bin/env python3
"""Top functions of a `perf record -g` profile of a stripped Go binary.

kwok's release binary has no symbol table, so perf prints bare addresses; Go
keeps its pclntab, which `go tool addr2line` reads. perf gives each frame as
an offset into the binary's file; a static Go binary maps the file at
0x400000, so offset + 0x400000 is the address (docs/scale.md, kwok's CPU in
the 5,000-node bulk).

    perf record -F 99 -g -p "$(pgrep -x kwok)" -o kwok.perf -- sleep 20
    hack/perf-symbolize.py ~/.cache/opportunist/bin/kwok-v0.8.0/kwok kwok.perf
"""
import collections
import re
import subprocess
import sys

BASE = 0x400000


def main(binary, data, top=40):
    script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,dso"],
                            capture_output=True, text=True, check=True).stdout
    samples, frames = [], []
    for line in script.splitlines() + [""]:
        m = re.match(r"\s*([0-9a-f]+) \((.*)\)", line)
        if m:
            addr = int(m.group(1), 16)
            frames.append(addr + BASE if m.group(2) != "[kernel.kallsyms]" else None)
        elif frames:
            samples.append(frames)
            frames = []
    addrs = sorted({a for s in samples for a in s if a is not None})
    out = subprocess.run(["go", "tool", "addr2line", binary], input="".join(f"{a:#x}\n" for a in addrs),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    name = {a: out[2 * i] for i, a in enumerate(addrs)}
    flat, cum = collections.Counter(), collections.Counter()
    for s in samples:
        fns = [name.get(a, "[kernel]") for a in s]
        flat[fns[0]] += 1
        for f in set(fns):
            cum[f] += 1
    n = len(samples)
    print(f"{n} samples")
    print("flat:")
    for f, c in flat.most_common(top // 2):
        print(f"{100 * c / n:6.1f}%  {f}")
    print("cumulative:")
    for f, c in cum.most_common(top):
        print(f"{100 * c / n:6.1f}%  {f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: hack/perf-symbolize.py <go binary> <perf.data>")
    main(sys.argv[1], sys.argv[2])
