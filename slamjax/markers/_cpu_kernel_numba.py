"""The numba side of ``_cpu_kernel``: the compiled scan and its XLA FFI handler. Imported on first
use only (compiling, or loading numba's cache, takes a second or more)."""

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cpu_kernel import N_ARGS, N_RETS, api_version


@intrinsic
def _as_pointer(typingctx, address):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


@numba.njit(inline="always")
def _words(address, count):
    return numba.carray(_as_pointer(address), (count,), np.int64)


# struct XLA_FFI_Buffer {size_t struct_size; ext*; XLA_FFI_DataType dtype; void* data; int64 rank; int64* dims}
@numba.njit(inline="always")
def _data(buffer_address):
    return _as_pointer(_words(buffer_address, 6)[3])


@numba.njit(inline="always")
def _dims(buffer_address, rank):
    return _words(_words(buffer_address, 6)[5], rank)


@numba.njit(inline="always")
def _vector(buffer_address):
    d = _dims(buffer_address, 1)
    return numba.carray(_data(buffer_address), (d[0],), np.float64)


@numba.njit(inline="always")
def _matrix(buffer_address):
    d = _dims(buffer_address, 2)
    return numba.carray(_data(buffer_address), (d[0], d[1]), np.float64)


@numba.njit(inline="always")
def _cube(buffer_address):
    d = _dims(buffer_address, 3)
    return numba.carray(_data(buffer_address), (d[0], d[1], d[2]), np.float64)


@numba.njit(inline="always")
def _int_matrix(buffer_address):
    d = _dims(buffer_address, 2)
    return numba.carray(_data(buffer_address), (d[0], d[1]), np.int32)


@numba.njit(cache=True)
def _scan(Mt, gram, effects, classes, residual, w, tau, precision, log_pi, z, gumbel, spike):
    """The scan of ``sampler.sample_single_site`` in place on effects, classes and residual."""
    nb, b, n = Mt.shape
    m, k = effects.shape
    C = precision.shape[2]
    per_marker = precision.shape[0] != 1
    r = np.empty((b, k))
    delta = np.zeros((b, k))
    P = np.empty(C)
    for block in range(nb):
        M_b = Mt[block]
        r[:, :] = np.dot(M_b, residual)  # M_j' R for every marker of the block
        for j in range(b):
            site = block * b + j
            if site >= m:  # padding
                delta[j, :] = 0.0
                continue
            xtx = gram[block, j, j]
            row = site if per_marker else 0
            for l in range(k):
                beta = effects[site, l]
                score = w[l] * (r[j, l] + xtx * beta)
                best, chosen = -np.inf, 0
                if C == 1:  # one class: no class draw
                    P[0] = w[l] * xtx + tau[l] * precision[row, l, 0]
                for c in range(C if C > 1 else 0):
                    d = precision[row, l, c]
                    if np.isinf(d):  # a spike: no effect, no likelihood term
                        P[c] = w[l] * xtx + tau[l]
                        weight = log_pi[row, l, c]
                    else:
                        t = tau[l] * d
                        P[c] = w[l] * xtx + t
                        weight = log_pi[row, l, c] + 0.5 * np.log(t / P[c]) + 0.5 * score * score / P[c]
                    weight += gumbel[site, l, c]
                    if weight > best:
                        best, chosen = weight, c
                if spike and np.isinf(precision[row, l, chosen]):
                    value = 0.0
                else:
                    value = (score + z[site, l] * np.sqrt(P[chosen])) / P[chosen]
                delta[j, l] = value - beta
                effects[site, l] = value
                classes[site, l] = chosen
            for i in range(b):
                g = gram[block, i, j]
                for l in range(k):
                    r[i, l] -= g * delta[j, l]
        residual -= np.dot(M_b.T, delta)


_VERSION_WORD = np.int64(api_version()[0]) | (np.int64(api_version()[1]) << np.int64(32))


@numba.cfunc(types.int64(types.int64), cache=True)
def _handler(frame_address):
    """XLA_FFI_Error* handler(XLA_FFI_CallFrame*): NULL (0) on success."""
    frame = _words(frame_address, 22)
    extension = frame[1]
    if extension != 0:  # the metadata query (struct XLA_FFI_Metadata_Extension)
        ext = _words(extension, 4)
        if ext[1] & 0xFFFFFFFF == 1:
            metadata = _words(ext[3], 5)
            metadata[1] = 24  # api_version.struct_size
            metadata[2] = 0  # api_version.extension_start
            metadata[3] = _VERSION_WORD  # api_version.major_version, minor_version
            metadata[4] = 0  # traits
            return 0
    args = _words(frame[9], N_ARGS)  # call_frame->args.args
    rets = _words(frame[14], N_RETS)  # call_frame->rets.rets
    effects, classes, residual = _matrix(rets[0]), _int_matrix(rets[1]), _matrix(rets[2])
    effects[:, :] = _matrix(args[2])
    classes[:, :] = _int_matrix(args[3])
    residual[:, :] = _matrix(args[4])
    _scan(_cube(args[0]), _cube(args[1]), effects, classes, residual, _vector(args[5]), _vector(args[6]),
          _cube(args[7]), _cube(args[8]), _matrix(args[9]), _cube(args[10]), _vector(args[11])[0] != 0.0)
    return 0
