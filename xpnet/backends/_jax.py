"""JAX on the CPU or a CUDA GPU; arrays are immutable."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import array_api_compat

from ._spec import DTYPES, BackendError, Spec


class Jax(Spec):
    name = "jax"
    module = "jax"
    extras = ("jax",)
    valid_devices = ("cpu", "cuda", "cuda:N")
    float64_hint = " or enable it with JAX_ENABLE_X64=1"
    mutable_arrays = False
    compiles_kernels = True  # XLA compiles every operation for each new shape

    def canonical_device(self, device: str | None) -> str:
        return self.cuda_or_cpu(device, cpu=True)

    def open(self, device: str) -> tuple[ModuleType, Any]:
        jax = self.import_library()
        import jax.numpy as xp

        if device == "cpu":
            return xp, jax.devices("cpu")[0]
        index = int(device.partition(":")[2])
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:  # no GPU platform initialised
            gpus = []
        if index >= len(gpus):
            valid = ("cpu", "cuda") + tuple(f"cuda:{i}" for i in range(len(gpus)))
            raise BackendError(
                f"backend 'jax' has no usable GPU {index} (found {len(gpus)}); valid: "
                + ", ".join(repr(d) for d in valid)
                + "; install jax[cuda12] for GPUs"
            )
        return xp, gpus[index]

    def can_compile(self, dev: Any) -> bool:
        return True

    def compile_pays(self, dev: Any) -> bool:
        # every eager operation is dispatched on its own: a jitted step is a fraction of
        # the eager one (README, "Compiled steps")
        return True

    def compile_step(self, fn: Any, dev: Any) -> Any:
        import jax

        # params and state are replaced every step: XLA may write the new ones in place
        return jax.jit(fn, donate_argnums=(0, 1))

    def compile_function(self, fn: Any, dev: Any) -> Any:
        import jax

        # eager JAX dispatches each operation of an evaluation chunk on its own
        return jax.jit(fn)

    def owns(self, x: Any) -> bool:
        return array_api_compat.is_jax_array(x)

    def label(self, dev: Any) -> str:
        return "cpu" if dev.platform == "cpu" else f"cuda:{dev.id}"

    def on_cpu(self, dev: Any) -> bool:
        return dev.platform == "cpu"

    def synchronize(self, xp: ModuleType, dev: Any) -> None:
        # JAX has no global barrier; waiting on a fresh array orders after prior work
        # only per stream, which is the best JAX offers without holding every output.
        xp.zeros(1, device=dev).block_until_ready()

    def float_dtypes(self, xp: ModuleType, dev: Any) -> tuple[str, ...]:
        import jax

        return DTYPES if jax.config.jax_enable_x64 else ("float32", "float16")

    def allow_float64(self) -> None:
        try:
            import jax
        except ImportError:  # not installed: the probe says so
            return
        jax.config.update("jax_enable_x64", True)

    def set_tf32(self, on: bool) -> None:
        import jax

        # 'highest' keeps float32 matmuls exact on GPU/TPU (JAX's default uses TF32/bf16).
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if on else "highest")

    def free_memory(self, xp: ModuleType, dev: Any) -> tuple[int | None, bool]:
        if getattr(dev, "platform", "cpu") == "cpu":
            return super().free_memory(xp, dev)
        stats = dev.memory_stats() or {}  # XLA's allocator: its limit and what is in use
        if "bytes_limit" not in stats:
            return None, False
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), False

    def is_out_of_memory(self, exc: BaseException) -> bool:
        # XLA reports a failed allocation as a runtime error with gRPC's status name.
        jax = sys.modules.get("jax")
        if jax is None:
            return False
        errors = getattr(jax, "errors", None)
        kinds = (
            getattr(errors, "JaxRuntimeError", None),
            getattr(sys.modules.get("jaxlib.xla_extension"), "XlaRuntimeError", None),
        )
        runtime = any(k is not None and isinstance(exc, k) for k in kinds)
        return runtime and "RESOURCE_EXHAUSTED" in str(exc)
