/* Native fan-out of the asyncio layer; see wavecast/speedups.py.
 *
 * Each function has a pure-Python twin that the test suite also runs (with
 * WAVECAST_NO_SPEEDUPS=1), and does nothing its twin doesn't: the C code only skips the
 * interpreter on the common case and hands anything unusual back to Python.
 *
 * broadcast(connections, frame, open_state, batcher, exclude) -> (sent, skipped, slow, flush)
 *     Cork a prepared frame on every open server connection that takes prepared frames,
 *     but exclude (None, or the sender of a message to every other connection);
 *     slow lists the connections that frame it themselves (clients, compression), flush
 *     those whose corked frames, counted at this frame's size, passed their write limit.
 * flush(connections) -> None
 *     Write what each connection corked this turn of the loop straight to its socket, with
 *     one send for all its frames, when nothing waits in its transport's buffer; the
 *     transport buffers whatever the socket doesn't take. Frames are joined into one buffer,
 *     as the Python twin joins them, and the join is shared: the next connections that
 *     corked the very same frames (the subscribers of the same broadcasts) send it as it is.
 *
 * The corking of one connection is also offered to other extensions, as the capsule
 * _cork_api (see wavecast/_native.h): the real-time layer's channel fan-out uses it.
 */

#include "../_native.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Interned attribute and method names, set up once at import. */
static PyObject *s_protocol, *s_state, *s_writing_paused, *s_out_fragmented, *s_prepared_ok, *s_out, *s_dirty,
    *s_unflushed, *s_write_limit, *s_pending, *s_batcher, *s_add, *s_flush, *s_fd, *s_transport, *s_is_closing,
    *s_get_write_buffer_size, *s_write, *s_write_prepared;
static PyObject *zero;

/* --- fan-out ------------------------------------------------------------------------------ */

/* Return 1 if obj.name is true, 0 if false, -1 on error. */
static int
attr_true(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    int result = value == NULL     ? -1
                 : value == Py_True ? 1
                 : value == Py_False || value == Py_None ? 0
                                                         : PyObject_IsTrue(value);
    Py_XDECREF(value);
    return result;
}

/* The fields of each kind of object, in the order of their *_ indexes below. */
static Layout conn_layout = {.names = {&s_protocol, &s_writing_paused, &s_prepared_ok, &s_dirty, &s_write_limit}};
enum { C_PROTOCOL, C_WRITING_PAUSED, C_PREPARED_OK, C_DIRTY, C_WRITE_LIMIT };
static Layout proto_layout = {.names = {&s_state, &s_out_fragmented, &s_out}};
enum { P_STATE, P_OUT_FRAGMENTED, P_OUT };

typedef WavecastCork Cork;

/* What cork_one did with a connection. */
enum {
    CORKED = WAVECAST_CORKED,
    SKIPPED = WAVECAST_SKIPPED,
    DROPPED = WAVECAST_DROPPED,
    SLOW = WAVECAST_SLOW,
    FAILED = WAVECAST_FAILED
};

/* conn frames the message itself (a client, compression): with the message at hand, it is
   written as write_prepared writes it; without, the caller does that. */
static int
slow_one(Cork *cork, PyObject *conn)
{
    if (cork->message == NULL) {
        return SLOW;
    }
    PyObject *done = PyObject_CallMethodOneArg(conn, s_write_prepared, cork->message);
    Py_XDECREF(done);
    return done == NULL ? FAILED : CORKED;
}

/* OPEN, the state of a connection that frames may be corked on; set at import. */
static PyObject *open_state;

/* The pending list of batcher, a new reference or NULL with an exception; the first batcher
   met keeps its list at hand for the connections after this one. */
static PyObject *
pending_of(Cork *cork, PyObject *batcher)
{
    if (batcher == cork->batcher) {
        return Py_NewRef(cork->pending);
    }
    PyObject *pending = PyObject_GetAttr(batcher, s_pending);
    if (pending != NULL && !PyList_CheckExact(pending)) {
        PyErr_SetString(PyExc_TypeError, "a batcher's _pending must be a list");
        Py_CLEAR(pending);
    }
    if (pending != NULL && cork->batcher == NULL) {
        cork->batcher = Py_NewRef(batcher);
        cork->pending = Py_NewRef(pending);
    }
    return pending;
}

/* Register conn with its batcher (the loop's, or one that holds frames a little longer). */
static int
register_dirty(Cork *cork, PyObject *conn)
{
    PyObject *batcher = PyObject_GetAttr(conn, s_batcher);
    PyObject *pending = batcher == NULL ? NULL : pending_of(cork, batcher);
    int result = -1;
    if (pending != NULL && PyList_GET_SIZE(pending) > 0) {
        result = PyList_Append(pending, conn);
    }
    else if (pending != NULL) {
        /* The first connection of this turn: the batcher schedules its flush. */
        PyObject *added = PyObject_CallMethodOneArg(batcher, s_add, conn);
        result = added == NULL ? -1 : 0;
        Py_XDECREF(added);
    }
    Py_XDECREF(pending);
    Py_XDECREF(batcher);
    return result;
}

/* The checks and effects of the Python twin, through getattr: for any type. */
static int
cork_generic(Cork *cork, PyObject *conn)
{
    int result = FAILED;
    PyObject *protocol = NULL, *value = NULL;
    protocol = PyObject_GetAttr(conn, s_protocol);
    if (protocol == NULL) {
        goto done;
    }
    value = PyObject_GetAttr(protocol, s_state);
    if (value == NULL) {
        goto done;
    }
    int open = value == open_state;
    Py_CLEAR(value);
    /* Paused first, as the real-time layer's Transport.writable() answers before write(). */
    int paused = attr_true(conn, s_writing_paused);
    int fragmented = open && paused == 0 ? attr_true(protocol, s_out_fragmented) : 0;
    if (fragmented < 0 || paused < 0) {
        goto done;
    }
    if (paused) {
        result = SKIPPED;
        goto done;
    }
    if (!open || fragmented) {
        result = DROPPED;
        goto done;
    }
    int prepared = attr_true(conn, s_prepared_ok);
    if (prepared < 0) {
        goto done;
    }
    if (!prepared) {
        result = slow_one(cork, conn);
        goto done;
    }
    value = PyObject_GetAttr(protocol, s_out);
    if (value == NULL) {
        goto done;
    }
    if (value == Py_None) {
        /* Nothing waits to be written: the list starts here, as Protocol._queue starts it. */
        Py_SETREF(value, PyList_New(0));
        if (value == NULL || PyObject_SetAttr(protocol, s_out, value) < 0) {
            goto done;
        }
    }
    if (!PyList_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "protocol._out must be a list");
        goto done;
    }
    Py_ssize_t queued = PyList_GET_SIZE(value);
    if (PyList_Append(value, cork->frame) < 0) {
        goto done;
    }
    Py_CLEAR(value);
    if (queued == 0) {
        /* Frames already corked mean the connection is registered for this turn. */
        int dirty = attr_true(conn, s_dirty);
        if (dirty < 0) {
            goto done;
        }
        if (!dirty && (PyObject_SetAttr(conn, s_dirty, Py_True) < 0 || register_dirty(cork, conn) < 0)) {
            goto done;
        }
    }
    value = PyObject_GetAttr(conn, s_write_limit);
    if (value == NULL) {
        goto done;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(value);
    if (limit == -1 && PyErr_Occurred()) {
        goto done;
    }
    if ((queued + 1) * cork->frame_len > limit && PyList_Append(cork->flush_now, conn) < 0) {
        goto done;
    }
    result = CORKED;
done:
    Py_XDECREF(value);
    Py_XDECREF(protocol);
    return result;
}

/* The same through the slots, when conn and its protocol have known layouts. */
static int
cork_one(Cork *cork, PyObject *conn)
{
    if (!layout_for(&conn_layout, Py_TYPE(conn))) {
        return cork_generic(cork, conn);
    }
    PyObject *protocol = SLOT(conn, conn_layout, C_PROTOCOL);
    if (protocol == NULL || !layout_for(&proto_layout, Py_TYPE(protocol))) {
        return cork_generic(cork, conn);
    }
    PyObject *state = SLOT(protocol, proto_layout, P_STATE), *paused = SLOT(conn, conn_layout, C_WRITING_PAUSED);
    PyObject *fragmented = SLOT(protocol, proto_layout, P_OUT_FRAGMENTED);
    PyObject *prepared = SLOT(conn, conn_layout, C_PREPARED_OK), *out = SLOT(protocol, proto_layout, P_OUT);
    PyObject *dirty = SLOT(conn, conn_layout, C_DIRTY), *limit_obj = SLOT(conn, conn_layout, C_WRITE_LIMIT);
    /* Only the values the Python code gives these fields; anything else goes the long way. */
    if (state == NULL || (paused != Py_True && paused != Py_False) || fragmented == NULL ||
        !PyLong_CheckExact(fragmented) || (prepared != Py_True && prepared != Py_False) || out == NULL ||
        (out != Py_None && !PyList_CheckExact(out)) || (dirty != Py_True && dirty != Py_False) || limit_obj == NULL ||
        !PyLong_CheckExact(limit_obj)) {
        return cork_generic(cork, conn);
    }
    /* Paused first, as the real-time layer's Transport.writable() answers before write(). */
    if (paused == Py_True) {
        return SKIPPED;
    }
    if (state != open_state || fragmented != zero) {
        return DROPPED;
    }
    if (prepared == Py_False) {
        return slow_one(cork, conn);
    }
    Py_ssize_t limit = PyLong_AsSsize_t(limit_obj);
    if (limit == -1 && PyErr_Occurred()) {
        return FAILED;
    }
    if (out == Py_None) {
        /* Nothing waits to be written: the list starts here, as Protocol._queue starts it. */
        out = PyList_New(0);
        if (out == NULL) {
            return FAILED;
        }
        SLOT(protocol, proto_layout, P_OUT) = out;
        Py_DECREF(Py_None);
    }
    Py_ssize_t queued = PyList_GET_SIZE(out);
    if (PyList_Append(out, cork->frame) < 0) {
        return FAILED;
    }
    if (queued == 0 && dirty == Py_False) {
        Py_INCREF(Py_True);
        SLOT(conn, conn_layout, C_DIRTY) = Py_True;
        Py_DECREF(Py_False);
        if (register_dirty(cork, conn) < 0) {
            return FAILED;
        }
    }
    if ((queued + 1) * cork->frame_len > limit && PyList_Append(cork->flush_now, conn) < 0) {
        return FAILED;
    }
    return CORKED;
}

/* How many connections ahead the broadcast loop fetches each level of fields. */
#define AHEAD_CONN 12
#define AHEAD_PROTOCOL 6

static void
prefetch_ahead(PyObject **items, Py_ssize_t i, Py_ssize_t n)
{
    if (i + AHEAD_CONN < n) {
        prefetch(items[i + AHEAD_CONN]);
    }
    if (i + AHEAD_PROTOCOL < n) {
        prefetch(slot_or_null(items[i + AHEAD_PROTOCOL], &conn_layout, C_PROTOCOL));
    }
}

static PyObject *
broadcast(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    WAVECAST_EXPECT_ARGS("broadcast", 5);
    Cork cork = {.frame = args[1], .batcher = Py_NewRef(args[3])};
    PyObject *exclude = args[4];
    if (args[2] != open_state) {
        Py_DECREF(cork.batcher);
        PyErr_SetString(PyExc_ValueError, "open_state must be wavecast.protocol.state.OPEN");
        return NULL;
    }
    if (!PyBytes_Check(cork.frame)) {
        Py_DECREF(cork.batcher);
        PyErr_SetString(PyExc_TypeError, "frame must be bytes");
        return NULL;
    }
    cork.frame_len = PyBytes_GET_SIZE(cork.frame);
    /* A list or tuple is used in place; any other iterable is copied into a list once. */
    PyObject *sequence = PySequence_Fast(args[0], "connections must be iterable");
    if (sequence == NULL) {
        Py_DECREF(cork.batcher);
        return NULL;
    }
    PyObject *slow = PyList_New(0);
    cork.flush_now = PyList_New(0);
    cork.pending = PyObject_GetAttr(cork.batcher, s_pending);
    Py_ssize_t sent = 0, skipped = 0;
    if (slow == NULL || cork.flush_now == NULL || cork.pending == NULL) {
        goto error;
    }
    if (!PyList_CheckExact(cork.pending)) {
        PyErr_SetString(PyExc_TypeError, "the batcher's _pending must be a list");
        goto error;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    for (Py_ssize_t i = 0; i < n; i++) {
        prefetch_ahead(items, i, n);
        PyObject *conn = items[i];
        if (conn == exclude) {
            continue;
        }
        switch (cork_one(&cork, conn)) {
        case CORKED:
            sent++;
            break;
        case SKIPPED:
        case DROPPED:
            skipped++;
            break;
        case SLOW:
            /* A client, or a connection with compression: it frames the message itself. */
            sent++;
            if (PyList_Append(slow, conn) < 0) {
                goto error;
            }
            break;
        default:
            goto error;
        }
    }
    Py_DECREF(sequence);
    Py_DECREF(cork.pending);
    Py_DECREF(cork.batcher);
    return Py_BuildValue("nnNN", sent, skipped, slow, cork.flush_now);
error:
    Py_DECREF(sequence);
    Py_XDECREF(cork.pending);
    Py_XDECREF(cork.batcher);
    Py_XDECREF(slow);
    Py_XDECREF(cork.flush_now);
    return NULL;
}

/* --- the corking API, for other extensions -------------------------------------------------- */

static int
api_begin(Cork *cork, PyObject *message, PyObject *frame)
{
    if (!PyBytes_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "frame must be bytes");
        return -1;
    }
    *cork = (Cork){
        .message = message, .frame = frame, .frame_len = PyBytes_GET_SIZE(frame), .flush_now = PyList_New(0)};
    return cork->flush_now == NULL ? -1 : 0;
}

static void
api_release(Cork *cork)
{
    Py_CLEAR(cork->batcher);
    Py_CLEAR(cork->pending);
    Py_CLEAR(cork->flush_now);
}

static int
api_finish(Cork *cork)
{
    int result = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(cork->flush_now); k++) {
        /* As write_prepared does: the transport sees the data, and pauses if the peer is slow. */
        PyObject *done = PyObject_CallMethodNoArgs(PyList_GET_ITEM(cork->flush_now, k), s_flush);
        if (done == NULL) {
            result = -1;
            break;
        }
        Py_DECREF(done);
    }
    api_release(cork);
    return result;
}

static WavecastCorkAPI cork_api = {
    .begin = api_begin,
    .cork = cork_one,
    .finish = api_finish,
    .release = api_release,
};

/* transport.write(data), taking the reference to data, which may be NULL (an error). */
static int
transport_write(PyObject *transport, PyObject *data)
{
    if (data == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallMethodOneArg(transport, s_write, data);
    Py_DECREF(data);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
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
    return transport_write(transport, rest);
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

/* --- joined frames, shared by the connections that corked the same ones ------------------- */

/* Joined when there are this many frames at most, of this many bytes at most: past that,
   scatter/gather writes them without a copy, as the Python twin writes large payloads as
   they are. */
#define JOIN_MAX_FRAMES 64
#define JOIN_MAX_BYTES 65536

/* The last frames joined in this call of flush(), and their join. The frames are held, so
   that an address compared is the object that was joined, never a new one at a freed one's
   place. */
typedef struct {
    Py_ssize_t count;
    PyObject *frames[JOIN_MAX_FRAMES];
    PyObject *joined;
} JoinCache;

static void
join_cache_clear(JoinCache *cache)
{
    for (Py_ssize_t k = 0; k < cache->count; k++) {
        Py_DECREF(cache->frames[k]);
    }
    cache->count = 0;
    Py_CLEAR(cache->joined);
}

/* The frames of data (a list of non-empty bytes) joined, borrowed from the cache; NULL
   without an exception when they are too many or too large to join, NULL with one on error. */
static PyObject *
joined_frames(JoinCache *cache, PyObject *data)
{
    Py_ssize_t count = PyList_GET_SIZE(data);
    PyObject **items = ((PyListObject *)data)->ob_item;
    if (count < 2 || count > JOIN_MAX_FRAMES) {
        return NULL;
    }
    if (cache->joined != NULL && cache->count == count && memcmp(cache->frames, items, count * sizeof(PyObject *)) == 0) {
        return cache->joined;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        total += PyBytes_GET_SIZE(items[k]);
        if (total > JOIN_MAX_BYTES) {
            return NULL;
        }
    }
    PyObject *joined = PyBytes_FromStringAndSize(NULL, total);
    if (joined == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(joined);
    for (Py_ssize_t k = 0; k < count; k++) {
        memcpy(out, PyBytes_AS_STRING(items[k]), PyBytes_GET_SIZE(items[k]));
        out += PyBytes_GET_SIZE(items[k]);
    }
    join_cache_clear(cache);
    for (Py_ssize_t k = 0; k < count; k++) {
        cache->frames[k] = Py_NewRef(items[k]);
    }
    cache->count = count;
    cache->joined = joined;
    return joined;
}

/* Send the bytes object data on fd; the transport gets what the socket doesn't take. */
static int
send_joined(int fd, PyObject *transport, PyObject *data)
{
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    ssize_t written;
    do {
        written = send(fd, PyBytes_AS_STRING(data), (size_t)size, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (written < 0 && errno == EINTR);
    if (written == size) {
        return 0;
    }
    /* Would block, a short write, or an error: the transport buffers the rest, or meets the
       same error on its own write and reports it through connection_lost. */
    return transport_write(transport, written <= 0 ? Py_NewRef(data)
                                                   : PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + written,
                                                                               size - written));
}

/* The fields the flush reads and writes beside conn_layout's. */
static Layout flush_layout = {.names = {&s_transport, &s_fd, &s_unflushed}};
enum { F_TRANSPORT, F_FD, F_UNFLUSHED };

/* conn's protocol, its corked frames, descriptor and transport, as new references read at
   their slot offsets: 1 when conn and its protocol have the known layouts and every field
   the flush reads or writes is set, else 0 (the caller reads them through getattr). */
static int
flush_fields(PyObject *conn, PyObject **protocol, PyObject **data, PyObject **fd_obj, PyObject **transport)
{
    if (!layout_for(&conn_layout, Py_TYPE(conn)) || !layout_for(&flush_layout, Py_TYPE(conn))) {
        return 0;
    }
    PyObject *proto = SLOT(conn, conn_layout, C_PROTOCOL);
    if (proto == NULL || !layout_for(&proto_layout, Py_TYPE(proto))) {
        return 0;
    }
    PyObject *out = SLOT(proto, proto_layout, P_OUT), *fd = SLOT(conn, flush_layout, F_FD);
    PyObject *trans = SLOT(conn, flush_layout, F_TRANSPORT);
    if (out == NULL || fd == NULL || trans == NULL || SLOT(conn, conn_layout, C_DIRTY) == NULL ||
        SLOT(conn, flush_layout, F_UNFLUSHED) == NULL) {
        return 0;
    }
    *protocol = Py_NewRef(proto);
    *data = Py_NewRef(out);
    *fd_obj = Py_NewRef(fd);
    *transport = Py_NewRef(trans);
    return 1;
}

/* What a flush leaves, as Connection._flush leaves it: conn._dirty False, conn._unflushed 0,
   and protocol._out None when out is set. */
static int
flush_reset(PyObject *conn, PyObject *protocol, int slots, int out)
{
    /* The transport's methods ran since the fields were read: the layouts must still be
       conn's and its protocol's, or the fields are set through setattr. */
    if (slots && Py_TYPE(conn) == conn_layout.type && Py_TYPE(conn) == flush_layout.type &&
        Py_TYPE(protocol) == proto_layout.type) {
        if (out) {
            Py_XSETREF(SLOT(protocol, proto_layout, P_OUT), Py_NewRef(Py_None));
        }
        Py_XSETREF(SLOT(conn, conn_layout, C_DIRTY), Py_NewRef(Py_False));
        Py_XSETREF(SLOT(conn, flush_layout, F_UNFLUSHED), Py_NewRef(zero));
        return 0;
    }
    if (out && PyObject_SetAttr(protocol, s_out, Py_None) < 0) {
        return -1;
    }
    return PyObject_SetAttr(conn, s_dirty, Py_False) < 0 || PyObject_SetAttr(conn, s_unflushed, zero) < 0 ? -1 : 0;
}

static int
flush_one(PyObject *conn, JoinCache *cache)
{
    int result = -1;
    PyObject *protocol = NULL, *data = NULL, *fd_obj = NULL, *transport = NULL, *value = NULL;
    int slots = flush_fields(conn, &protocol, &data, &fd_obj, &transport);
    if (!slots) {
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
    }
    long fd = PyLong_AsLong(fd_obj);
    if (fd == -1 && PyErr_Occurred()) {
        goto done;
    }
    if (data == Py_None) {
        /* Flushed already this turn (its write limit), or closed: nothing to write. */
        result = flush_reset(conn, protocol, slots, 0);
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
    /* As data_to_send() leaves it: None until something is queued again. */
    if (flush_reset(conn, protocol, slots, 1) < 0) {
        goto done;
    }
    if (PyList_GET_SIZE(data) == 0) {
        result = 0;
        goto done;
    }
    PyObject *joined = PyList_GET_SIZE(data) == 1 ? PyList_GET_ITEM(data, 0) : joined_frames(cache, data);
    if (joined != NULL) {
        result = send_joined((int)fd, transport, joined);
    }
    else if (!PyErr_Occurred()) {
        result = send_all((int)fd, transport, data);
    }
done:
    Py_XDECREF(protocol);
    Py_XDECREF(data);
    Py_XDECREF(fd_obj);
    Py_XDECREF(transport);
    Py_XDECREF(value);
    return result;
}

/* How many connections ahead the flush fetches each level: the connection (with the line
   of its transport and descriptor), its protocol and transport, the protocol's list of
   corked frames, and that list's items. */
#define FLUSH_AHEAD_CONN 12
#define FLUSH_AHEAD_FIELDS 6
#define FLUSH_AHEAD_OUT 3
#define FLUSH_AHEAD_ITEMS 1

static void
prefetch_flush(PyObject **items, Py_ssize_t i, Py_ssize_t n)
{
    if (i + FLUSH_AHEAD_CONN < n) {
        PyObject *conn = items[i + FLUSH_AHEAD_CONN];
        prefetch(conn);
        if (layout_for(&flush_layout, Py_TYPE(conn))) {
            __builtin_prefetch(&SLOT(conn, flush_layout, F_TRANSPORT));
        }
    }
    if (i + FLUSH_AHEAD_FIELDS < n) {
        PyObject *conn = items[i + FLUSH_AHEAD_FIELDS];
        prefetch(slot_or_null(conn, &conn_layout, C_PROTOCOL));
        PyObject *transport = slot_or_null(conn, &flush_layout, F_TRANSPORT);
        prefetch(transport);
        if (transport != NULL) {
            __builtin_prefetch((char *)transport + 64);
        }
    }
    if (i + FLUSH_AHEAD_OUT < n) {
        PyObject *protocol = slot_or_null(items[i + FLUSH_AHEAD_OUT], &conn_layout, C_PROTOCOL);
        prefetch(slot_or_null(protocol, &proto_layout, P_OUT));
    }
    if (i + FLUSH_AHEAD_ITEMS < n) {
        PyObject *protocol = slot_or_null(items[i + FLUSH_AHEAD_ITEMS], &conn_layout, C_PROTOCOL);
        PyObject *out = slot_or_null(protocol, &proto_layout, P_OUT);
        if (out != NULL && PyList_CheckExact(out) && ((PyListObject *)out)->ob_item != NULL) {
            __builtin_prefetch(((PyListObject *)out)->ob_item);
        }
    }
}

static PyObject *
flush(PyObject *self, PyObject *connections)
{
    if (PyList_CheckExact(connections)) {
        /* The batcher's list, which nothing changes while it's flushed: by index, fetching
           ahead. */
        JoinCache cache = {0};
        int failed = 0;
        for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(connections); i++) {
            prefetch_flush(((PyListObject *)connections)->ob_item, i, PyList_GET_SIZE(connections));
            PyObject *conn = Py_NewRef(PyList_GET_ITEM(connections, i));
            failed = flush_one(conn, &cache);
            Py_DECREF(conn);
        }
        join_cache_clear(&cache);
        if (failed) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *iterator = PyObject_GetIter(connections);
    if (iterator == NULL) {
        return NULL;
    }
    PyObject *conn;
    JoinCache cache = {0};
    while ((conn = PyIter_Next(iterator)) != NULL) {
        int failed = flush_one(conn, &cache);
        Py_DECREF(conn);
        if (failed) {
            join_cache_clear(&cache);
            Py_DECREF(iterator);
            return NULL;
        }
    }
    join_cache_clear(&cache);
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* --- module ------------------------------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"broadcast", (PyCFunction)(void (*)(void))broadcast, METH_FASTCALL, "Cork a prepared frame on many connections."},
    {"flush", flush, METH_O, "Write what connections corked, with one send each."},
    {NULL, NULL, 0, NULL},
};

WAVECAST_MODULE("wavecast.asyncio._speedups", "Native fan-out of the asyncio layer.", speedups_methods);

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
    INTERN(s_batcher, "_batcher");
    INTERN(s_add, "add");
    INTERN(s_flush, "_flush");
    INTERN(s_fd, "_fd");
    INTERN(s_transport, "transport");
    INTERN(s_is_closing, "is_closing");
    INTERN(s_get_write_buffer_size, "get_write_buffer_size");
    INTERN(s_write, "write");
    INTERN(s_write_prepared, "write_prepared");
    zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    PyObject *state = PyImport_ImportModule("wavecast.protocol.state");
    if (state == NULL) {
        return NULL;
    }
    open_state = PyObject_GetAttrString(state, "OPEN");
    Py_DECREF(state);
    if (open_state == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(&cork_api, WAVECAST_CORK_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(module, "_cork_api", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
