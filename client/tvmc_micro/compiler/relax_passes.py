"""The Relax pass list that turns an imported model into a flat, walkable `main` (DESIGN §5).

After it, `main` holds only: memory.alloc_storage / memory.alloc_tensor / builtin.alloc_tensor,
destination-passing calls of PrimFuncs (outputs last), aliases, reshapes, tuples and constants.
We stop before the VM-only passes: the executor is ours.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax
from tvm.ir.expr import Constant

from tvmc_micro.compiler.errors import CompileOptionError


def _rewrite_every_function(rewriter_class: Any, name: str) -> Any:
    """A module pass that runs one PyExprMutator over every Relax function, then normalises."""

    @tvm.transform.module_pass(opt_level=0, name=name)  # type: ignore[untyped-decorator]
    def _pass(mod: tvm.IRModule, _ctx: Any) -> tvm.IRModule:
        rewriter = rewriter_class(mod)
        for gv, func in list(mod.functions.items()):
            if isinstance(func, relax.Function):
                mod[gv] = rewriter.visit_expr(func)
        return relax.transform.Normalize()(mod)

    return _pass


def _round_int_avg_pool() -> Any:
    """Integer AVERAGE_POOL rounds like TFLite (half away from zero) instead of truncating.

    The TFLite frontend casts int8 to int32 and divides with integer truncation; TFLite divides with
    rounding. We compute the mean in float32 (exact for the sums an int8 pool can produce: < 2^24) and round
    half away from zero: sign(y) * floor(|y| + 0.5).
    """
    pool_op = tvm.ir.Op.get("relax.nn.avg_pool2d")

    @relax.expr_functor.mutator
    class _Rewriter(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: relax.Call) -> relax.Expr:
            call = super().visit_call_(call)
            if not (isinstance(call.op, tvm.ir.Op) and call.op.same_as(pool_op)):
                return call
            dtype = str(call.args[0].ty.dtype)
            if not (dtype.startswith("int") or dtype.startswith("uint")):
                return call
            a = call.attrs
            x = relax.op.astype(call.args[0], "float32")
            y = relax.op.nn.avg_pool2d(
                x,
                pool_size=[int(v) for v in a.pool_size],
                strides=[int(v) for v in a.strides],
                padding=[int(v) for v in a.padding],
                dilation=[int(v) for v in a.dilation],
                ceil_mode=bool(a.ceil_mode),
                count_include_pad=bool(a.count_include_pad),
                layout=str(a.layout),
                out_layout=str(a.out_layout),
            )
            half = relax.const(0.5, "float32")
            # floor(y + 0.5) for y >= 0, -floor(0.5 - y) below (no fabs: the C backend cannot lower it).
            up = relax.op.floor(relax.op.add(y, half))
            down = relax.op.negative(relax.op.floor(relax.op.subtract(half, y)))
            rounded = relax.op.where(relax.op.greater_equal(y, relax.const(0.0, "float32")), up, down)
            return relax.op.astype(rounded, dtype)

    return _rewrite_every_function(_Rewriter, "RoundIntegerAvgPool")


def _bounded_take() -> Any:
    """GATHER/Gather with indices computed at run time reads inside the table whatever the indices are.

    The frontends emit `relax.take(mode="fast")`, whose C reads `table[index]` unchecked: an embedding
    model fed an out-of-range token id reads (or faults on) memory outside the table. TFLite Micro and
    onnxruntime stop with an error there; a kernel of ours has no error path, so it wraps the index
    instead (mode "wrap": exact for every valid index, negative ones included, and an index out of range
    lands on some row of the table rather than outside it). Constant indices were checked at import and
    keep the unchecked read: a constant out of range is refused here by name.
    """
    take_op = tvm.ir.Op.get("relax.take")

    @relax.expr_functor.mutator
    class _Rewriter(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: relax.Call) -> relax.Expr:
            call = super().visit_call_(call)
            if not (isinstance(call.op, tvm.ir.Op) and call.op.same_as(take_op)):
                return call
            if str(call.attrs.mode) != "fast":
                return call
            data, indices = call.args
            axis = call.attrs.axis
            if isinstance(indices, Constant):
                values = indices.value.numpy()
                shape = [int(d) for d in data.ty.shape]
                size = shape[int(axis) if axis is not None else 0]
                if values.size and (values.min() < -size or values.max() >= size):
                    raise CompileOptionError(
                        f"a gather's constant indices reach {int(values.min())}..{int(values.max())} "
                        f"but the table has {size} entries on that axis",
                        "the model is damaged: re-export it",
                    )
                return call
            return relax.op.take(data, indices, None if axis is None else int(axis), mode="wrap")

    return _rewrite_every_function(_Rewriter, "BoundedTake")


_PLAIN_2D = ("N", "C", "H", "W")


def _nchw_conv2d_transpose() -> Any:
    """conv2d_transpose in any plain layout becomes NCHW/IOHW between two transposes.

    TVM 0.27 legalizes conv2d_transpose only as NCHW data with an IOHW kernel; the TFLite frontend emits
    TRANSPOSE_CONV as NHWC, which then survives LegalizeOps. The kernel transpose folds into the constant;
    the data transposes are injective and fuse with their neighbours.
    """
    op = tvm.ir.Op.get("relax.nn.conv2d_transpose")

    def perm(src: str, dst: str) -> list[int] | None:
        if sorted(src) != sorted(dst) or len(src) != len(dst):
            return None
        return [src.index(c) for c in dst]

    @relax.expr_functor.mutator
    class _Rewriter(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: relax.Call) -> relax.Expr:
            call = super().visit_call_(call)
            if not (isinstance(call.op, tvm.ir.Op) and call.op.same_as(op)):
                return call
            a = call.attrs
            data_l, kernel_l, out_l = str(a.data_layout), str(a.kernel_layout), str(a.out_layout)
            if (data_l, kernel_l, out_l) == ("NCHW", "IOHW", "NCHW"):
                return call
            to_nchw, from_nchw = perm(data_l, "NCHW"), perm("NCHW", out_l)
            to_iohw = perm(kernel_l, "IOHW")
            if to_nchw is None or from_nchw is None or to_iohw is None or sorted(data_l) != sorted(_PLAIN_2D):
                return call  # packed layouts (NCHW4c, ...): left for LegalizeOps to refuse
            data, weight = call.args
            if to_nchw != [0, 1, 2, 3]:
                data = relax.op.permute_dims(data, to_nchw)
            if to_iohw != [0, 1, 2, 3]:
                weight = relax.op.permute_dims(weight, to_iohw)
            out = relax.op.nn.conv2d_transpose(
                data,
                weight,
                strides=[int(v) for v in a.strides],
                padding=[int(v) for v in a.padding],
                output_padding=[int(v) for v in a.output_padding],
                dilation=[int(v) for v in a.dilation],
                groups=int(a.groups),
                data_layout="NCHW",
                kernel_layout="IOHW",
                out_layout="NCHW",
                out_dtype=None if str(a.out_dtype) in ("", "void") else str(a.out_dtype),
            )
            return out if from_nchw == [0, 1, 2, 3] else relax.op.permute_dims(out, from_nchw)

    return _rewrite_every_function(_Rewriter, "NCHWConv2dTranspose")


def lower_to_flat_main(
    mod: tvm.IRModule, target: tvm.target.Target, desired_layout: str | None
) -> tvm.IRModule:
    # Constant indices are folded first, so the bounds check sees them as constants.
    passes: list[Any] = [_round_int_avg_pool(), relax.transform.FoldConstant(), _bounded_take()]
    if desired_layout is not None:
        if desired_layout not in ("NCHW", "NHWC"):
            raise CompileOptionError(
                f"--desired-layout {desired_layout} is not supported", "use NCHW or NHWC"
            )
        kernel = "OIHW" if desired_layout == "NCHW" else "OHWI"
        # Only convolutions are pinned; pools and elementwise ops follow through layout inference.
        passes.append(relax.transform.ConvertLayout({"relax.nn.conv2d": [desired_layout, kernel]}))
    passes += [
        _nchw_conv2d_transpose(),
        relax.transform.DecomposeOpsForInference(),
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        relax.transform.DeadCodeElimination(),
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
    ]
    with target:
        result: tvm.IRModule = tvm.transform.Sequential(passes)(mod)
    return result
