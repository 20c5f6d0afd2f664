/* Native fan-out of the asyncio layer; see wavecast/speedups.py.
 *
 * Each function has a pure-Python twin that the test suite also runs (with
 * WAVECAST_NO_SPEEDUPS=1), and does nothing its twin doesn't: the C code only skips the
 * interpreter on the common case and hands anything unusual back to Python.
 *
 * broadcast(connections, frame, open_state, batcher) -> (sent, skipped, slow, flush)
 *     Cork a prepared frame on every open server connection that takes prepared frames;
 *     slow lists the connections that frame it themselves (clients, compression), flush
 *     those whose corked bytes passed their write limit.
 * flush(connections) -> None
 *     Write what each connection corked this turn of the loop straight to its socket, with
 *     one sendmsg (scatter/gather) for all its frames, when nothing waits in its transport's
 *     buffer; the transport buffers whatever the socket doesn't take.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Interned attribute and method names, set up once at import. */
static PyObject *s_protocol, *s_state, *s_writing_paused, *s_out_fragmented, *s_prepared_ok, *s_out, *s_dirty,
    *s_unflushed, *s_write_limit, *s_pending, *s_add, *s_flush, *s_fd, *s_transport, *s_is_closing,
    *s_get_write_buffer_size, *s_write;
static PyObject *zero;

/* --- fan-out ------------------------------------------------------------------------------ */

/* Return 1 if obj.name is true, 0 if false, -1 on error. */
static int
attr_true(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int result = value == Py_True ? 1 : value == Py_False || value == Py_None ? 0 : PyObject_IsTrue(value);
    Py_DECREF(value);
    return result;
}

static PyObject *
broadcast(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "broadcast() takes exactly 4 arguments");
        return NULL;
    }
    PyObject *frame = args[1], *open_state = args[2], *batcher = args[3];
    if (!PyBytes_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "frame must be bytes");
        return NULL;
    }
    Py_ssize_t frame_len = PyBytes_GET_SIZE(frame);
    PyObject *iterator = PyObject_GetIter(args[0]);
    if (iterator == NULL) {
        return NULL;
    }
    PyObject *pending = PyObject_GetAttr(batcher, s_pending);
    PyObject *slow = PyList_New(0), *flush_now = PyList_New(0);
    PyObject *conn = NULL, *protocol = NULL, *value = NULL;
    Py_ssize_t sent = 0, skipped = 0;
    if (pending == NULL || slow == NULL || flush_now == NULL) {
        goto error;
    }
    while ((conn = PyIter_Next(iterator)) != NULL) {
        protocol = PyObject_GetAttr(conn, s_protocol);
        if (protocol == NULL) {
            goto error;
        }
        /* The checks of broadcast() in Python, in the same order. */
        value = PyObject_GetAttr(protocol, s_state);
        if (value == NULL) {
            goto error;
        }
        int open = value == open_state;
        Py_CLEAR(value);
        int ok = open;
        if (ok) {
            int paused = attr_true(conn, s_writing_paused);
            int fragmented = paused ? 0 : attr_true(protocol, s_out_fragmented);
            if (paused < 0 || fragmented < 0) {
                goto error;
            }
            ok = !paused && !fragmented;
        }
        if (!ok) {
            skipped++;
            Py_CLEAR(protocol);
            Py_CLEAR(conn);
            continue;
        }
        sent++;
        int prepared = attr_true(conn, s_prepared_ok);
        if (prepared < 0) {
            goto error;
        }
        if (!prepared) {
            /* A client, or a connection with compression: it frames the message itself. */
            if (PyList_Append(slow, conn) < 0) {
                goto error;
            }
            Py_CLEAR(protocol);
            Py_CLEAR(conn);
            continue;
        }
        value = PyObject_GetAttr(protocol, s_out);
        if (value == NULL || PyList_Append(value, frame) < 0) {
            goto error;
        }
        Py_CLEAR(value);
        int dirty = attr_true(conn, s_dirty);
        if (dirty < 0) {
            goto error;
        }
        if (!dirty) {
            if (PyObject_SetAttr(conn, s_dirty, Py_True) < 0) {
                goto error;
            }
            if (PyList_GET_SIZE(pending) == 0) {
                /* The first connection of this turn: the batcher schedules its flush. */
                value = PyObject_CallMethodOneArg(batcher, s_add, conn);
                if (value == NULL) {
                    goto error;
                }
                Py_CLEAR(value);
            }
            else if (PyList_Append(pending, conn) < 0) {
                goto error;
            }
        }
        value = PyObject_GetAttr(conn, s_unflushed);
        if (value == NULL) {
            goto error;
        }
        Py_ssize_t unflushed = PyLong_AsSsize_t(value) + frame_len;
        Py_CLEAR(value);
        if (unflushed < 0 && PyErr_Occurred()) {
            goto error;
        }
        value = PyLong_FromSsize_t(unflushed);
        if (value == NULL || PyObject_SetAttr(conn, s_unflushed, value) < 0) {
            goto error;
        }
        Py_CLEAR(value);
        value = PyObject_GetAttr(conn, s_write_limit);
        if (value == NULL) {
            goto error;
        }
        Py_ssize_t limit = PyLong_AsSsize_t(value);
        Py_CLEAR(value);
        if (limit == -1 && PyErr_Occurred()) {
            goto error;
        }
        if (unflushed > limit && PyList_Append(flush_now, conn) < 0) {
            goto error;
        }
        Py_CLEAR(protocol);
        Py_CLEAR(conn);
    }
    if (PyErr_Occurred()) {
        goto error;
    }
    Py_DECREF(iterator);
    Py_DECREF(pending);
    return Py_BuildValue("nnNN", sent, skipped, slow, flush_now);
error:
    Py_XDECREF(value);
    Py_XDECREF(protocol);
    Py_XDECREF(conn);
    Py_XDECREF(iterator);
    Py_XDECREF(pending);
    Py_XDECREF(slow);
    Py_XDECREF(flush_now);
    return NULL;
}

/* Hand data[index:] (from offset bytes into data[index]) to transport.write(). */
static int
write_rest(PyObject *transport, PyObject *data, Py_ssize_t index, Py_ssize_t offset)
{
    Py_ssize_t count = PyList_GET_SIZE(data), total = 0;
    for (Py_ssize_t k = index; k < count; k++) {
        total += PyBytes_GET_SIZE(PyList_GET_ITEM(data, k));
    }
    total -= offset;
    PyObject *rest = PyBytes_FromStringAndSize(NULL, total);
    if (rest == NULL) {
        return -1;
    }
    char *out = PyBytes_AS_STRING(rest);
    for (Py_ssize_t k = index; k < count; k++) {
        PyObject *item = PyList_GET_ITEM(data, k);
        Py_ssize_t skip = k == index ? offset : 0;
        Py_ssize_t size = PyBytes_GET_SIZE(item) - skip;
        memcpy(out, PyBytes_AS_STRING(item) + skip, size);
        out += size;
    }
    PyObject *result = PyObject_CallMethodOneArg(transport, s_write, rest);
    Py_DECREF(rest);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* Send the list of bytes ``data`` on fd; the transport gets what the socket doesn't take. */
static int
send_all(int fd, PyObject *transport, PyObject *data)
{
    Py_ssize_t count = PyList_GET_SIZE(data), index = 0, offset = 0;
    struct iovec iov[64];
    while (index < count) {
        int used = 0;
        for (Py_ssize_t k = index; k < count && used < 64; k++, used++) {
            PyObject *item = PyList_GET_ITEM(data, k);
            Py_ssize_t skip = k == index ? offset : 0;
            iov[used].iov_base = PyBytes_AS_STRING(item) + skip;
            iov[used].iov_len = (size_t)(PyBytes_GET_SIZE(item) - skip);
        }
        struct msghdr msg = {0};
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)used;
        ssize_t written = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* Would block, or an error: the transport buffers the rest, or meets the same
               error on its own write and reports it through connection_lost. */
            return write_rest(transport, data, index, offset);
        }
        /* Advance past what was written. */
        while (written > 0 && index < count) {
            Py_ssize_t left = PyBytes_GET_SIZE(PyList_GET_ITEM(data, index)) - offset;
            if (written >= left) {
                written -= left;
                index++;
                offset = 0;
            }
            else {
                offset += written;
                written = 0;
            }
        }
        if (index < count && used == 64 && offset == 0) {
            continue; /* the next batch of iovecs */
        }
        if (index < count) {
            /* A short write: the socket's buffer is full. */
            return write_rest(transport, data, index, offset);
        }
    }
    return 0;
}

static int
flush_one(PyObject *conn)
{
    int result = -1;
    PyObject *protocol = NULL, *data = NULL, *fd_obj = NULL, *transport = NULL, *value = NULL, *fresh = NULL;
    protocol = PyObject_GetAttr(conn, s_protocol);
    if (protocol == NULL) {
        goto done;
    }
    data = PyObject_GetAttr(protocol, s_out);
    fd_obj = PyObject_GetAttr(conn, s_fd);
    transport = PyObject_GetAttr(conn, s_transport);
    if (data == NULL || fd_obj == NULL || transport == NULL) {
        goto done;
    }
    long fd = PyLong_AsLong(fd_obj);
    if (fd == -1 && PyErr_Occurred()) {
        goto done;
    }
    int direct = PyList_CheckExact(data) && fd >= 0 && fd <= INT_MAX;
    for (Py_ssize_t k = 0; direct && k < PyList_GET_SIZE(data); k++) {
        PyObject *item = PyList_GET_ITEM(data, k);
        /* b"" asks for a half-close: Python's flush handles it. */
        direct = PyBytes_CheckExact(item) && PyBytes_GET_SIZE(item) > 0;
    }
    if (direct) {
        int closing = 0;
        value = PyObject_CallMethodNoArgs(transport, s_is_closing);
        if (value == NULL || (closing = PyObject_IsTrue(value)) < 0) {
            goto done;
        }
        Py_CLEAR(value);
        if (closing) {
            direct = 0;
        }
        else {
            value = PyObject_CallMethodNoArgs(transport, s_get_write_buffer_size);
            if (value == NULL) {
                goto done;
            }
            Py_ssize_t buffered = PyLong_AsSsize_t(value);
            Py_CLEAR(value);
            if (buffered == -1 && PyErr_Occurred()) {
                goto done;
            }
            /* Bytes waiting in the transport go first: writing past them would reorder. */
            direct = buffered == 0;
        }
    }
    if (!direct) {
        value = PyObject_CallMethodNoArgs(conn, s_flush);
        if (value == NULL) {
            goto done;
        }
        result = 0;
        goto done;
    }
    fresh = PyList_New(0);
    if (fresh == NULL || PyObject_SetAttr(protocol, s_out, fresh) < 0 || PyObject_SetAttr(conn, s_dirty, Py_False) < 0 ||
        PyObject_SetAttr(conn, s_unflushed, zero) < 0) {
        goto done;
    }
    if (PyList_GET_SIZE(data) == 0) {
        result = 0;
        goto done;
    }
    result = send_all((int)fd, transport, data);
done:
    Py_XDECREF(protocol);
    Py_XDECREF(data);
    Py_XDECREF(fd_obj);
    Py_XDECREF(transport);
    Py_XDECREF(value);
    Py_XDECREF(fresh);
    return result;
}

static PyObject *
flush(PyObject *self, PyObject *connections)
{
    PyObject *iterator = PyObject_GetIter(connections);
    if (iterator == NULL) {
        return NULL;
    }
    PyObject *conn;
    while ((conn = PyIter_Next(iterator)) != NULL) {
        int failed = flush_one(conn);
        Py_DECREF(conn);
        if (failed) {
            Py_DECREF(iterator);
            return NULL;
        }
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* --- module ------------------------------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"broadcast", (PyCFunction)(void (*)(void))broadcast, METH_FASTCALL, "Cork a prepared frame on many connections."},
    {"flush", flush, METH_O, "Write what connections corked, with one sendmsg each."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "wavecast.asyncio._speedups", "Native fan-out of the asyncio layer.", -1,
    speedups_methods,
};

#define INTERN(var, text)                                                                                      \
    do {                                                                                                       \
        var = PyUnicode_InternFromString(text);                                                                \
        if (var == NULL) {                                                                                     \
            return NULL;                                                                                       \
        }                                                                                                      \
    } while (0)

PyMODINIT_FUNC
PyInit__speedups(void)
{
    INTERN(s_protocol, "protocol");
    INTERN(s_state, "state");
    INTERN(s_writing_paused, "_writing_paused");
    INTERN(s_out_fragmented, "_out_fragmented");
    INTERN(s_prepared_ok, "_prepared_ok");
    INTERN(s_out, "_out");
    INTERN(s_dirty, "_dirty");
    INTERN(s_unflushed, "_unflushed");
    INTERN(s_write_limit, "write_limit");
    INTERN(s_pending, "_pending");
    INTERN(s_add, "add");
    INTERN(s_flush, "_flush");
    INTERN(s_fd, "_fd");
    INTERN(s_transport, "transport");
    INTERN(s_is_closing, "is_closing");
    INTERN(s_get_write_buffer_size, "get_write_buffer_size");
    INTERN(s_write, "write");
    zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
