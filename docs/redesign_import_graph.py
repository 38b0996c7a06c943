import ast, sys, pathlib, collections
root = pathlib.Path(sys.argv[1])
pkgroot = root / "vcbench"
def modname(p):
    rel = p.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    return ".".join(parts)
mods = {modname(p): p for p in pkgroot.rglob("*.py")}
edges = []  # (src, dst, lineno, lazy)
for m, p in sorted(mods.items()):
    tree = ast.parse(p.read_text())
    ispkg = p.name == "__init__.py"
    # find function-level
    parents = {}
    for node in ast.walk(tree):
        for c in ast.iter_child_nodes(node): parents[c] = node
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            lazy = False; n = node
            while n in parents:
                n = parents[n]
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)): lazy = True; break
            tc = False; n = node
            while n in parents:
                n = parents[n]
                if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test): tc = True
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = m.split(".") if ispkg else m.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module
                for a in node.names:
                    cand = f"{mod}.{a.name}"
                    targets.append(cand if cand in mods else mod)
            for t in targets:
                if t and t.split(".")[0] == "vcbench":
                    edges.append((m, t, node.lineno, "TC" if tc else ("lazy" if lazy else "top"), [a.name for a in node.names]))
mode = sys.argv[2] if len(sys.argv) > 2 else "list"
def pkg(m):
    parts = m.split(".")
    if len(parts) >= 2 and (root / "/".join(parts[:2])).is_dir(): return ".".join(parts[:2])
    return "vcbench.(plumbing)" if len(parts)==2 else m
if mode == "list":
    for s, d, l, k, names in edges:
        print(f"{s}:{l} {k} -> {d} {','.join(names)}")
elif mode == "pkg":
    g = collections.defaultdict(lambda: collections.defaultdict(list))
    for s, d, l, k, names in edges:
        ps, pd = pkg(s), pkg(d)
        if ps != pd: g[ps][pd].append(f"{s.split('.',1)[1]}:{l}{'' if k=='top' else '('+k+')'}")
    for ps in sorted(g):
        print(ps)
        for pd in sorted(g[ps]):
            print(f"   -> {pd}: {len(g[ps][pd])}  [{'; '.join(g[ps][pd][:6])}{' ...' if len(g[ps][pd])>6 else ''}]")
elif mode == "cycles":
    # module-level cycles (top-level imports only and all)
    for which in ("top", "all"):
        G = collections.defaultdict(set)
        for s, d, l, k, names in edges:
            if which == "top" and k != "top": continue
            if d in mods and s != d: G[s].add(d)
        # tarjan
        idx = {}; low = {}; st = []; on = set(); out = []; c = [0]
        sys.setrecursionlimit(10000)
        def sc(v):
            idx[v] = low[v] = c[0]; c[0]+=1; st.append(v); on.add(v)
            for w in G[v]:
                if w not in idx: sc(w); low[v] = min(low[v], low[w])
                elif w in on: low[v] = min(low[v], idx[w])
            if low[v] == idx[v]:
                comp = []
                while True:
                    w = st.pop(); on.discard(w); comp.append(w)
                    if w == v: break
                if len(comp) > 1: out.append(sorted(comp))
        for v in list(mods):
            if v not in idx: sc(v)
        print(which, "SCCs:")
        for comp in out: print("  ", comp)
    # package-level cycles
    P = collections.defaultdict(set)
    for s, d, l, k, names in edges:
        ps, pd = pkg(s), pkg(d)
        if ps != pd: P[ps].add(pd)
    print("package pairs importing each other:")
    for a in sorted(P):
        for b in sorted(P[a]):
            if a in P[b] and a < b: print("  ", a, "<->", b)
