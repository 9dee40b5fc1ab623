"""Standard TFLite metadata for a bundle, so TFLite Support, MediaPipe and Android Studio read it too.

`with_metadata` builds a ModelMetadata flatbuffer (tflite-support's metadata_schema.fbs, identifier
"M001") from the manifest and adds it to the model as the buffer of a "TFLITE_METADATA" entry.
The model is not rebuilt: a new root Model table is put in front of the untouched original bytes and
points forward into them, reusing every subgraph, buffer, signature and metadata entry as it is;
only the buffers and metadata vectors are new. The original starts at a multiple of 16 bytes, so
its buffers keep their alignment; the old root table stays behind as a few unused bytes.
`original_model` finds the original again; `read_metadata` reads the metadata back with flatbuffers
alone.
"""

import flatbuffers
from flatbuffers import number_types as N
from flatbuffers.table import Table

from edgenn.errors import EdgennError

METADATA_NAME = "TFLITE_METADATA"
IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here exists since metadata schema 1.0.0
FILE_TYPES = ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
              "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY", "SCANN_INDEX_FILE")
COLOR_SPACES = ("UNKNOWN", "RGB", "GRAYSCALE")
# Model table slots (tensorflow/lite/schema/schema.fbs): 0 is the uint version, the rest are offsets.
MODEL_SLOTS, BUFFERS_SLOT, METADATA_SLOT = 10, 4, 6
FEATURE, IMAGE, BOUNDING_BOX = 1, 2, 3  # ContentProperties union
NORMALIZATION = 1  # ProcessUnitOptions union
AXIS_LABELS, VALUE_LABELS = 2, 3
SSD_OUTPUTS = ("location", "category", "score", "number of detections")  # names MediaPipe looks for
IMAGE_TASKS = ("classify", "detect")


def with_metadata(model, manifest, labels_file=None):
    """Model bytes (a bare flatbuffer) with standard metadata built from the manifest; `labels_file`
    names the packed labels file the metadata points at (None: no labels). Bytes that do not parse
    as a TFLite model come back as they are: the runtime names the damage when it loads them."""
    from edgenn.modelfile import io_tensors  # modelfile imports bundle, which imports this module

    try:
        inputs, outputs = io_tensors(model)
        postprocess = _postprocess_outputs(model)
        layout = _layout(model)
    except EdgennError:
        raise
    except Exception:  # a damaged flatbuffer surfaces as any of struct/index/unicode errors
        return model
    return _attach(model, build(manifest, inputs, outputs, postprocess, labels_file), *layout)


def build(manifest, inputs, outputs, postprocess=None, labels_file=None):
    """ModelMetadata flatbuffer bytes. inputs/outputs: modelfile.io_tensors dicts; postprocess: output
    positions of an SSD post-process op's (boxes, classes, scores, count), or None."""
    b = flatbuffers.Builder(1024)
    task = manifest["task"]
    specs = manifest["inputs"]
    input_md = [_input(b, tensor, specs[i] if i < len(specs) else {}, task) for i, tensor in enumerate(inputs)]
    labels_at, model_files = None, []
    scores = _scores_position(manifest, outputs)
    if labels_file and postprocess:
        labels_at = (postprocess[1], VALUE_LABELS)
    elif labels_file and task != "detect":
        labels_at = (scores, AXIS_LABELS)
    elif labels_file:  # one-output detectors: labels index the class part of an axis, not all of it
        model_files = [_file(b, labels_file, "Class names, one per line; a detection's class id is its line.", 0)]
    output_md = []
    for i, tensor in enumerate(outputs):
        files = [_file(b, labels_file, "Labels of the classes, one per line.", labels_at[1])] \
            if labels_at and labels_at[0] == i else []
        role = postprocess.index(i) if postprocess and i in postprocess else None
        output_md.append(_output(b, tensor, i, len(manifest.get("labels") or []), scores == i and task != "detect",
                                 role, files))
    name, version = b.CreateString(manifest["name"]), b.CreateString(manifest["version"])
    subgraph = _table(b, (0, "o", name), (1, "o", b.CreateString(f"{task} model")),
                      (2, "o", _vector(b, input_md)), (3, "o", _vector(b, output_md)))
    metadata = _table(
        b, (0, "o", name), (1, "o", b.CreateString(_description(manifest))), (2, "o", version),
        (3, "o", _vector(b, [subgraph])), (4, "o", b.CreateString("edgenn")),
        (5, "o", b.CreateString(manifest.get("license") or "not stated; the source model's licence applies")),
        (6, "o", _vector(b, model_files) if model_files else 0), (7, "o", b.CreateString(MIN_PARSER_VERSION)))
    b.Finish(metadata, IDENTIFIER)
    return bytes(b.Output())


def _attach(model, metadata, root, buffers, entries, existing):
    """Model bytes with `metadata` as the buffer of its TFLITE_METADATA entry (replaced if present);
    the other arguments are what _layout read from the model."""
    b = flatbuffers.Builder(len(metadata) + 1024)
    # Objects of the original model lie past the end of what `b` builds: offset -p reaches byte p.
    b.Prep(16, len(metadata))  # Buffer.data is force_align 16; the vector below then needs no padding
    data = b.CreateByteVector(metadata)
    buffer = _table(b, (0, "o", data))
    buffers, entries = [-p for p in buffers], [-p for p in entries]
    if existing:
        buffers[existing[0]] = buffer
    else:
        buffers.append(buffer)
        entries.append(_table(b, (0, "o", b.CreateString(METADATA_NAME)), (1, "I", len(buffers) - 1)))
    offsets = {slot: -position for slot, position in _targets(root).items()}
    offsets.update({BUFFERS_SLOT: _vector(b, buffers), METADATA_SLOT: _vector(b, entries)})
    fields = [(0, "I", _scalar(root, 0, N.Uint32Flags))] + [(slot, "o", o) for slot, o in offsets.items()]
    b.Finish(_table(b, *fields), b"TFL3")
    return bytes(b.Output()) + bytes(model)  # Finish padded the front to a multiple of 16 bytes


def original_model(data):
    """The model as it was before `with_metadata`: `data` from the original's first byte on, found as the
    16-aligned "TFL3" flatbuffer whose root points where the front's root does; `data` when none is."""
    try:
        root = _root(data)
        found = _targets(root), _scalar(root, 0, N.Uint32Flags)
    except Exception:  # not a flatbuffer this can read: nothing was put in front of it
        return data
    start = data.find(b"TFL3", 8)
    while 0 < start - 4 < min(found[0].values(), default=0):
        position = start - 4
        if position % 16 == 0 and _root_at(data, position) == found:
            return data[position:]
        start = data.find(b"TFL3", start + 1)
    return data


def _root_at(data, position):
    """(_targets, version) of a Model whose root offset sits at `position`, or None."""
    try:
        root = Table(data, position + flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, data, position))
        return _targets(root), _scalar(root, 0, N.Uint32Flags)
    except Exception:  # bytes that merely contain "TFL3"
        return None


def _targets(root):
    """{slot: absolute position} of a Model's offset fields that `with_metadata` reuses as they are."""
    return {slot: root.Pos + offset + _scalar(root, slot, N.UOffsetTFlags) for slot, offset in _slots(root).items()
            if slot not in (0, BUFFERS_SLOT, METADATA_SLOT)}


def _layout(model):
    """(root table, buffer positions, metadata entry positions, [TFLITE_METADATA buffer index])."""
    root = _root(model)
    if any(slot >= MODEL_SLOTS for slot in _slots(root)):
        raise EdgennError("cannot add TFLite metadata: the model has fields from a newer TFLite schema "
                          "than edgenn knows; upgrade edgenn")
    entries = _elements(root, METADATA_SLOT)
    existing = [_scalar(t, 1, N.Uint32Flags) for t in (Table(model, p) for p in entries)
                if _string(t, 0) == METADATA_NAME]
    return root, _elements(root, BUFFERS_SLOT), entries, existing


def read_metadata(data):
    """The standard metadata of a model as a dict, or None when it has none; reads only flatbuffers.

    {"name", "description", "version", "author", "license", "min_parser_version",
     "inputs": [{"name", "description", "color_space", "mean", "std"}],
     "outputs": [{"name", "description", "files": [{"name", "type", "description"}]}],
     "files": [...model-level files]}"""
    try:
        raw = _metadata_buffer(data)
        if raw is None:
            return None
        if raw[4:8] != IDENTIFIER:
            raise EdgennError(f"its {METADATA_NAME} buffer is not a ModelMetadata flatbuffer "
                              f"(identifier {bytes(raw[4:8])!r}, expected {IDENTIFIER!r})")
        meta = _root(raw)
        subgraphs = _tables(meta, 3)
        tensors = (lambda slot: _tables(subgraphs[0], slot)) if subgraphs else (lambda slot: [])
        return {
            "name": _string(meta, 0), "description": _string(meta, 1), "version": _string(meta, 2),
            "author": _string(meta, 4), "license": _string(meta, 5), "min_parser_version": _string(meta, 7),
            "inputs": [_read_input(t) for t in tensors(2)],
            "outputs": [{"name": _string(t, 0), "description": _string(t, 1), "files": _read_files(t, 6)}
                        for t in tensors(3)],
            "files": _read_files(meta, 6),
        }
    except EdgennError as exc:
        raise EdgennError(f"damaged TFLite metadata: {exc}") from None
    except Exception as exc:  # struct/index/unicode errors from a damaged buffer
        raise EdgennError(f"damaged TFLite metadata ({type(exc).__name__}); add it again with "
                          "`edgenn convert`, or ignore it: edgenn reads its own manifest") from None


def summary(metadata):
    """One line of the key facts: name, version, labels file and where, input normalisation."""
    text = repr(metadata["name"]) + "".join(f" {word} {metadata[key]}" for word, key in
                                         (("version", "version"), ("by", "author")) if metadata[key])
    files = [f"{f['name']} ({f['type']} on output '{o['name']}')" for o in metadata["outputs"] for f in o["files"]]
    files += [f"{f['name']} ({f['type']})" for f in metadata["files"]]
    text += f"; labels {', '.join(files)}" if files else "; no labels file"
    for tensor in metadata["inputs"]:
        if tensor["mean"] is not None:
            normalised = f"(x - {_short(tensor['mean'])}) / {_short(tensor['std'])}"
            text += f"; input '{tensor['name']}' {tensor['color_space']} {normalised}"
    return text


def _short(values):
    """'127.5' for one value (or all equal), '[123.7, 116.3, 103.5]' for one per channel."""
    shown = [f"{v:.6g}" for v in values]
    return shown[0] if len(set(shown)) == 1 else f"[{', '.join(shown)}]"


# --- writing -------------------------------------------------------------------------------------

def _input(b, tensor, spec, task):
    shape, dtype = tensor["shape"], tensor["dtype"]
    # [1, H, W] is a picture only when the converter said so: a sequence classifier's frame is [1, 1, F]
    image = task in IMAGE_TASKS and (spec.get("layout") in ("NHWC", "NHW") or len(shape) == 4 and shape[3] in (1, 3))
    if not image:
        return _tensor(b, tensor["name"], f"Input: {dtype} {shape}.", _content(b, FEATURE))
    height, width = shape[1], shape[2]
    channels = shape[3] if len(shape) == 4 else 1
    color = "grayscale" if channels == 1 else spec.get("color", "rgb")
    norm = spec.get("normalization") or ({"mean": 0.0, "std": 255.0} if dtype.startswith("float") else None)
    text = f"Picture {width}x{height}, {color.upper()}, resized to fit by '{spec.get('resize', 'stretch')}'"
    units, stats = [], None
    if norm:
        mean, std = _per_channel(norm.get("mean", 0.0), channels), _per_channel(norm.get("std", 1.0), channels)
        text += f"; values (pixel - {_short(mean)}) / {_short(std)}"
        options = _table(b, (0, "o", _floats(b, mean)), (1, "o", _floats(b, std)))
        units.append(_table(b, (0, "B", NORMALIZATION), (1, "o", options)))
        if dtype.startswith("float") and 0.0 not in std:
            stats = ([(0 - m) / s for m, s in zip(mean, std)], [(255 - m) / s for m, s in zip(mean, std)])
    if stats is None and dtype in ("uint8", "int8"):
        stats = ([0.0], [255.0]) if dtype == "uint8" else ([-128.0], [127.0])
        text += f"; raw {dtype} values" if not norm else f", then quantized to {dtype}"
    size = _table(b, (0, "I", width), (1, "I", height))
    space = {"rgb": 1, "grayscale": 2}.get(color, 0)  # the schema has no BGR
    properties = _table(b, (0, "b", space), (1, "o", size))
    return _tensor(b, tensor["name"], text + ".", _content(b, IMAGE, properties), units, stats)


def _output(b, tensor, position, classes, is_scores, role, files):
    shape, dtype = tensor["shape"], tensor["dtype"]
    if role is not None:
        texts = ("Boxes (ymin, xmin, ymax, xmax) as fractions of the picture.", "Class ids of the detections.",
                 "Scores of the detections.", "Number of detections.")
        if role == 0:
            # Default order is (left, top, right, bottom); index says where each sits in a box.
            index = _uints(b, [1, 0, 3, 2])
            properties = _table(b, (0, "o", index), (1, "b", 1), (2, "b", 0))  # BOUNDARIES, RATIO
            content = _content(b, BOUNDING_BOX, properties, value_range=2)
        else:
            content = _content(b, FEATURE, value_range=1 if role < 3 else None)
        return _tensor(b, SSD_OUTPUTS[role], texts[role], content, files=files)
    text = f"Scores of the {classes} classes." if is_scores and classes else f"Output {position}: {dtype} {shape}."
    quant = tensor.get("quantization") or {}
    stats = None
    if quant.get("scale") and dtype in ("uint8", "int8", "int16"):
        low, high = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767)}[dtype]
        stats = ([quant["scale"] * (low - quant["zero_point"])], [quant["scale"] * (high - quant["zero_point"])])
    return _tensor(b, tensor["name"], text, _content(b, FEATURE), stats=stats, files=files)


def _tensor(b, name, description, content, units=(), stats=None, files=()):
    stats_table = _table(b, (0, "o", _floats(b, stats[1])), (1, "o", _floats(b, stats[0]))) if stats else 0
    return _table(b, (0, "o", b.CreateString(name)), (1, "o", b.CreateString(description)), (3, "o", content),
                  (4, "o", _vector(b, units) if units else 0), (5, "o", stats_table),
                  (6, "o", _vector(b, files) if files else 0))


def _content(b, kind, properties=None, value_range=None):
    properties = properties or _table(b)
    bounds = _table(b, (0, "i", value_range), (1, "i", value_range)) if value_range else 0
    return _table(b, (0, "B", kind), (1, "o", properties), (2, "o", bounds))


def _file(b, name, description, kind):
    return _table(b, (0, "o", b.CreateString(name)), (1, "o", b.CreateString(description)), (2, "b", kind))


def _description(manifest):
    if isinstance(manifest.get("description"), str):
        return manifest["description"]
    labels = manifest.get("labels") or []
    mode = (manifest.get("quantization") or {}).get("mode", "unknown")
    return (f"{manifest['task']} model made by edgenn: {len(labels)} labels, {mode} quantization, target "
            f"{manifest.get('target', 'cpu')}. The packed edgenn.json manifest has the rest.")


def _scores_position(manifest, outputs):
    scores_name = (manifest.get("streaming") or {}).get("scores_output")
    names = [t["name"] for t in outputs]
    return names.index(scores_name) if scores_name in names else 0


def _postprocess_outputs(model):
    """Positions in the main subgraph's outputs of a TFLite_Detection_PostProcess op's four outputs, or None."""
    root = _root(model)
    custom_codes = [_string(code, 1) for code in _tables(root, 1)]
    subgraph = _tables(root, 2)[0]
    outputs = _numbers(subgraph, 2, N.Int32Flags)
    for op in _tables(subgraph, 3):
        produced = _numbers(op, 2, N.Int32Flags)
        if custom_codes[_scalar(op, 0, N.Uint32Flags)] == "TFLite_Detection_PostProcess" and \
                len(outputs) == len(produced) == 4 and set(produced) <= set(outputs):
            return [outputs.index(t) for t in produced]
    return None


def _per_channel(value, channels):
    """One value, or one per channel, of a manifest normalisation."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise EdgennError(f"manifest input normalization {value!r} is not a number or a list of numbers; "
                          "re-create the bundle with `edgenn convert`")
    return [float(v) for v in values] if len(values) == channels else [float(values[0])]


def _table(b, *fields):
    """A table from (slot, kind, value): kind "o" offset (0 or None: absent), "b"/"B" int8/uint8,
    "i"/"I" int32/uint32. Children must be built before."""
    add = {"o": b.PrependUOffsetTRelativeSlot, "b": b.PrependInt8Slot, "B": b.PrependUint8Slot,
           "i": b.PrependInt32Slot, "I": b.PrependUint32Slot}
    b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
    for slot, kind, value in fields:
        if value:
            add[kind](slot, value, 0)
    return b.EndObject()


def _vector(b, values, prepend=None):
    """A vector of 4-byte items: table offsets, or values written by `prepend` (b.PrependFloat32...)."""
    prepend = prepend or b.PrependUOffsetTRelative
    b.StartVector(4, len(values), 4)
    for value in reversed(values):
        prepend(value)
    return b.EndVector()


def _floats(b, values):
    return _vector(b, values, b.PrependFloat32)


def _uints(b, values):
    return _vector(b, values, b.PrependUint32)


# --- reading -------------------------------------------------------------------------------------

def _root(data):
    return Table(data, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, data, 0))


def _slots(table):
    """{slot: field offset in the table} of the fields present."""
    vtable = table.Pos - table.Get(N.SOffsetTFlags, table.Pos)
    size = table.Get(N.VOffsetTFlags, vtable)
    slots = {}
    for slot in range((size - 4) // 2):
        offset = table.Get(N.VOffsetTFlags, vtable + 4 + 2 * slot)
        if offset:
            slots[slot] = offset
    return slots


def _field(table, slot):
    return table.Offset(4 + 2 * slot)


def _scalar(table, slot, flags):
    offset = _field(table, slot)
    return table.Get(flags, table.Pos + offset) if offset else 0


def _string(table, slot):
    offset = _field(table, slot)
    return table.String(table.Pos + offset).decode("utf-8", "replace") if offset else None


def _elements(table, slot):
    """Positions of the tables in a vector of tables ([] when absent)."""
    offset = _field(table, slot)
    if not offset:
        return []
    start = table.Vector(offset)
    return [table.Indirect(start + 4 * i) for i in range(table.VectorLen(offset))]


def _tables(table, slot):
    return [Table(table.Bytes, pos) for pos in _elements(table, slot)]


def _sub(table, slot):
    offset = _field(table, slot)
    return Table(table.Bytes, table.Indirect(table.Pos + offset)) if offset else None


def _numbers(table, slot, flags):
    """A vector of 4-byte scalars ([] when absent)."""
    offset = _field(table, slot)
    if not offset:
        return []
    start = table.Vector(offset)
    return [table.Get(flags, start + 4 * i) for i in range(table.VectorLen(offset))]


def _read_files(table, slot):
    return [{"name": _string(f, 0), "description": _string(f, 1),
             "type": _enum(FILE_TYPES, _scalar(f, 2, N.Int8Flags))} for f in _tables(table, slot)]


def _enum(names, value):
    return names[value] if 0 <= value < len(names) else str(value)


def _read_input(tensor):
    found = {"name": _string(tensor, 0), "description": _string(tensor, 1), "color_space": None,
             "mean": None, "std": None}
    content = _sub(tensor, 3)
    if content is not None and _scalar(content, 0, N.Uint8Flags) == IMAGE:
        found["color_space"] = _enum(COLOR_SPACES, _scalar(_sub(content, 1), 0, N.Int8Flags))
    for unit in _tables(tensor, 4):
        if _scalar(unit, 0, N.Uint8Flags) == NORMALIZATION:
            options = _sub(unit, 1)
            found["mean"], found["std"] = _numbers(options, 0, N.Float32Flags), _numbers(options, 1, N.Float32Flags)
    return found


def _metadata_buffer(data):
    """Bytes of the buffer that the model's TFLITE_METADATA entry names, or None."""
    root = _root(data)
    for entry in _tables(root, METADATA_SLOT):
        if _string(entry, 0) == METADATA_NAME:
            buffer = Table(data, _elements(root, BUFFERS_SLOT)[_scalar(entry, 1, N.Uint32Flags)])
            offset = _field(buffer, 0)
            if not offset:
                return None
            start = buffer.Vector(offset)
            return memoryview(data)[start:start + buffer.VectorLen(offset)]
    return None
