"""C kernels for the CPU decode step, built on first use with the machine's C compiler.

`decode_attention` is single-query attention over the T2S KV cache (source: kernels/decode_attention.c).
torch's `scaled_dot_product_attention` runs a query of one row as small per-head GEMMs: on the
full-size v2 GPT (16 heads x 32) with ~300 cached positions it took 100-170 us a layer, over a
quarter of an int8 decode step on a 2-core CPU. The kernel makes one pass over each head's keys and
values (score, softmax, weighted sum) and writes the step's key and value into the cache too.

The library is compiled once per source, compiler and CPU (`-O3 -march=native`, see FLAGS) into
``~/.cache/myna/kernels`` (else a folder of this user's alone in the temporary directory), written under
a temporary name and renamed, so concurrent first uses never see half a file. Without a compiler,
or if the build fails (a `.failed` file beside it then keeps later processes from retrying:
delete it to retry),
`load_kernels()` returns None and the callers keep torch's operators: the kernels are an
optimisation, never a requirement. Built by GCC, the library's OpenMP is the libgomp torch's CPU
wheel already loaded (same soname), so both share one thread pool; clang builds it without OpenMP
(its libomp would be a second pool), and macOS is skipped (Apple's compiler has no OpenMP).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import platform
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import torch

from myna.atomic import atomic_output
from myna.engine.user_cache import user_cache_dir

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels") / "decode_attention.c"
# -fassociative-math (with the two flags it needs) lets the sums vectorize; not -ffast-math, whose
# start-up code would switch the whole process to flushing denormals to zero
FLAGS = ("-O3", "-march=native", "-fopenmp", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math",
         "-shared", "-fPIC")
MAX_HEAD_DIM = 128  # MAX_DIM in the C source


class CpuKernels:
    """The loaded kernel library; its functions take torch tensors (fp32, contiguous where stated)."""

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._attention = library.myna_decode_attention
        self._attention.restype = None
        self._attention.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int] * 4 + [ctypes.c_float, ctypes.c_int]

    def decode_attention(self, qkv: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slot: int,
                         out: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        """Write this step's key/value at `slot`, attend its query over slots [0, slot]; returns `out`.

        qkv: (3 * heads * dim,) fp32, this step's packed q, k, v (heads-major within each);
        k_cache, v_cache: (1, heads, max_len, dim) fp32 contiguous; out: (heads * dim,) fp32;
        scratch: at least heads * max_len fp32. Sizes and dtypes are checked; the buffers are the caller's.
        """
        return self.bind_attention(k_cache, v_cache, out, scratch)(qkv, slot)

    def bind_attention(self, k_cache: torch.Tensor, v_cache: torch.Tensor, out: torch.Tensor,
                       scratch: torch.Tensor) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """`decode_attention` with the caches and buffers fixed: they are checked here, once; the returned
        ``attend(qkv, slot)`` checks only what changes per call (a decode step calls it once a layer)."""
        batch, heads, max_len, dim = k_cache.shape
        if batch != 1 or v_cache.shape != k_cache.shape:
            raise ValueError(f"decode_attention takes one sequence's caches, got {tuple(k_cache.shape)} / {tuple(v_cache.shape)}")
        if not (k_cache.is_contiguous() and v_cache.is_contiguous() and out.is_contiguous() and scratch.is_contiguous()):
            raise ValueError("decode_attention: caches, out and scratch must be contiguous")
        if dim > MAX_HEAD_DIM:
            raise ValueError(f"head size {dim} over the kernel's {MAX_HEAD_DIM}")
        if any(t.device.type != "cpu" for t in (k_cache, v_cache, out, scratch)):
            raise ValueError("decode_attention runs on CPU tensors only")
        if {k_cache.dtype, v_cache.dtype, out.dtype, scratch.dtype} != {torch.float32}:
            raise TypeError("decode_attention reads and writes float32 tensors only")
        if out.numel() != heads * dim or scratch.numel() < heads * max_len:
            raise ValueError("decode_attention: out or scratch does not match the cache's heads and length")
        run, scale, size = self._attention, dim**-0.5, 3 * heads * dim
        pointers = (k_cache.data_ptr(), v_cache.data_ptr(), out.data_ptr(), scratch.data_ptr())

        def attend(qkv: torch.Tensor, slot: int) -> torch.Tensor:
            if not 0 <= slot < max_len:
                raise IndexError(f"cache slot {slot} outside 0..{max_len - 1}")
            if qkv.numel() != size or qkv.dtype != torch.float32 or qkv.device.type != "cpu":
                raise ValueError(f"decode_attention: qkv must be {size} float32 values on the CPU")
            qkv = qkv.contiguous()
            run(qkv.data_ptr(), pointers[0], pointers[1], pointers[2], pointers[3], heads, max_len, dim, slot, scale,
                torch.get_num_threads())
            return out

        attend.buffers = (k_cache, v_cache, scratch)  # alive as long as the pointers into them
        return attend


def _compiler() -> str | None:
    if platform.system() == "Darwin":  # Apple's compiler has no OpenMP, and a missing one opens an install dialog
        return None
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _flags(version: str) -> tuple[str, ...]:
    """FLAGS for this compiler: without OpenMP for clang (its libomp would be a second thread pool beside torch's
    libgomp), so the kernel then runs its heads on one thread."""
    return FLAGS if "clang" not in version.lower() else tuple(f for f in FLAGS if f != "-fopenmp")


def _cpu_signature() -> str:
    """What -march=native depends on: the first CPU's model and feature lines (x86 and Arm Linux), else the machine name."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return platform.machine()
    first = lines[: lines.index("")] if "" in lines else lines  # processor 0's block
    keys = ("model name", "flags", "Features", "CPU implementer", "CPU architecture", "CPU variant", "CPU part")
    return platform.machine() + "\n" + "\n".join(line for line in first if line.split(":")[0].strip() in keys)


def _cache_dir() -> Path | None:
    """~/.cache/myna/kernels, else a folder of this user's alone in the temporary directory; None if neither."""
    return user_cache_dir("kernels")


def build(directory: Path | None = None) -> Path | None:
    """Compile the kernel library (or find it already built); its path, or None when it cannot be built."""
    compiler = _compiler()
    if compiler is None:
        log.info("no C compiler found: the decode step keeps torch's attention")
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, errors="replace",
                                 timeout=30).stdout
        source = SOURCE.read_text()
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("the CPU decode kernels cannot be built (torch's attention is used): %s", error)
        return None
    flags = _flags(version)
    key = hashlib.sha256("\0".join([source, compiler, version, " ".join(flags), _cpu_signature(),
                                    str(torch.__version__)]).encode()).hexdigest()[:16]
    directory = directory or _cache_dir()
    if directory is None:
        return None
    target = directory / f"decode_attention-{key}.so"
    failed = target.with_suffix(".failed")  # this compiler could not build this source here: do not retry
    if target.is_file():
        return target
    if failed.is_file():
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_output(target, mode=None) as partial:  # the linker sets the library's mode
            done = subprocess.run([compiler, *flags, str(SOURCE), "-o", str(partial), "-lm"], capture_output=True,
                                  text=True, errors="replace", timeout=120)
            if done.returncode != 0:
                raise _BuildFailed(done.stderr)
        return target
    except _BuildFailed as failure:
        log.warning("building the CPU decode kernels failed (torch's attention is used; %s says why): %s",
                    failed, failure.reasons.strip()[-500:])
        failed.write_text(failure.reasons, errors="replace")
        return None
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("the CPU decode kernels cannot be built in %s (torch's attention is used): %s", directory, error)
        return None


class _BuildFailed(Exception):
    """The compiler refused the source (its messages in `reasons`): nothing is published."""

    def __init__(self, reasons: str) -> None:
        super().__init__(reasons)
        self.reasons = reasons


@functools.cache
def load_kernels() -> CpuKernels | None:
    """The kernel library, built on first use (None where it cannot be built or loaded here)."""
    for attempt in range(2):  # a cached library that does not load (a broken copy) is built once more
        path = build()
        if path is None:
            return None
        try:
            return CpuKernels(ctypes.CDLL(str(path)), path)
        except OSError as error:
            if attempt:
                log.warning("loading the CPU decode kernels failed (torch's attention is used): %s", error)
            else:
                path.unlink(missing_ok=True)
    return None
