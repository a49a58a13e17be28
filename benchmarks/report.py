"""The runner's results as Markdown tables: ms per step and ratios per library, xpnet against
PyTorch autograd on the same device, peak memory against what a step needs, and the
transposed-operand GEMMs."""

from __future__ import annotations

from typing import Any

GPU_LIBS = ("cupy", "torch-cuda")


def _num(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 0.01:
        return f"{v:.3g}"
    return f"{v:.2e}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def floor_ms(entry: dict[str, Any], floors: dict[str, float]) -> tuple[float, float]:
    """(matmul FLOPs / GEMM rate, elementwise bytes / copy bandwidth) in ms."""
    return (
        1e3 * entry["matmul_flops"] / floors["gemm_flops_per_s"],
        1e3 * entry["elementwise_bytes"] / floors["copy_bytes_per_s"],
    )


def _lib_table(result: dict[str, Any], lib: str) -> str:
    configs = {c: e for c, e in result["configs"].items() if lib in e["libs"]}
    names = list(next(iter(configs.values()))["libs"][lib])
    others = [n for n in names if n != "xpnet"]
    header = ["config", *(f"{n} ms" for n in names), "floor ms (GEMM + elementwise)"]
    header += ["GEMMs alone ms"]
    header += [f"xpnet / {n}" for n in others] + ["xpnet / floor", "xpnet / GEMMs alone"]
    rows = []
    for cname, entry in configs.items():
        res = entry["libs"][lib]
        gemm, elem = floor_ms(entry, result["floors"][lib])
        xp = res["xpnet"]["ms"]
        row = [cname, *(_num(res[n]["ms"]) for n in names)]
        row.append(f"{_num(gemm + elem)} ({_num(gemm)} + {_num(elem)})")
        alone = entry["gemms_ms"][lib]
        row.append(_num(alone))
        row += [f"{xp / res[n]['ms']:.2f}" for n in others]
        row += [f"{xp / (gemm + elem):.2f}", f"{xp / alone:.2f}"]
        rows.append(row)
    return f"#### {lib}\n\n" + _table(header, rows)


def _cross_table(result: dict[str, Any]) -> str:
    """xpnet on each library against PyTorch (manual and autograd) on the same device."""
    pairs = [("numpy", "torch"), ("torch", "torch"), ("cupy", "torch-cuda")]
    pairs += [("torch-cuda", "torch-cuda")]
    rows = []
    for cname, entry in result["configs"].items():
        libs = entry["libs"]
        for mine, theirs in pairs:
            if mine in libs and theirs in libs:
                xp = libs[mine]["xpnet"]["ms"]
                rows.append(
                    [cname, f"xpnet/{mine}", _num(xp)]
                    + [f"{xp / libs[theirs][n]['ms']:.2f}" for n in ("manual", "autograd")]
                )
    header = ["config", "xpnet on", "ms", "/ torch manual", "/ torch autograd"]
    return _table(header, rows) if rows else ""


def _memory_table(result: dict[str, Any]) -> str:
    cols = [
        (lib, name)
        for lib, res in next(iter(result["configs"].values()))["libs"].items()
        for name in res
        if res[name]["peak_bytes"] >= 0
    ]
    header = ["config", "need MB (params + grads + activations + optimizer)"]
    header += [f"{lib}/{name} peak MB" for lib, name in cols]
    rows = []
    for cname, entry in result["configs"].items():
        need = entry["need_bytes"]
        parts = " + ".join(_num(v / 1e6) for v in need.values())
        row = [cname, f"{_num(sum(need.values()) / 1e6)} ({parts})"]
        row += [_num(entry["libs"][lib][name]["peak_bytes"] / 1e6) for lib, name in cols]
        rows.append(row)
    return _table(header, rows)


def _transposed_table(rows: list[dict[str, Any]]) -> str:
    keys = ["g @ W.T view", "g @ W.T contiguous", "x.T @ g view", "x.T @ g contiguous"]
    header = ["layer", *(f"{k} us" for k in keys)]
    return _table(header, [[r["layer"], *(_num(1e6 * r[k]) for k in keys)] for r in rows])


def machine_line(m: dict[str, Any]) -> str:
    blas = m["blas"]
    if isinstance(blas, list):
        blas = "; ".join(
            f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} threads)"
            for b in blas
        )
    versions = ", ".join(f"{k} {m[k]}" for k in ("python", "numpy", "torch", "cupy") if k in m)
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items())
    gpu = f"; GPU: {m['gpu']}" if "gpu" in m else ""
    return f"{m['date']}: {m['cpu']}, {m['cores']} cores{gpu}; {versions}; BLAS: {blas}; {env}"


def markdown(result: dict[str, Any]) -> str:
    parts = [f"Machine: {machine_line(result['machine'])}"]
    floors = "; ".join(
        f"{lib}: GEMM {f['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s, copy "
        f"{f['copy_bytes_per_s'] / 1e9:.1f} GB/s"
        for lib, f in result["floors"].items()
    )
    parts.append(f"Measured floors (float32): {floors}.")
    parts.append("### ms per step (median) and ratios")
    libs = list(result["floors"])
    parts += [_lib_table(result, lib) for lib in libs]
    cross = _cross_table(result)
    if cross:
        parts += ["### xpnet against PyTorch on the same device", cross]
    parts += ["### Peak memory during a step", _memory_table(result)]
    if "transposed_gemm" in result:
        parts += [
            "### NumPy backward products: transposed view against a contiguous copy",
            _transposed_table(result["transposed_gemm"]),
        ]
    return "\n\n".join(parts) + "\n"
