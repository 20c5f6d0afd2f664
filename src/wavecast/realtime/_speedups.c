/* Native fan-out of the real-time layer: the twin of wavecast.realtime.fanout.deliver.
 *
 * configure(session_type, session_fields, subscription_type, subscription_fields,
 *           outbox_type, outbox_fields, transport_type, transport_fields, subscribed, closed)
 *     Tell the module the classes it reads, and the names of the fields it reads in each
 *     (fanout.NATIVE_FIELDS, in the order of the enums below): no field name is written
 *     here, so a rename can't leave this code reading the wrong field, and a test checks the
 *     names against the classes' __slots__.
 * deliver(subscribers, message, offset, epoch) -> (delivered, rest)
 *     Send a publication's prepared message to a channel's {session: subscription} dict: the
 *     common case only (a subscribed client, in order when positioned, whose queue is empty,
 *     on a WebSocket transport whose connection takes the frame now) is done here, through
 *     the asyncio layer's corking API; every other subscriber is returned in rest, untouched,
 *     for the Python code to handle. Closed sessions are counted and skipped as
 *     Session.deliver drops their messages.
 */

#include "../_native.h"

static PyObject *s_frame;

/* The fields read, by configure's names: Session, Subscription, Outbox, WebSocketTransport. */
static PyObject *session_names[3], *subscription_names[4], *outbox_names[1], *transport_names[1];
enum { SE_STATE, SE_OUTBOX, SE_TRANSPORT };
enum { SU_STATE, SU_POSITIONED, SU_EPOCH, SU_OFFSET };
enum { OB_SIZE };
enum { TR_CONNECTION };

static Layout session_layout = {.names = {&session_names[0], &session_names[1], &session_names[2]}};
static Layout subscription_layout = {
    .names = {&subscription_names[0], &subscription_names[1], &subscription_names[2], &subscription_names[3]}};
static Layout outbox_layout = {.names = {&outbox_names[0]}};
static Layout transport_layout = {.names = {&transport_names[0]}};

static PyTypeObject *session_type, *subscription_type, *outbox_type, *transport_type;
static PyObject *subscribed, *closed, *zero;
static WavecastCorkAPI *cork_api;

static int
set_names(PyObject **names, Py_ssize_t count, PyObject *fields)
{
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) != count) {
        PyErr_Format(PyExc_ValueError, "expected a tuple of %zd field names", count);
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *name = PyTuple_GET_ITEM(fields, k);
        if (!PyUnicode_CheckExact(name)) {
            PyErr_SetString(PyExc_TypeError, "field names must be str");
            return -1;
        }
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        Py_XSETREF(names[k], name);
    }
    return 0;
}

static int
set_type(PyTypeObject **slot, PyObject *type)
{
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "expected a class");
        return -1;
    }
    Py_INCREF(type);
    Py_XSETREF(*slot, (PyTypeObject *)type);
    return 0;
}

static PyObject *
configure(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    WAVECAST_EXPECT_ARGS("configure", 10);
    if (set_type(&session_type, args[0]) < 0 || set_names(session_names, 3, args[1]) < 0 ||
        set_type(&subscription_type, args[2]) < 0 || set_names(subscription_names, 4, args[3]) < 0 ||
        set_type(&outbox_type, args[4]) < 0 || set_names(outbox_names, 1, args[5]) < 0 ||
        set_type(&transport_type, args[6]) < 0 || set_names(transport_names, 1, args[7]) < 0) {
        return NULL;
    }
    Py_XSETREF(subscribed, Py_NewRef(args[8]));
    Py_XSETREF(closed, Py_NewRef(args[9]));
    /* Layouts are computed again for the names just set. */
    session_layout.type = subscription_layout.type = outbox_layout.type = transport_layout.type = NULL;
    Py_RETURN_NONE;
}

/* What deliver_one did with a subscriber. */
enum { DELIVERED, TO_REST, FAILED };

typedef struct {
    WavecastCork cork;
    PyObject *offset_obj, *epoch;
    long long offset;
} Deliver;

/* The checks of fanout.deliver for one subscriber, through the slots of known types. */
static int
deliver_one(Deliver *d, PyObject *session, PyObject *subscription)
{
    if (Py_TYPE(session) != session_type || Py_TYPE(subscription) != subscription_type ||
        !layout_for(&session_layout, session_type) || !layout_for(&subscription_layout, subscription_type)) {
        return TO_REST;
    }
    if (SLOT(subscription, subscription_layout, SU_STATE) != subscribed) {
        return TO_REST;
    }
    int advance = 0;
    if (d->offset) {
        PyObject *positioned = SLOT(subscription, subscription_layout, SU_POSITIONED);
        if (positioned != Py_False) {
            PyObject *epoch = SLOT(subscription, subscription_layout, SU_EPOCH);
            PyObject *current = SLOT(subscription, subscription_layout, SU_OFFSET);
            if (positioned != Py_True || epoch == NULL || current == NULL || !PyLong_CheckExact(current)) {
                return TO_REST;
            }
            /* In order, in the same stream: anything else (a gap, a new epoch, a publication
               it already has) is the Python code's to decide. */
            if (d->epoch != Py_None && epoch != d->epoch) {
                int same = PyObject_RichCompareBool(epoch, d->epoch, Py_EQ);
                if (same <= 0) {
                    return same < 0 ? FAILED : TO_REST;
                }
            }
            long long value = PyLong_AsLongLong(current);
            if (value == -1 && PyErr_Occurred()) {
                return FAILED;
            }
            if (d->offset != value + 1) {
                return TO_REST;
            }
            advance = 1;
        }
    }
    if (SLOT(session, session_layout, SE_STATE) != closed) {
        PyObject *outbox = SLOT(session, session_layout, SE_OUTBOX);
        PyObject *transport = SLOT(session, session_layout, SE_TRANSPORT);
        if (outbox == NULL || transport == NULL || Py_TYPE(transport) != transport_type ||
            !layout_for(&transport_layout, transport_type)) {
            return TO_REST;
        }
        if (outbox != Py_None) { /* a client that reads keeps no queue */
            if (Py_TYPE(outbox) != outbox_type || !layout_for(&outbox_layout, outbox_type)) {
                return TO_REST;
            }
            if (SLOT(outbox, outbox_layout, OB_SIZE) != zero) {
                return TO_REST; /* messages wait: the queue and its policy decide */
            }
        }
        PyObject *conn = SLOT(transport, transport_layout, TR_CONNECTION);
        if (conn == NULL) {
            return TO_REST;
        }
        switch (cork_api->cork(&d->cork, conn)) {
        case WAVECAST_CORKED:
        case WAVECAST_DROPPED: /* not open: dropped, as the transport's write() drops it */
            break;
        case WAVECAST_SKIPPED: /* paused: the queue and its policy decide */
            return TO_REST;
        default:
            return FAILED;
        }
    }
    if (advance) {
        PyObject *old = SLOT(subscription, subscription_layout, SU_OFFSET);
        SLOT(subscription, subscription_layout, SU_OFFSET) = Py_NewRef(d->offset_obj);
        Py_XDECREF(old);
    }
    return DELIVERED;
}

/* Subscribers are taken from the dict RING ahead of the one handled, so that each level of
   the chain session -> transport -> connection is fetched before it's read. */
#define RING 16

static void
prefetch_subscriber(PyObject **sessions, int head, int count)
{
    if (count > 10) { /* the session's transport, 10 ahead (its queue is most often None) */
        prefetch(slot_or_null(sessions[(head + 10) % RING], &session_layout, SE_TRANSPORT));
    }
    if (count > 6) { /* the transport's connection, 6 ahead */
        PyObject *transport = slot_or_null(sessions[(head + 6) % RING], &session_layout, SE_TRANSPORT);
        prefetch(slot_or_null(transport, &transport_layout, TR_CONNECTION));
    }
}

static PyObject *
deliver(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    WAVECAST_EXPECT_ARGS("deliver", 4);
    if (session_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "deliver() before configure()");
        return NULL;
    }
    PyObject *subscribers = args[0];
    Deliver d = {.offset_obj = args[2], .epoch = args[3]};
    if (!PyDict_Check(subscribers) || !PyLong_CheckExact(d.offset_obj)) {
        PyErr_SetString(PyExc_TypeError, "deliver() takes a dict, a message and an int offset");
        return NULL;
    }
    d.offset = PyLong_AsLongLong(d.offset_obj);
    if (d.offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *frame = PyObject_GetAttr(args[1], s_frame);
    if (frame == NULL) {
        return NULL;
    }
    PyObject *rest = PyList_New(0);
    if (rest == NULL || cork_api->begin(&d.cork, args[1], frame) < 0) {
        Py_XDECREF(rest);
        Py_DECREF(frame);
        return NULL;
    }
    PyObject *sessions[RING], *subscriptions[RING];
    int head = 0, count = 0;
    Py_ssize_t delivered = 0, pos = 0;
    for (;;) {
        PyObject *session, *subscription;
        /* Keep the ring full: new entries get their objects fetched at once. */
        while (count < RING && PyDict_Next(subscribers, &pos, &session, &subscription)) {
            int tail = (head + count) % RING;
            sessions[tail] = Py_NewRef(session);
            subscriptions[tail] = Py_NewRef(subscription);
            prefetch(session);
            prefetch(subscription);
            count++;
        }
        if (count == 0) {
            break;
        }
        prefetch_subscriber(sessions, head, count);
        session = sessions[head];
        subscription = subscriptions[head];
        head = (head + 1) % RING;
        count--;
        int result = deliver_one(&d, session, subscription);
        if (result == FAILED) {
            /* One subscriber's failure is its own: the Python code takes it over, and what
               fails there again ends that session only, not the fan-out to the others. */
            PyErr_Clear();
            result = TO_REST;
        }
        if (result == DELIVERED) {
            delivered++;
        }
        else {
            PyObject *pair = PyTuple_Pack(2, session, subscription);
            if (pair == NULL || PyList_Append(rest, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(session);
                Py_DECREF(subscription);
                goto error;
            }
            Py_DECREF(pair);
        }
        Py_DECREF(session);
        Py_DECREF(subscription);
    }
    Py_DECREF(frame);
    if (cork_api->finish(&d.cork) < 0) {
        Py_DECREF(rest);
        return NULL;
    }
    return Py_BuildValue("nN", delivered, rest);
error:
    for (; count > 0; count--, head = (head + 1) % RING) {
        Py_DECREF(sessions[head]);
        Py_DECREF(subscriptions[head]);
    }
    cork_api->release(&d.cork);
    Py_DECREF(frame);
    Py_DECREF(rest);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL, "Name the classes and fields read."},
    {"deliver", (PyCFunction)(void (*)(void))deliver, METH_FASTCALL, "Fan a publication out to subscribers."},
    {NULL, NULL, 0, NULL},
};

WAVECAST_MODULE("wavecast.realtime._speedups", "Native fan-out of the real-time layer.", speedups_methods);

PyMODINIT_FUNC
PyInit__speedups(void)
{
    s_frame = PyUnicode_InternFromString("frame");
    zero = PyLong_FromLong(0);
    if (s_frame == NULL || zero == NULL) {
        return NULL;
    }
    cork_api = (WavecastCorkAPI *)PyCapsule_Import(WAVECAST_CORK_CAPSULE, 0);
    if (cork_api == NULL) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
