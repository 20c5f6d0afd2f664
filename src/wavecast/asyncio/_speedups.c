/* Native fan-out of the asyncio layer; see wavecast/speedups.py.
 *
 * Each function has a pure-Python twin that the test suite also runs (with
 * WAVECAST_NO_SPEEDUPS=1), and does nothing its twin doesn't: the C code only skips the
 * interpreter on the common case and hands anything unusual back to Python.
 *
 * broadcast(connections, frame, open_state, batcher) -> (sent, skipped, slow, flush)
 *     Cork a prepared frame on every open server connection that takes prepared frames;
 *     slow lists the connections that frame it themselves (clients, compression), flush
 *     those whose corked frames, counted at this frame's size, passed their write limit.
 * deliver(subscribers, frame, ...) -> (delivered, slow, flush)
 *     The common case of a real-time channel's fan-out; see below.
 * flush(connections) -> None
 *     Write what each connection corked this turn of the loop straight to its socket, with
 *     one sendmsg (scatter/gather) for all its frames, when nothing waits in its transport's
 *     buffer; the transport buffers whatever the socket doesn't take.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Interned attribute and method names, set up once at import. */
static PyObject *s_protocol, *s_state, *s_writing_paused, *s_out_fragmented, *s_prepared_ok, *s_out, *s_dirty,
    *s_unflushed, *s_write_limit, *s_pending, *s_batcher, *s_add, *s_flush, *s_fd, *s_transport, *s_is_closing,
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

/* Where a type keeps the fields that fan-out reads, when they are plain __slots__.
 *
 * A broadcast to ten thousand connections is bound by fetching each one's fields from
 * memory. Reading the slots at their offsets, instead of through getattr, lets the loops
 * prefetch the next connections while they handle this one. A layout is trusted only for
 * the exact type and type version it was computed for, and only when every field is a
 * writable object slot under the generic getattr; anything else takes the getattr path.
 */
#define MAX_FIELDS 5

typedef struct {
    PyTypeObject *type;
    unsigned int version;
    PyObject **names[MAX_FIELDS]; /* the interned names, set once at import */
    Py_ssize_t offsets[MAX_FIELDS];
} Layout;

static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *name)
{
    PyObject *descr = _PyType_Lookup(type, name); /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
        return -1;
    }
    return member->offset;
}

/* Return 1 when layout describes type (computing it if needed), 0 when type has no usable layout. */
static int
layout_for(Layout *layout, PyTypeObject *type)
{
    if (!PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG)) {
        return 0;
    }
    if (layout->type == type && layout->version == type->tp_version_tag) {
        return 1;
    }
    if (type->tp_getattro != PyObject_GenericGetAttr || type->tp_setattro != PyObject_GenericSetAttr) {
        return 0;
    }
    Py_ssize_t offsets[MAX_FIELDS];
    for (int k = 0; k < MAX_FIELDS && layout->names[k] != NULL; k++) {
        offsets[k] = slot_offset(type, *layout->names[k]);
        if (offsets[k] < 0) {
            return 0;
        }
    }
    memcpy(layout->offsets, offsets, sizeof offsets);
    layout->type = type;
    layout->version = type->tp_version_tag;
    return 1;
}

/* The fields of each kind of object, in the order of their *_ indexes below. */
static Layout conn_layout = {.names = {&s_protocol, &s_writing_paused, &s_prepared_ok, &s_dirty, &s_write_limit}};
enum { C_PROTOCOL, C_WRITING_PAUSED, C_PREPARED_OK, C_DIRTY, C_WRITE_LIMIT };
static Layout proto_layout = {.names = {&s_state, &s_out_fragmented, &s_out}};
enum { P_STATE, P_OUT_FRAGMENTED, P_OUT };

#define SLOT(obj, layout, field) (*(PyObject **)((char *)(obj) + (layout).offsets[field]))

/* The object in obj's field, or NULL when obj isn't of the layout's type (or it's unset). */
static inline PyObject *
slot_or_null(PyObject *obj, Layout *layout, int field)
{
    if (obj == NULL || Py_TYPE(obj) != layout->type) {
        return NULL;
    }
    return SLOT(obj, *layout, field);
}

static inline void
prefetch(PyObject *obj)
{
    if (obj != NULL) {
        __builtin_prefetch((char *)obj + sizeof(PyObject));
    }
}

/* What cork_one did with a connection. */
enum { CORKED, SKIPPED, SLOW, FAILED };

typedef struct {
    PyObject *frame, *open_state, *batcher, *pending, *flush_now;
    Py_ssize_t frame_len;
} Cork;

/* Register conn with its batcher (the loop's, or one that holds frames a little longer). */
static int
register_dirty(Cork *cork, PyObject *conn)
{
    PyObject *batcher = PyObject_GetAttr(conn, s_batcher);
    if (batcher == NULL) {
        return -1;
    }
    PyObject *pending = batcher == cork->batcher ? Py_NewRef(cork->pending) : PyObject_GetAttr(batcher, s_pending);
    int result = -1;
    if (pending == NULL) {
        goto done;
    }
    if (!PyList_CheckExact(pending)) {
        PyErr_SetString(PyExc_TypeError, "a batcher's _pending must be a list");
        goto done;
    }
    if (PyList_GET_SIZE(pending) == 0) {
        /* The first connection of this turn: the batcher schedules its flush. */
        PyObject *added = PyObject_CallMethodOneArg(batcher, s_add, conn);
        Py_XDECREF(added);
        result = added == NULL ? -1 : 0;
    }
    else {
        result = PyList_Append(pending, conn);
    }
done:
    Py_XDECREF(pending);
    Py_DECREF(batcher);
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
    int open = value == cork->open_state;
    Py_CLEAR(value);
    if (open) {
        int paused = attr_true(conn, s_writing_paused);
        int fragmented = paused ? 0 : attr_true(protocol, s_out_fragmented);
        if (paused < 0 || fragmented < 0) {
            goto done;
        }
        open = !paused && !fragmented;
    }
    if (!open) {
        result = SKIPPED;
        goto done;
    }
    int prepared = attr_true(conn, s_prepared_ok);
    if (prepared < 0) {
        goto done;
    }
    if (!prepared) {
        result = SLOW;
        goto done;
    }
    value = PyObject_GetAttr(protocol, s_out);
    if (value == NULL) {
        goto done;
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
        !PyList_CheckExact(out) || (dirty != Py_True && dirty != Py_False) || limit_obj == NULL ||
        !PyLong_CheckExact(limit_obj)) {
        return cork_generic(cork, conn);
    }
    if (state != cork->open_state || paused == Py_True || fragmented != zero) {
        return SKIPPED;
    }
    if (prepared == Py_False) {
        return SLOW;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(limit_obj);
    if (limit == -1 && PyErr_Occurred()) {
        return FAILED;
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
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "broadcast() takes exactly 4 arguments");
        return NULL;
    }
    Cork cork = {.frame = args[1], .open_state = args[2], .batcher = args[3]};
    if (!PyBytes_Check(cork.frame)) {
        PyErr_SetString(PyExc_TypeError, "frame must be bytes");
        return NULL;
    }
    cork.frame_len = PyBytes_GET_SIZE(cork.frame);
    /* A list or tuple is used in place; any other iterable is copied into a list once. */
    PyObject *sequence = PySequence_Fast(args[0], "connections must be iterable");
    if (sequence == NULL) {
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
        switch (cork_one(&cork, conn)) {
        case CORKED:
            sent++;
            break;
        case SKIPPED:
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
    return Py_BuildValue("nnNN", sent, skipped, slow, cork.flush_now);
error:
    Py_DECREF(sequence);
    Py_XDECREF(cork.pending);
    Py_XDECREF(slow);
    Py_XDECREF(cork.flush_now);
    return NULL;
}

/* --- channel fan-out of the real-time layer ------------------------------------------------ */

/* deliver(subscribers, frame, subscribed, closed, offset, epoch, open_state, batcher, transport_type)
 *     -> (delivered, slow, flush)
 *
 * The common case of wavecast.realtime.node.Node.on_publication for a channel's
 * {session: subscription} dict: a subscribed client whose outgoing queue is empty, on a
 * WebSocket transport that takes the prepared frame now. Such subscribers get the frame
 * corked (and, when positioned, their offset advanced); closed sessions are counted and
 * skipped as the Python loop does. Every other subscriber is returned in slow as a
 * (session, subscription) pair, untouched, for the Python loop to handle: subscriptions
 * still being set up, gaps in a positioned stream, full queues, compression, other
 * transports. The dict is only read, and nothing here calls back into the real-time layer.
 */
static PyObject *s_positioned, *s_offset, *s_epoch, *s_outbox, *s_size, *s_connection;

static Layout sub_layout = {.names = {&s_state, &s_positioned, &s_epoch, &s_offset}};
enum { S_STATE, S_POSITIONED, S_EPOCH, S_OFFSET };
static Layout session_layout = {.names = {&s_state, &s_outbox, &s_transport}};
enum { SE_STATE, SE_OUTBOX, SE_TRANSPORT };
static Layout outbox_layout = {.names = {&s_size}};
static Layout transport_layout = {.names = {&s_connection}};

typedef struct {
    Cork cork;
    PyObject *subscribed, *closed, *offset_obj, *epoch, *transport_type;
    long long offset;
} Deliver;

/* What deliver_one did with a subscriber. */
enum { DELIVERED, PASSED, TO_SLOW, DELIVER_FAILED };

static int
set_offset(PyObject *subscription, Deliver *d)
{
    return PyObject_SetAttr(subscription, s_offset, d->offset_obj);
}

/* The checks of Node.on_publication and Session.deliver for one subscriber, through getattr. */
static int
deliver_generic(Deliver *d, PyObject *session, PyObject *subscription)
{
    int result = DELIVER_FAILED, advance = 0;
    PyObject *value = NULL, *transport = NULL, *conn = NULL;
    value = PyObject_GetAttr(subscription, s_state);
    if (value == NULL) {
        goto done;
    }
    if (value != d->subscribed) {
        result = TO_SLOW;
        goto done;
    }
    Py_CLEAR(value);
    if (d->offset) {
        int positioned = attr_true(subscription, s_positioned);
        if (positioned < 0) {
            goto done;
        }
        if (positioned) {
            /* In order, in the same stream: anything else (a gap, a new epoch, a
               publication it already has) is the Python loop's to decide. */
            if (d->epoch != Py_None) {
                value = PyObject_GetAttr(subscription, s_epoch);
                if (value == NULL) {
                    goto done;
                }
                int same = PyObject_RichCompareBool(value, d->epoch, Py_EQ);
                if (same <= 0) {
                    result = same < 0 ? DELIVER_FAILED : TO_SLOW;
                    goto done;
                }
                Py_CLEAR(value);
            }
            value = PyObject_GetAttr(subscription, s_offset);
            if (value == NULL) {
                goto done;
            }
            long long current = PyLong_AsLongLong(value);
            if (current == -1 && PyErr_Occurred()) {
                goto done;
            }
            Py_CLEAR(value);
            if (d->offset != current + 1) {
                result = TO_SLOW;
                goto done;
            }
            advance = 1;
        }
    }
    value = PyObject_GetAttr(session, s_state);
    if (value == NULL) {
        goto done;
    }
    if (value == d->closed) {
        /* Counted and dropped, as Session.deliver drops it. */
        result = advance && set_offset(subscription, d) < 0 ? DELIVER_FAILED : DELIVERED;
        goto done;
    }
    Py_CLEAR(value);
    value = PyObject_GetAttr(session, s_outbox);
    PyObject *size = value == NULL ? NULL : PyObject_GetAttr(value, s_size);
    if (size == NULL) {
        goto done;
    }
    int queued = PyObject_IsTrue(size);
    Py_DECREF(size);
    if (queued != 0) {
        result = queued < 0 ? DELIVER_FAILED : TO_SLOW;
        goto done;
    }
    transport = PyObject_GetAttr(session, s_transport);
    if (transport == NULL) {
        goto done;
    }
    if ((PyObject *)Py_TYPE(transport) != d->transport_type) {
        result = TO_SLOW;
        goto done;
    }
    conn = PyObject_GetAttr(transport, s_connection);
    if (conn == NULL) {
        goto done;
    }
    switch (cork_one(&d->cork, conn)) {
    case CORKED:
        result = advance && set_offset(subscription, d) < 0 ? DELIVER_FAILED : DELIVERED;
        break;
    case SKIPPED: /* paused or closing: the queue and its policy decide */
    case SLOW:    /* compression: the connection frames the message itself */
        result = TO_SLOW;
        break;
    default:
        break;
    }
done:
    Py_XDECREF(value);
    Py_XDECREF(transport);
    Py_XDECREF(conn);
    return result;
}

/* The same through the slots, when every object on the way has a known layout. */
static int
deliver_one(Deliver *d, PyObject *session, PyObject *subscription)
{
    if (!layout_for(&sub_layout, Py_TYPE(subscription)) || !layout_for(&session_layout, Py_TYPE(session))) {
        return deliver_generic(d, session, subscription);
    }
    PyObject *state = SLOT(subscription, sub_layout, S_STATE);
    PyObject *session_state = SLOT(session, session_layout, SE_STATE);
    PyObject *outbox = SLOT(session, session_layout, SE_OUTBOX);
    PyObject *transport = SLOT(session, session_layout, SE_TRANSPORT);
    if (state == NULL || session_state == NULL || outbox == NULL || transport == NULL ||
        !layout_for(&outbox_layout, Py_TYPE(outbox))) {
        return deliver_generic(d, session, subscription);
    }
    if (state != d->subscribed) {
        return TO_SLOW;
    }
    int advance = 0;
    if (d->offset) {
        PyObject *positioned = SLOT(subscription, sub_layout, S_POSITIONED);
        if (positioned != Py_True && positioned != Py_False) {
            return deliver_generic(d, session, subscription);
        }
        if (positioned == Py_True) {
            PyObject *epoch = SLOT(subscription, sub_layout, S_EPOCH);
            PyObject *current = SLOT(subscription, sub_layout, S_OFFSET);
            if (epoch == NULL || current == NULL || !PyLong_CheckExact(current)) {
                return deliver_generic(d, session, subscription);
            }
            if (d->epoch != Py_None && epoch != d->epoch) {
                int same = PyObject_RichCompareBool(epoch, d->epoch, Py_EQ);
                if (same <= 0) {
                    return same < 0 ? DELIVER_FAILED : TO_SLOW;
                }
            }
            long long value = PyLong_AsLongLong(current);
            if (value == -1 && PyErr_Occurred()) {
                return DELIVER_FAILED;
            }
            if (d->offset != value + 1) {
                return TO_SLOW;
            }
            advance = 1;
        }
    }
    if (session_state != d->closed) {
        PyObject *size = SLOT(outbox, outbox_layout, 0);
        if (size == NULL) {
            return deliver_generic(d, session, subscription);
        }
        int queued = size == zero ? 0 : PyObject_IsTrue(size);
        if (queued != 0) {
            return queued < 0 ? DELIVER_FAILED : TO_SLOW;
        }
        if ((PyObject *)Py_TYPE(transport) != d->transport_type) {
            return TO_SLOW;
        }
        if (!layout_for(&transport_layout, Py_TYPE(transport))) {
            return deliver_generic(d, session, subscription);
        }
        PyObject *conn = SLOT(transport, transport_layout, 0);
        if (conn == NULL) {
            return deliver_generic(d, session, subscription);
        }
        switch (cork_one(&d->cork, conn)) {
        case CORKED:
            break;
        case SKIPPED: /* paused or closing: the queue and its policy decide */
        case SLOW:    /* compression: the connection frames the message itself */
            return TO_SLOW;
        default:
            return DELIVER_FAILED;
        }
    }
    /* Delivered, or dropped for a closed session and counted, as Session.deliver does. */
    if (advance) {
        PyObject *old = SLOT(subscription, sub_layout, S_OFFSET);
        Py_INCREF(d->offset_obj);
        SLOT(subscription, sub_layout, S_OFFSET) = d->offset_obj;
        Py_XDECREF(old);
    }
    return DELIVERED;
}

/* Subscribers are taken from the dict RING ahead of the one handled, so that each level of
   the chain session -> transport -> connection -> protocol is fetched before it's read. */
#define RING 16

static void
prefetch_subscriber(PyObject **sessions, PyObject **subscriptions, int head, int count)
{
    if (count > 10) { /* the session's transport and queue, 10 ahead */
        PyObject *session = sessions[(head + 10) % RING];
        prefetch(slot_or_null(session, &session_layout, SE_TRANSPORT));
        prefetch(slot_or_null(session, &session_layout, SE_OUTBOX));
    }
    if (count > 6) { /* the transport's connection, 6 ahead */
        PyObject *transport = slot_or_null(sessions[(head + 6) % RING], &session_layout, SE_TRANSPORT);
        prefetch(slot_or_null(transport, &transport_layout, 0));
    }
    if (count > 3) { /* the connection's protocol, 3 ahead */
        PyObject *transport = slot_or_null(sessions[(head + 3) % RING], &session_layout, SE_TRANSPORT);
        PyObject *conn = slot_or_null(transport, &transport_layout, 0);
        prefetch(slot_or_null(conn, &conn_layout, C_PROTOCOL));
    }
    (void)subscriptions;
}

static PyObject *
deliver(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "deliver() takes exactly 9 arguments");
        return NULL;
    }
    PyObject *subscribers = args[0];
    Deliver d = {
        .cork = {.frame = args[1], .open_state = args[6], .batcher = args[7]},
        .subscribed = args[2],
        .closed = args[3],
        .offset_obj = args[4],
        .epoch = args[5],
        .transport_type = args[8],
    };
    if (!PyDict_Check(subscribers) || !PyBytes_Check(d.cork.frame) || !PyLong_CheckExact(d.offset_obj)) {
        PyErr_SetString(PyExc_TypeError, "deliver() takes a dict, bytes and an int offset");
        return NULL;
    }
    d.cork.frame_len = PyBytes_GET_SIZE(d.cork.frame);
    d.offset = PyLong_AsLongLong(d.offset_obj);
    if (d.offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *slow = PyList_New(0);
    d.cork.flush_now = PyList_New(0);
    d.cork.pending = PyObject_GetAttr(d.cork.batcher, s_pending);
    PyObject *sessions[RING], *subscriptions[RING];
    int head = 0, count = 0;
    Py_ssize_t delivered = 0, pos = 0;
    if (slow == NULL || d.cork.flush_now == NULL || d.cork.pending == NULL) {
        goto error;
    }
    if (!PyList_CheckExact(d.cork.pending)) {
        PyErr_SetString(PyExc_TypeError, "the batcher's _pending must be a list");
        goto error;
    }
    for (;;) {
        PyObject *session, *subscription;
        /* Keep the ring full: new entries get their objects fetched at once. */
        while (count < RING && PyDict_Next(subscribers, &pos, &session, &subscription)) {
            int tail = (head + count) % RING;
            Py_INCREF(session);
            Py_INCREF(subscription);
            sessions[tail] = session;
            subscriptions[tail] = subscription;
            prefetch(session);
            prefetch(subscription);
            count++;
        }
        if (count == 0) {
            break;
        }
        prefetch_subscriber(sessions, subscriptions, head, count);
        session = sessions[head];
        subscription = subscriptions[head];
        head = (head + 1) % RING;
        count--;
        int result = deliver_one(&d, session, subscription);
        if (result == DELIVER_FAILED) {
            /* One subscriber's failure is its own: the Python loop takes it over, and what
               fails there again ends that session only, not the fan-out to the others. */
            PyErr_Clear();
            result = TO_SLOW;
        }
        if (result == TO_SLOW) {
            PyObject *pair = PyTuple_Pack(2, session, subscription);
            if (pair == NULL || PyList_Append(slow, pair) < 0) {
                Py_XDECREF(pair);
                result = DELIVER_FAILED;
            }
            else {
                Py_DECREF(pair);
            }
        }
        else if (result == DELIVERED) {
            delivered++;
        }
        Py_DECREF(session);
        Py_DECREF(subscription);
        if (result == DELIVER_FAILED) {
            goto error;
        }
    }
    Py_DECREF(d.cork.pending);
    return Py_BuildValue("nNN", delivered, slow, d.cork.flush_now);
error:
    for (; count > 0; count--, head = (head + 1) % RING) {
        Py_DECREF(sessions[head]);
        Py_DECREF(subscriptions[head]);
    }
    Py_XDECREF(d.cork.pending);
    Py_XDECREF(slow);
    Py_XDECREF(d.cork.flush_now);
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
    {"deliver", (PyCFunction)(void (*)(void))deliver, METH_FASTCALL, "Fan a publication out to a channel."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wavecast.asyncio._speedups",
    .m_doc = "Native fan-out of the asyncio layer.",
    .m_size = -1,
    .m_methods = speedups_methods,
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
    INTERN(s_batcher, "_batcher");
    INTERN(s_add, "add");
    INTERN(s_flush, "_flush");
    INTERN(s_fd, "_fd");
    INTERN(s_transport, "transport");
    INTERN(s_is_closing, "is_closing");
    INTERN(s_get_write_buffer_size, "get_write_buffer_size");
    INTERN(s_write, "write");
    INTERN(s_positioned, "positioned");
    INTERN(s_offset, "offset");
    INTERN(s_epoch, "epoch");
    INTERN(s_outbox, "outbox");
    INTERN(s_size, "size");
    INTERN(s_connection, "connection");
    zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
