"""Runs a TFLite Micro audio front-end in numpy: a .tflite of TFLM *Signal* custom ops, such as
micro_speech's audio_preprocessor_int8.tflite, computed bit for bit as TFLM's kernels compute it.

No TFLite runtime a Raspberry Pi has registers these ops (LiteRT and tflite-runtime stop at "unresolved
custom op: SignalWindow"; the tflite-micro wheel is x86_64 only), and the graph is small and integer:
window, FFT auto-scale, int16 real FFT (kissfft in 16-bit fixed point), energy, filter bank, square
root, spectral-subtraction noise reduction, PCAN gain control and log, then a few elementwise builtins.

The noise estimate of the spectral subtraction is the graph's state: like TFLM's kernel it carries from
one call to the next, so one graph must see consecutive frames of one stream, and reset() (TFLM's
interpreter reset) starts a new one.
"""

import math

import numpy as np
import tflite
from flatbuffers import flexbuffers

from edgenn.errors import EdgennError
from edgenn.modelfile import TENSOR_TYPES

SIGNAL_PREFIX = "Signal"  # TFLM's Signal library registers its ops as SignalWindow, SignalRfft, ...
INT16_MAX = 32767
PCAN_SNR_BITS, PCAN_OUTPUT_BITS = 12, 6  # signal/src/pcan_argc_fixed.h
LOG_SCALE_BITS, LOG_SEGMENT_BITS, LOG_COEFF = 16, 7, 45426  # signal/src/log.cc: Q16 log2, ln 2 in Q16
LOG_LUT = np.array([
    0, 224, 442, 654, 861, 1063, 1259, 1450, 1636, 1817, 1992, 2163, 2329, 2490, 2646, 2797, 2944, 3087, 3224,
    3358, 3487, 3611, 3732, 3848, 3960, 4068, 4172, 4272, 4368, 4460, 4549, 4633, 4714, 4791, 4864, 4934, 5001,
    5063, 5123, 5178, 5231, 5280, 5326, 5368, 5408, 5444, 5477, 5507, 5533, 5557, 5578, 5595, 5610, 5622, 5631,
    5637, 5640, 5641, 5638, 5633, 5626, 5615, 5602, 5586, 5568, 5547, 5524, 5498, 5470, 5439, 5406, 5370, 5332,
    5291, 5249, 5203, 5156, 5106, 5054, 5000, 4944, 4885, 4825, 4762, 4697, 4630, 4561, 4490, 4416, 4341, 4264,
    4184, 4103, 4020, 3935, 3848, 3759, 3668, 3575, 3481, 3384, 3286, 3186, 3084, 2981, 2875, 2768, 2659, 2549,
    2437, 2323, 2207, 2090, 1971, 1851, 1729, 1605, 1480, 1353, 1224, 1094, 963, 830, 695, 559, 421, 282, 142,
    0, 0], np.int64)


def uses_signal_ops(op_names):
    return any(name.startswith(SIGNAL_PREFIX) for name in op_names)


def _wrap16(x):
    """C's store into an int16_t: keep the low 16 bits, signed."""
    return np.asarray(x).astype(np.int16).astype(np.int64)


def _wrap32(x):
    """C's store into an int32_t."""
    return ((np.asarray(x, np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _u32(x):
    return np.asarray(x, np.int64) & 0xFFFFFFFF


def _bit_length(x):
    """MostSignificantBit32 for x > 0: the number of bits x needs."""
    return np.array([int(v).bit_length() for v in np.ravel(x)], np.int64).reshape(np.shape(x))


# --- kissfft v130 with FIXED_POINT=16 (what TFLM's SignalRfft int16 calls)
def _sround(x):
    return _wrap16((x + (1 << 14)) >> 15)


def _fixdiv(re, im, divisor):
    """C_FIXDIV: scale by 1/divisor in Q15 before each butterfly, so the sums cannot overflow."""
    factor = INT16_MAX // divisor
    return _sround(re * factor), _sround(im * factor)


def _cmul(ar, ai, br, bi):
    return _sround(ar * br - ai * bi), _sround(ar * bi + ai * br)


def _cexp(phase):
    return np.floor(0.5 + INT16_MAX * np.cos(phase)).astype(np.int64), \
        np.floor(0.5 + INT16_MAX * np.sin(phase)).astype(np.int64)


class _FixedRfft:
    """kiss_fftr of a real int16 signal of even length n: the n/2-point complex FFT of its sample pairs,
    then the split into n/2 + 1 bins. kissfft recurses (decimation in time); here each level of the
    recursion is one vectorised stage over all its sub-FFTs, with kissfft's rounding at every step."""

    def __init__(self, n):
        if n < 4 or n & (n - 1):
            raise EdgennError(f"SignalRfft of length {n}: only powers of two are supported")
        self.half = n // 2
        self.twiddles = _cexp(-2 * np.pi * np.arange(self.half) / self.half)
        self.super_twiddles = _cexp(-np.pi * (np.arange(1, self.half // 2 + 1) / self.half + 0.5))
        radices, rest = [], self.half  # kf_factor: radix 4 while it divides, then 2
        while rest > 1:
            radices.append(4 if rest % 4 == 0 else 2)
            rest //= radices[-1]
        self.order = self._leaf_order(np.arange(self.half), radices)
        # stages from the innermost recursion level out: (radix, sub-FFT length m, twiddle stride)
        strides = np.cumprod([1] + radices[:-1])
        sizes = [self.half // (stride * radix) for stride, radix in zip(strides, radices)]
        self.stages = list(zip(radices, sizes, strides))[::-1]

    @classmethod
    def _leaf_order(cls, indices, radices):
        """Where kf_work's recursion puts each input sample before the first butterflies."""
        if len(radices) == 1:
            return indices
        radix = radices[0]
        return np.concatenate([cls._leaf_order(indices[k::radix], radices[1:]) for k in range(radix)])

    def _tw(self, index):
        return self.twiddles[0][index], self.twiddles[1][index]

    def _stage(self, re, im, radix, m, stride):
        re, im = re.reshape(-1, radix, m), im.reshape(-1, radix, m)
        j = np.arange(m) * stride
        f = [_fixdiv(re[:, q], im[:, q], radix) for q in range(radix)]
        if radix == 2:
            t = _cmul(*f[1], *self._tw(j))
            out = [(_wrap16(f[0][0] + t[0]), _wrap16(f[0][1] + t[1])),
                   (_wrap16(f[0][0] - t[0]), _wrap16(f[0][1] - t[1]))]
        else:
            s0, s1, s2 = (_cmul(*f[q], *self._tw(q * j)) for q in (1, 2, 3))
            s5 = _wrap16(f[0][0] - s1[0]), _wrap16(f[0][1] - s1[1])
            f0 = _wrap16(f[0][0] + s1[0]), _wrap16(f[0][1] + s1[1])
            s3 = _wrap16(s0[0] + s2[0]), _wrap16(s0[1] + s2[1])
            s4 = _wrap16(s0[0] - s2[0]), _wrap16(s0[1] - s2[1])
            out = [(_wrap16(f0[0] + s3[0]), _wrap16(f0[1] + s3[1])),
                   (_wrap16(s5[0] + s4[1]), _wrap16(s5[1] - s4[0])),
                   (_wrap16(f0[0] - s3[0]), _wrap16(f0[1] - s3[1])),
                   (_wrap16(s5[0] - s4[1]), _wrap16(s5[1] + s4[0]))]
        return np.stack([o[0] for o in out], axis=1).reshape(-1), np.stack([o[1] for o in out], axis=1).reshape(-1)

    def _complex_fft(self, re, im):
        re, im = re[self.order], im[self.order]
        for radix, m, stride in self.stages:
            re, im = self._stage(re, im, radix, m, stride)
        return re, im

    def __call__(self, samples):
        """[n/2 + 1] bins of int16 samples [n] as interleaved (real, imaginary) int16 pairs."""
        x = np.asarray(samples, np.int64)
        re, im = self._complex_fft(x[0::2], x[1::2])
        half = self.half
        out_re, out_im = np.zeros(half + 1, np.int64), np.zeros(half + 1, np.int64)
        dc_re, dc_im = _fixdiv(re[:1], im[:1], 2)
        out_re[0], out_re[half] = _wrap16(dc_re + dc_im)[0], _wrap16(dc_re - dc_im)[0]
        k = np.arange(1, half // 2 + 1)
        pk = _fixdiv(re[k], im[k], 2)
        pnk = _fixdiv(re[half - k], _wrap16(-im[half - k]), 2)
        f1 = _wrap16(pk[0] + pnk[0]), _wrap16(pk[1] + pnk[1])
        f2 = _wrap16(pk[0] - pnk[0]), _wrap16(pk[1] - pnk[1])
        tw = _cmul(*f2, self.super_twiddles[0], self.super_twiddles[1])
        out_re[k], out_im[k] = _wrap16((f1[0] + tw[0]) >> 1), _wrap16((f1[1] + tw[1]) >> 1)
        out_re[half - k], out_im[half - k] = _wrap16((f1[0] - tw[0]) >> 1), _wrap16((tw[1] - f1[1]) >> 1)
        return np.stack([out_re, out_im], axis=1).reshape(-1)


# --- Signal ops: (graph, op, inputs) -> outputs, as signal/micro/kernels/*.cc compute them
def _window(graph, op, x, weights):
    rows = np.asarray(x, np.int64).reshape(-1, len(weights))
    out = np.clip((rows * weights.astype(np.int64)) >> op.options["shift"], -32768, INT16_MAX)
    return [out.reshape(np.shape(x))]


def _fft_auto_scale(graph, op, x):
    peak = int(np.max(np.abs(np.asarray(x, np.int64)))) if np.size(x) else 0
    bits = max(0, 16 - peak.bit_length() - 1) if peak else 0
    return [_wrap16(np.asarray(x, np.int64) << bits), np.int64(bits)]


def _rfft(graph, op, x):
    kind = TENSOR_TYPES.get(op.options.get("T"))
    if kind != "int16":
        raise EdgennError(f"{graph.source}: SignalRfft of {kind}: only int16 is supported")
    length = op.options["fft_length"]
    if "fft" not in op.state:
        op.state["fft"] = _FixedRfft(length)
    fft = op.state["fft"]
    rows = np.asarray(x, np.int64).reshape(-1, np.shape(x)[-1])
    padded = np.zeros((len(rows), length), np.int64)
    padded[:, :rows.shape[1]] = rows
    return [np.stack([fft(row) for row in padded]).reshape(op.output_shapes[0])]


def _energy(graph, op, spectrum):
    pairs = np.asarray(spectrum, np.int64).reshape(-1, 2)
    out = np.zeros(len(pairs), np.int64)
    span = slice(op.options["start_index"], op.options["end_index"])
    out[span] = _u32(pairs[span, 0] ** 2 + pairs[span, 1] ** 2)
    return [out]


def _filter_bank(graph, op, energy, weights, unweights, frequency_starts, weight_starts, widths):
    if "matrices" not in op.state:  # the channels' sparse taps as two dense [channels + 1, bins] matrices
        shape = (op.options["num_channels"] + 1, len(energy))
        dense = np.zeros((2, *shape), np.uint64)
        for i, (start, tap, width) in enumerate(zip(frequency_starts, weight_starts, widths)):
            taps = slice(int(tap), int(tap) + int(width))
            dense[:, i, int(start):int(start) + int(width)] = [weights[taps], unweights[taps]]
        op.state["matrices"] = dense
    weighted, unweighted = op.state["matrices"] @ np.asarray(energy, np.uint64)  # uint64 wraps as in C
    # each channel's rising slope plus the falling slope of the one below; channel 0 is scratch
    return [weighted[1:] + unweighted[:-1]]


def _rounded_sqrt(value):
    """Sqrt32 / Sqrt64: the integer square root rounded to nearest, within the result's width."""
    value = int(value)
    root = math.isqrt(value)
    limit = 0xFFFF if value >> 32 == 0 else 0xFFFFFFFF
    return root + 1 if value - root * root > root and root != limit else root


def _filter_bank_square_root(graph, op, x, scale_bits):
    return [np.array([_rounded_sqrt(v) >> int(scale_bits) for v in np.asarray(x, np.uint64)], np.int64)]


def _spectral_subtraction(graph, op, x):
    o = op.options
    x = np.asarray(x, np.int64)
    noise = op.state.setdefault("noise_estimate", np.zeros(o["num_channels"], np.int64))
    odd = np.arange(len(x)) % 2 == 1  # odd channels use the alternate smoothing
    smoothing = np.where(odd, o["alternate_smoothing"], o["smoothing"])
    keep = np.where(odd, o["alternate_one_minus_smoothing"], o["one_minus_smoothing"])
    signal = _u32(x << o["smoothing_bits"])
    noise[:] = _u32((signal * smoothing + noise * keep) >> o["spectral_subtraction_bits"])
    estimate = np.minimum(noise, signal)
    if o["clamping"]:
        noise[:] = estimate
    floor = _u32((x * o["min_signal_remaining"]) >> o["spectral_subtraction_bits"])
    return [np.maximum((signal - estimate) >> o["smoothing_bits"], floor), noise.copy()]


def _pcan(graph, op, x, noise, lut):
    lut = lut.astype(np.int64)
    noise = np.asarray(noise, np.int64)
    interval = _bit_length(np.maximum(noise, 1))
    frac = np.where(interval < 11, noise << np.maximum(11 - interval, 0), noise >> np.maximum(interval - 11, 0))
    frac = frac & 0x3FF
    base = np.clip(4 * interval - 6, 0, len(lut) - 3)
    result = (lut[base + 2] * frac) >> 5
    result = _wrap32(result + _wrap32(lut[base + 1] * 32))
    result = _wrap32(result * frac)
    result = ((result + (1 << 14)) >> 15) + lut[base]
    gain = _u32(_wrap16(np.where(noise <= 2, lut[np.minimum(noise, 2)], result)))
    snr = _u32((np.asarray(x, np.int64) * gain) >> op.options["snr_shift"])
    shrunk = np.where(snr < (2 << PCAN_SNR_BITS), _u32(snr * snr) >> (2 + 2 * PCAN_SNR_BITS - PCAN_OUTPUT_BITS),
                      _u32((snr >> (PCAN_SNR_BITS - PCAN_OUTPUT_BITS)) - (1 << PCAN_OUTPUT_BITS)))
    return [shrunk]


def _log32(x, out_scale):
    """Log32: out_scale * ln(x) in Q16, through a piecewise-linear log2 table."""
    integer = _bit_length(x) - 1
    frac = _wrap32(x - (np.int64(1) << integer))
    frac = np.where(integer < LOG_SCALE_BITS, frac << np.maximum(LOG_SCALE_BITS - integer, 0),
                    frac >> np.maximum(integer - LOG_SCALE_BITS, 0))
    segment = frac >> (LOG_SCALE_BITS - LOG_SEGMENT_BITS)
    c0, c1 = LOG_LUT[segment], LOG_LUT[segment + 1]
    relative = _wrap32((c1 - c0) * (frac - segment * (1 << (LOG_SCALE_BITS - LOG_SEGMENT_BITS)))) >> LOG_SCALE_BITS
    log2 = _u32((integer << LOG_SCALE_BITS) + _u32(frac + c0 + relative))
    half = 1 << (LOG_SCALE_BITS - 1)
    loge = _u32((LOG_COEFF * log2 + half) >> LOG_SCALE_BITS)
    return _u32(out_scale * loge + half) >> LOG_SCALE_BITS


def _filter_bank_log(graph, op, x):
    scaled = _u32(np.asarray(x, np.int64) << op.options["input_correction_bits"])
    logs = _log32(np.maximum(scaled, 2), op.options["output_scale"])
    return [np.where(scaled > 1, np.minimum(logs, INT16_MAX), 0)]


# --- the builtins such graphs use around the Signal ops
def _cast(graph, op, x):
    return [np.asarray(x).astype(op.output_dtypes[0])]


def _reshape(graph, op, x, *shape):
    return [np.asarray(x).reshape(op.output_shapes[0])]


def _strided_slice(graph, op, x, begin, end, strides):
    options = _builtin_options(op, tflite.StridedSliceOptions)
    if options.EllipsisMask() or options.NewAxisMask() or options.ShrinkAxisMask():
        raise EdgennError(f"{graph.source}: STRIDED_SLICE with ellipsis/new-axis/shrink masks is not supported")
    index = tuple(slice(None if options.BeginMask() >> d & 1 else int(b), None if options.EndMask() >> d & 1
                        else int(e), int(s)) for d, (b, e, s) in enumerate(zip(begin, end, strides)))
    return [np.asarray(x)[index]]


def _concatenation(graph, op, *parts):
    options = _builtin_options(op, tflite.ConcatenationOptions)
    _no_activation(graph, op, options)
    return [np.concatenate([np.asarray(p) for p in parts], axis=options.Axis())]


def _truncating_divide(a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):  # C integer division rounds toward zero
        quotient = np.abs(a) // np.abs(b)
        return np.where((np.asarray(a) < 0) != (np.asarray(b) < 0), -quotient, quotient)
    return np.divide(a, b)


def _elementwise(function, options_class=None):
    def run(graph, op, a, b):
        if options_class:
            _no_activation(graph, op, _builtin_options(op, options_class))
        dtype = op.output_dtypes[0]
        return [function(np.asarray(a, dtype), np.asarray(b, dtype)).astype(dtype)]
    return run


def _builtin_options(op, options_class):
    if "builtin_options" not in op.state:
        table = op.operator.BuiltinOptions()
        op.state["builtin_options"] = options_class()
        op.state["builtin_options"].Init(table.Bytes, table.Pos)
    return op.state["builtin_options"]


def _no_activation(graph, op, options):
    if options.FusedActivationFunction() != tflite.ActivationFunctionType.NONE:
        raise EdgennError(f"{graph.source}: {op.name} with a fused activation is not supported")


KERNELS = {
    "SignalWindow": _window, "SignalFftAutoScale": _fft_auto_scale, "SignalRfft": _rfft, "SignalEnergy": _energy,
    "SignalFilterBank": _filter_bank, "SignalFilterBankSquareRoot": _filter_bank_square_root,
    "SignalFilterBankSpectralSubtraction": _spectral_subtraction, "SignalPCAN": _pcan,
    "SignalFilterBankLog": _filter_bank_log,
    "CAST": _cast, "RESHAPE": _reshape, "STRIDED_SLICE": _strided_slice, "CONCATENATION": _concatenation,
    "ADD": _elementwise(np.add, tflite.AddOptions), "SUB": _elementwise(np.subtract, tflite.SubOptions),
    "MUL": _elementwise(np.multiply, tflite.MulOptions), "DIV": _elementwise(_truncating_divide, tflite.DivOptions),
    "MINIMUM": _elementwise(np.minimum), "MAXIMUM": _elementwise(np.maximum),
}


class _Op:
    def __init__(self, operator, name, graph):
        self.operator, self.name = operator, name
        self.inputs = [int(i) for i in operator.InputsAsNumpy()] if operator.InputsLength() else []
        self.outputs = [int(i) for i in operator.OutputsAsNumpy()]
        self.output_shapes = [graph.shapes[i] for i in self.outputs]
        self.output_dtypes = [graph.dtypes[i] for i in self.outputs]
        self.options = flexbuffers.Loads(bytes(operator.CustomOptionsAsNumpy())) \
            if operator.CustomOptionsLength() else {}
        self.state = {}  # per-op memory kept between runs: the FFT tables, the noise estimate


class SignalGraph:
    """One TFLM front-end graph: run(frame) -> features; reset() forgets the noise estimate."""

    def __init__(self, data, source="model"):
        self.source = source
        try:
            self._load(tflite.Model.GetRootAsModel(data, 0))
        except EdgennError:
            raise
        except Exception as exc:  # a damaged flatbuffer surfaces as any of struct/index/unicode errors
            raise EdgennError(f"{source}: damaged TFLite flatbuffer ({type(exc).__name__}); "
                              "re-download or re-convert the model") from None

    def _load(self, model):
        source = self.source
        if model.SubgraphsLength() != 1:
            raise EdgennError(f"{source}: {model.SubgraphsLength()} subgraphs; a front-end model has one")
        graph = model.Subgraphs(0)
        self.shapes, self.dtypes, self.constants = [], [], {}
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
            dtype = np.dtype(TENSOR_TYPES.get(tensor.Type(), "void"))
            self.shapes.append(shape)
            self.dtypes.append(dtype)
            buffer = model.Buffers(tensor.Buffer())
            if buffer is not None and buffer.DataLength():
                self.constants[i] = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype).reshape(shape)
        names = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            custom = code.CustomCode()
            names.append(custom.decode() if custom else
                         tflite.opcode2name(max(code.BuiltinCode(), code.DeprecatedBuiltinCode())))
        self.ops = [_Op(graph.Operators(o), names[graph.Operators(o).OpcodeIndex()], self)
                    for o in range(graph.OperatorsLength())]
        unsupported = sorted({op.name for op in self.ops} - set(KERNELS))
        if unsupported:
            raise EdgennError(f"{source}: edgenn's TFLM front-end runner lacks op(s) {', '.join(unsupported)}")
        if graph.InputsLength() != 1 or graph.OutputsLength() != 1:
            raise EdgennError(f"{source}: a front-end model takes one input and gives one output")
        self.input_index = int(graph.Inputs(0))
        self.output_index = int(graph.Outputs(0))

    def reset(self):
        for op in self.ops:
            op.state.pop("noise_estimate", None)

    def run(self, frame):
        values = dict(self.constants)
        i, o = self.input_index, self.output_index
        values[i] = np.asarray(frame, self.dtypes[i]).reshape(self.shapes[i])
        for op in self.ops:
            args = [values[i] if i >= 0 else None for i in op.inputs]
            for index, value in zip(op.outputs, KERNELS[op.name](self, op, *args)):
                values[index] = value
        return np.asarray(values[o]).astype(self.dtypes[o]).reshape(self.shapes[o])
