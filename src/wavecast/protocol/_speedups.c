/* Native speedups of the sans-I/O core; see wavecast/speedups.py.
 *
 * Each function has a pure-Python twin that the test suite also runs (with
 * WAVECAST_NO_SPEEDUPS=1), and does nothing its twin doesn't: the C code only skips the
 * interpreter on the common case and hands anything unusual back to Python. Like the rest
 * of wavecast.protocol, it does no I/O.
 *
 * apply_mask(data, mask) -> bytes
 *     XOR data with the 4-byte mask repeated (RFC 6455 section 5.3).
 * build_frame(opcode, payload, fin, rsv1, mask) -> bytes
 *     A whole frame in one allocation: header, then the (masked) payload.
 * Payload(length)
 *     A large frame's payload assembled as its bytes arrive: write(data, start, stop, mask)
 *     copies data[start:stop] (unmasked) after what was written, and take() returns the
 *     bytes object written into, without the copy that joining the pieces would make.
 * parse_frames(data, pos, masked, max_frame, max_message, events) -> int
 *     Parse the complete, final, unfragmented text and binary frames at data[pos:], append
 *     their messages (str or bytes) to events, and return the index of the first byte it
 *     left: an incomplete frame, a control frame, a fragment, or anything invalid, which
 *     the Python parser then handles and reports.
 * simple_head(data, max_count, max_line) -> (target, [name, value, ...], end) | None
 *     Split the simple request head at the start of data, as http._simple_head_python does;
 *     None for any other head, which llhttp then parses.
 */

#define PY_SSIZE_T_CLEAN
#include "../_module.h"
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* --- masking ----------------------------------------------------------------------------- */

static void
mask_into(unsigned char *out, const unsigned char *in, Py_ssize_t length, const unsigned char *m)
{
    /* A 64-bit word holds the mask twice: XOR whole words, then the tail byte by byte. */
    uint64_t mask64;
    unsigned char pattern[8] = {m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]};
    memcpy(&mask64, pattern, 8);
    Py_ssize_t i = 0;
    for (; i + 32 <= length; i += 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, in + i, 8);
        memcpy(&w1, in + i + 8, 8);
        memcpy(&w2, in + i + 16, 8);
        memcpy(&w3, in + i + 24, 8);
        w0 ^= mask64;
        w1 ^= mask64;
        w2 ^= mask64;
        w3 ^= mask64;
        memcpy(out + i, &w0, 8);
        memcpy(out + i + 8, &w1, 8);
        memcpy(out + i + 16, &w2, 8);
        memcpy(out + i + 24, &w3, 8);
    }
    for (; i + 8 <= length; i += 8) {
        uint64_t word;
        memcpy(&word, in + i, 8);
        word ^= mask64;
        memcpy(out + i, &word, 8);
    }
    for (; i < length; i++) {
        out[i] = in[i] ^ m[i & 3];
    }
}

static PyObject *
apply_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    WAVECAST_EXPECT_ARGS("apply_mask", 2);
    Py_buffer data, mask;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL;
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    if (data.len > 65536) {
        Py_BEGIN_ALLOW_THREADS
        mask_into((unsigned char *)PyBytes_AS_STRING(result), data.buf, data.len, mask.buf);
        Py_END_ALLOW_THREADS
    }
    else {
        mask_into((unsigned char *)PyBytes_AS_STRING(result), data.buf, data.len, mask.buf);
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

/* --- assembling a large payload ------------------------------------------------------------ */

/* The bytes object is written into only while this object alone holds it: take() hands it
 * out, whole, and forgets it. */
typedef struct {
    PyObject_HEAD
    PyObject *payload;
    Py_ssize_t offset;
} PayloadObject;

static int
payload_init(PayloadObject *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t length;
    if (kwds != NULL && PyDict_GET_SIZE(kwds) != 0) {
        PyErr_SetString(PyExc_TypeError, "Payload() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "n:Payload", &length)) {
        return -1;
    }
    if (length < 0) {
        PyErr_SetString(PyExc_ValueError, "length must not be negative");
        return -1;
    }
    Py_XSETREF(self->payload, PyBytes_FromStringAndSize(NULL, length));
    self->offset = 0;
    return self->payload == NULL ? -1 : 0;
}

static void
payload_dealloc(PayloadObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->payload);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyObject *
payload_write(PayloadObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    WAVECAST_EXPECT_ARGS("write", 4);
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was taken");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t stop = PyLong_AsSsize_t(args[2]);
    if (stop == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer data, mask = {0};
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (args[3] != Py_None) {
        if (PyObject_GetBuffer(args[3], &mask, PyBUF_SIMPLE) < 0) {
            goto done;
        }
        if (mask.len != 4) {
            PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
            goto done;
        }
    }
    if (start < 0 || stop < start || stop > data.len) {
        PyErr_SetString(PyExc_ValueError, "start and stop must be within data");
        goto done;
    }
    Py_ssize_t length = stop - start;
    if (length > PyBytes_GET_SIZE(self->payload) - self->offset) {
        PyErr_SetString(PyExc_ValueError, "more bytes than the payload has room for");
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(self->payload) + self->offset;
    const unsigned char *in = (const unsigned char *)data.buf + start;
    if (mask.buf != NULL) {
        mask_into(out, in, length, mask.buf);
    }
    else {
        memcpy(out, in, length);
    }
    self->offset += length;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data);
    if (mask.buf != NULL) {
        PyBuffer_Release(&mask);
    }
    return result;
}

static PyObject *
payload_take(PayloadObject *self, PyObject *unused)
{
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was taken");
        return NULL;
    }
    if (self->offset != PyBytes_GET_SIZE(self->payload)) {
        PyErr_SetString(PyExc_ValueError, "the payload isn't complete");
        return NULL;
    }
    PyObject *payload = self->payload;
    self->payload = NULL;
    return payload;
}

static PyMethodDef payload_methods[] = {
    {"write", (PyCFunction)(void (*)(void))payload_write, METH_FASTCALL,
     "Copy data[start:stop], XORed with mask unless it is None, after what was written."},
    {"take", (PyCFunction)payload_take, METH_NOARGS, "Return the complete payload, once."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot payload_slots[] = {
    {Py_tp_doc, "A large frame's payload, assembled in place as its bytes arrive."},
    {Py_tp_init, payload_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, payload_dealloc},
    {Py_tp_methods, payload_methods},
    {0, NULL},
};

static PyType_Spec payload_spec = {
    .name = "wavecast.protocol._speedups.Payload",
    .basicsize = sizeof(PayloadObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = payload_slots,
};

/* --- frames ------------------------------------------------------------------------------ */

static PyObject *
build_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    WAVECAST_EXPECT_ARGS("build_frame", 5);
    long opcode = PyLong_AsLong(args[0]);
    if (opcode == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int fin = PyObject_IsTrue(args[2]);
    int rsv1 = PyObject_IsTrue(args[3]);
    if (fin < 0 || rsv1 < 0) {
        return NULL;
    }
    Py_buffer payload, mask = {0};
    int masked = args[4] != Py_None;
    if (PyObject_GetBuffer(args[1], &payload, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (masked) {
        if (PyObject_GetBuffer(args[4], &mask, PyBUF_SIMPLE) < 0) {
            PyBuffer_Release(&payload);
            return NULL;
        }
        if (mask.len != 4) {
            PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
            goto done;
        }
    }
    Py_ssize_t length = payload.len;
    unsigned char header[14];
    Py_ssize_t header_len;
    header[0] = (unsigned char)((opcode & 0x0F) | (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0));
    unsigned char mask_bit = masked ? 0x80 : 0;
    if (length < 126) {
        header[1] = (unsigned char)(mask_bit | length);
        header_len = 2;
    }
    else if (length < 65536) {
        header[1] = mask_bit | 126;
        header[2] = (unsigned char)(length >> 8);
        header[3] = (unsigned char)length;
        header_len = 4;
    }
    else {
        uint64_t n = (uint64_t)length;
        header[1] = mask_bit | 127;
        for (int k = 0; k < 8; k++) {
            header[2 + k] = (unsigned char)(n >> (56 - 8 * k));
        }
        header_len = 10;
    }
    if (masked) {
        memcpy(header + header_len, mask.buf, 4);
        header_len += 4;
    }
    result = PyBytes_FromStringAndSize(NULL, header_len + length);
    if (result == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    memcpy(out, header, header_len);
    if (masked) {
        mask_into(out + header_len, payload.buf, length, mask.buf);
    }
    else if (length) {
        memcpy(out + header_len, payload.buf, length);
    }
done:
    PyBuffer_Release(&payload);
    if (masked) {
        PyBuffer_Release(&mask);
    }
    return result;
}

static PyObject *
parse_frames(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    WAVECAST_EXPECT_ARGS("parse_frames", 6);
    PyObject *events = args[5];
    if (!PyList_Check(events)) {
        PyErr_SetString(PyExc_TypeError, "events must be a list");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    int masked = PyObject_IsTrue(args[2]);
    long long max_frame = PyLong_AsLongLong(args[3]);
    long long max_message = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred() || masked < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = view.buf;
    Py_ssize_t n = view.len;
    unsigned char stack[512];

    while (n - pos >= 2) {
        unsigned char b0 = data[pos], b1 = data[pos + 1];
        /* Only FIN, no RSV bits, text or binary: anything else is Python's to handle. */
        if ((b0 & 0xF0) != 0x80) {
            break;
        }
        unsigned opcode = b0 & 0x0F;
        if (opcode != 1 && opcode != 2) {
            break;
        }
        if (((b1 & 0x80) != 0) != (masked != 0)) {
            break;
        }
        uint64_t length = b1 & 0x7F;
        Py_ssize_t header_len = 2;
        if (length == 126) {
            if (n - pos < 4) {
                break;
            }
            length = ((uint64_t)data[pos + 2] << 8) | data[pos + 3];
            if (length < 126) {
                break;
            }
            header_len = 4;
        }
        else if (length == 127) {
            if (n - pos < 10) {
                break;
            }
            length = 0;
            for (int k = 0; k < 8; k++) {
                length = (length << 8) | data[pos + 2 + k];
            }
            if ((length >> 63) || length < 65536) {
                break;
            }
            header_len = 10;
        }
        if (masked) {
            header_len += 4;
        }
        if ((max_frame >= 0 && length > (uint64_t)max_frame) || (max_message >= 0 && length > (uint64_t)max_message)) {
            break;
        }
        if (n - pos < header_len || (uint64_t)(n - pos - header_len) < length) {
            break;
        }
        const unsigned char *payload = data + pos + header_len;
        Py_ssize_t size = (Py_ssize_t)length;
        PyObject *message;
        if (opcode == 2) {
            message = PyBytes_FromStringAndSize(NULL, size);
            if (message == NULL) {
                goto error;
            }
            if (masked) {
                mask_into((unsigned char *)PyBytes_AS_STRING(message), payload, size, payload - 4);
            }
            else {
                memcpy(PyBytes_AS_STRING(message), payload, size);
            }
        }
        else {
            const char *text = (const char *)payload;
            unsigned char *heap = NULL;
            if (masked) {
                unsigned char *buffer = stack;
                if (size > (Py_ssize_t)sizeof(stack)) {
                    buffer = heap = PyMem_Malloc(size);
                    if (heap == NULL) {
                        PyErr_NoMemory();
                        goto error;
                    }
                }
                mask_into(buffer, payload, size, payload - 4);
                text = (const char *)buffer;
            }
            message = PyUnicode_DecodeUTF8(text, size, NULL);
            PyMem_Free(heap);
            if (message == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    goto error;
                }
                /* Invalid UTF-8: the Python parser fails the connection with 1007. */
                PyErr_Clear();
                break;
            }
        }
        int failed = PyList_Append(events, message);
        Py_DECREF(message);
        if (failed) {
            goto error;
        }
        pos += header_len + size;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
error:
    PyBuffer_Release(&view);
    return NULL;
}

/* --- simple request heads ----------------------------------------------------------------- */

/* RFC 9110 tchar, and the characters http._SIMPLE_TARGET allows in a request target. */
static unsigned char is_tchar[256];
static unsigned char is_target_char[256];

static void
init_tables(void)
{
    const char *tchar = "!#$%&'*+-.^_`|~";
    const char *target = "-._~!$&'()*+,;=:@/?%";
    for (int c = 0; c < 256; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        is_tchar[c] = alnum || (c != 0 && strchr(tchar, c) != NULL);
        is_target_char[c] = alnum || (c != 0 && strchr(target, c) != NULL);
    }
}

/* Whether word (lowercase) occurs in s[0:n], ignoring ASCII case. */
static int
contains_lower(const unsigned char *s, Py_ssize_t n, const char *word)
{
    Py_ssize_t w = (Py_ssize_t)strlen(word);
    for (Py_ssize_t i = 0; i + w <= n; i++) {
        Py_ssize_t j = 0;
        while (j < w) {
            unsigned char c = s[i + j];
            if (c >= 'A' && c <= 'Z') {
                c += 'a' - 'A';
            }
            if (c != (unsigned char)word[j]) {
                break;
            }
            j++;
        }
        if (j == w) {
            return 1;
        }
    }
    return 0;
}

/* An interned str of ASCII bytes. */
static PyObject *
interned(const unsigned char *s, Py_ssize_t n)
{
    PyObject *text = PyUnicode_DecodeASCII((const char *)s, n, NULL);
    if (text != NULL) {
        PyUnicode_InternInPlace(&text);
    }
    return text;
}

static PyObject *
simple_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "simple_head(data: bytes, max_count: int, max_line: int)");
        return NULL;
    }
    Py_ssize_t max_count = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_line = PyLong_AsSsize_t(args[2]);
    if ((max_count == -1 || max_line == -1) && PyErr_Occurred()) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);

    /* The head ends at the first empty line; it starts with "GET /". */
    Py_ssize_t end = -1;
    for (Py_ssize_t i = 0; i + 4 <= size; i++) {
        if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') {
            end = i;
            break;
        }
    }
    if (end < 0 || size < 5 || memcmp(data, "GET /", 5) != 0) {
        Py_RETURN_NONE;
    }
    if (max_line >= 0 && end + 4 > max_line) {
        Py_RETURN_NONE;
    }
    if (contains_lower(data, end, "close") || contains_lower(data, end, "content-length") ||
        contains_lower(data, end, "transfer-encoding") || contains_lower(data, end, "proxy-connection")) {
        Py_RETURN_NONE;
    }
    /* Printable ASCII between the CRLFs, and the number of header lines. */
    Py_ssize_t lines = 1;
    for (Py_ssize_t i = 0; i < end; i++) {
        unsigned char c = data[i];
        if (c == '\r' && i + 1 < end && data[i + 1] == '\n') {
            lines++;
            i++;
            continue;
        }
        if (c < 0x20 || c > 0x7e) {
            Py_RETURN_NONE;
        }
    }
    if (max_count >= 0 && lines - 1 > max_count) {
        Py_RETURN_NONE;
    }
    /* The request line: "GET " target " HTTP/1.1". */
    Py_ssize_t line_end = 0;
    while (line_end < end && data[line_end] != '\r') {
        line_end++;
    }
    if (line_end < 14 || memcmp(data + line_end - 9, " HTTP/1.1", 9) != 0) {
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 5; i < line_end - 9; i++) {
        if (!is_target_char[data[i]]) {
            Py_RETURN_NONE;
        }
    }
    PyObject *items = PyList_New(0);
    if (items == NULL) {
        return NULL;
    }
    Py_ssize_t pos = line_end + 2;
    while (pos < end + 2 && line_end < end) {
        /* One header line: data[pos:next], where next is its CR (or the head's end). */
        Py_ssize_t next = pos;
        while (next < end && data[next] != '\r') {
            next++;
        }
        Py_ssize_t colon = pos;
        while (colon < next && data[colon] != ':') {
            colon++;
        }
        if (colon == next || colon == pos) {
            goto none;
        }
        for (Py_ssize_t i = pos; i < colon; i++) {
            if (!is_tchar[data[i]]) {
                goto none;
            }
        }
        Py_ssize_t value = colon + 1;
        while (value < next && data[value] == ' ') {
            value++;
        }
        if (next > value && data[next - 1] == ' ') {
            goto none;
        }
        PyObject *name = interned(data + pos, colon - pos);
        if (name == NULL) {
            goto error;
        }
        Py_ssize_t length = next - value;
        int is_key = colon - pos == 17 && memcmp(data + pos, "Sec-WebSocket-Key", 17) == 0;
        PyObject *text = length > 256 || is_key ? PyUnicode_DecodeASCII((const char *)data + value, length, NULL)
                                                : interned(data + value, length);
        if (text == NULL) {
            Py_DECREF(name);
            goto error;
        }
        int failed = PyList_Append(items, name) || PyList_Append(items, text);
        Py_DECREF(name);
        Py_DECREF(text);
        if (failed) {
            goto error;
        }
        pos = next + 2;
    }
    PyObject *target = PyUnicode_DecodeASCII((const char *)data + 4, line_end - 13, NULL);
    if (target == NULL) {
        goto error;
    }
    PyObject *result = Py_BuildValue("(NNn)", target, items, end + 4);
    return result;
none:
    Py_DECREF(items);
    Py_RETURN_NONE;
error:
    Py_DECREF(items);
    return NULL;
}

/* --- module ------------------------------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, "XOR data with a 4-byte WebSocket mask."},
    {"build_frame", (PyCFunction)(void (*)(void))build_frame, METH_FASTCALL, "Serialize a whole frame."},
    {"parse_frames", (PyCFunction)(void (*)(void))parse_frames, METH_FASTCALL,
     "Parse complete unfragmented data frames; return where parsing stopped."},
    {"simple_head", (PyCFunction)(void (*)(void))simple_head, METH_FASTCALL,
     "Split a simple request head: (target, headers, end), or None."},
    {NULL, NULL, 0, NULL},
};

WAVECAST_MODULE("wavecast.protocol._speedups", "Native speedups of the sans-I/O core.", speedups_methods);

PyMODINIT_FUNC
PyInit__speedups(void)
{
    init_tables();
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    PyObject *payload_type = PyType_FromSpec(&payload_spec);
    if (payload_type == NULL || PyModule_AddObject(module, "Payload", payload_type) < 0) {
        Py_XDECREF(payload_type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
