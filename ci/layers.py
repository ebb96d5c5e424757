#!/usr/bin/env python3
"""The rooms check: every include of a file in a room (ci/rooms.txt) names its room, resolves, and
goes down the declared order or stays in its room; no cycle between modules (a module is a .c and
its .h: model.c + model.h, with model_io.c etc. counted as their own modules). Prints each
violation as FILE:LINE: what and why, and exits 1 if there is any. Usage: ci/layers.py [ROOT]"""
import os
import re
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
SEARCH = [".", "runtime"]  # the Makefile's -I. -Iruntime
EXTS = (".c", ".h", ".cu", ".cuh", ".cc", ".cpp", ".def")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def load_rooms():
    rooms, order = {}, []
    with open(os.path.join(root, "ci/rooms.txt")) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            name, dirs = line[0], line[1:]
            if not dirs:
                sys.exit(f"ci/rooms.txt:{n}: room '{name}' names no folder")
            order.append(name)
            for d in dirs:
                rooms[os.path.normpath(d)] = name
    return rooms, order


rooms, order = load_rooms()
rank = {r: i for i, r in enumerate(order)}


def room_of(rel):
    return rooms.get(os.path.dirname(rel))


def resolve(rel_file, inc):
    """Where the compiler finds inc: the including file's folder first, then -I. and -Iruntime."""
    here = os.path.normpath(os.path.join(os.path.dirname(rel_file), inc))
    if os.path.isfile(os.path.join(root, here)):
        return here, True
    for s in SEARCH:
        cand = os.path.normpath(os.path.join(s, inc))
        if os.path.isfile(os.path.join(root, cand)):
            return cand, False
    return None, False


def module(rel):
    return os.path.splitext(rel)[0]


errors, edges = [], {}  # edges: module -> {module: (file, line, include)}
files = sorted(os.path.join(d, f) for d in rooms if os.path.isdir(os.path.join(root, d))
               for f in os.listdir(os.path.join(root, d))
               if f.endswith(EXTS) and os.path.isfile(os.path.join(root, d, f)))
for rel in files:
    r = room_of(rel)
    with open(os.path.join(root, rel), errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            target, same_dir = resolve(rel, inc)
            where = f"{rel}:{n}"
            if target is None:
                errors.append(f'{where}: #include "{inc}" is not found (searched the file\'s folder, ./ and runtime/)')
                continue
            tr = room_of(target)
            if tr is None:
                errors.append(f'{where}: #include "{inc}" reaches {target}, which is in no room of ci/rooms.txt')
                continue
            if same_dir and "/" not in inc:
                errors.append(f'{where}: #include "{inc}" names no room: write "{os.path.relpath(target, "runtime") if target.startswith("runtime/") else target}"')
            if rank[tr] > rank[r]:
                errors.append(f'{where}: #include "{inc}" goes up from room {r} to room {tr} '
                              f'(the order, bottom first: {" < ".join(order)})')
            if module(target) != module(rel):
                edges.setdefault(module(rel), {}).setdefault(module(target), (rel, n, inc))

# Cycles between modules: depth-first search, report each cycle once with the includes behind it.
state, stack, seen_cycles = {}, [], set()


def dfs(u):
    state[u] = 1
    stack.append(u)
    for v in sorted(edges.get(u, {})):
        if state.get(v) == 1:
            cyc = stack[stack.index(v):] + [v]
            key = frozenset(cyc)
            if key not in seen_cycles:
                seen_cycles.add(key)
                steps = [f'{edges[a][b][0]}:{edges[a][b][1]} includes "{edges[a][b][2]}"' for a, b in zip(cyc, cyc[1:])]
                errors.append(f"cycle between modules {' -> '.join(cyc)}: " + "; ".join(steps))
        elif state.get(v) is None:
            dfs(v)
    stack.pop()
    state[u] = 2


sys.setrecursionlimit(10000)
for u in sorted(edges):
    if state.get(u) is None:
        dfs(u)

for e in errors:
    print(e)
n_inc = sum(len(v) for v in edges.values())
if errors:
    print(f"layers: {len(errors)} violation(s) in {len(files)} files")
    sys.exit(1)
print(f"layers: {len(files)} files in {len(order)} rooms ({' < '.join(order)}), {n_inc} module edges, all downward, no cycle")
