/* What wavecast's C extensions share: reading plain __slots__ at their offsets, and the
 * corking API of wavecast.asyncio._speedups, which wavecast.realtime._speedups calls to
 * write a publication's frame on the WebSocket connections of a channel's subscribers.
 *
 * Each extension is a twin of Python code that the test suite also runs alone
 * (WAVECAST_NO_SPEEDUPS=1); the C code only skips the interpreter on the common case.
 */
#ifndef WAVECAST_NATIVE_H
#define WAVECAST_NATIVE_H

#include "_module.h"

#include <structmember.h>
#include <string.h>

/* --- slots at their offsets ---------------------------------------------------------------- */

/* Where a type keeps the fields that fan-out reads, when they are plain __slots__.
 *
 * A fan-out to ten thousand connections is bound by fetching each one's fields from memory.
 * Reading the slots at their offsets, instead of through getattr, lets the loops prefetch
 * the next objects while they handle this one. A layout is trusted only for the exact type
 * and type version it was computed for, and only when every field is a writable object slot
 * under the generic getattr; anything else takes the slow path.
 */
#define MAX_FIELDS 5

typedef struct {
    PyTypeObject *type;
    unsigned int version;
    PyObject **names[MAX_FIELDS]; /* interned names, set once (NULL ends the list) */
    Py_ssize_t offsets[MAX_FIELDS];
} Layout;

static inline Py_ssize_t
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
static inline int
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
    for (int k = 0; k < MAX_FIELDS && layout->names[k] != NULL && *layout->names[k] != NULL; k++) {
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

/* --- the corking API of wavecast.asyncio._speedups ---------------------------------------- */

/* Corking queues a prepared frame on a server connection, to leave with everything else the
 * connection writes in this turn of the event loop: what ServerConnection.write_prepared does
 * for a connection that takes prepared frames. */
#define WAVECAST_CORK_CAPSULE "wavecast.asyncio._speedups._cork_api"

/* What cork() did with a connection. */
enum { WAVECAST_CORKED, WAVECAST_SKIPPED, WAVECAST_DROPPED, WAVECAST_SLOW, WAVECAST_FAILED };

typedef struct {
    PyObject *message;    /* the PreparedMessage, borrowed; NULL in broadcast() */
    PyObject *frame;      /* its frame, borrowed */
    Py_ssize_t frame_len;
    PyObject *batcher;    /* the batcher whose pending list is at hand, owned */
    PyObject *pending;    /* its pending list, owned */
    PyObject *flush_now;  /* connections whose corked frames passed their write limit, owned */
} WavecastCork;

typedef struct {
    /* Start corking a PreparedMessage and its frame (bytes), both kept alive by the caller;
     * 0, or -1 with an exception. */
    int (*begin)(WavecastCork *cork, PyObject *message, PyObject *frame);
    /* Cork the frame on conn: WAVECAST_CORKED (a connection that frames messages itself,
     * with compression, got the message through write_prepared); WAVECAST_SKIPPED when its
     * writes are paused, and nothing was written; WAVECAST_DROPPED when it isn't open (or a
     * fragmented message is on its way out), where write_prepared drops the message too;
     * WAVECAST_FAILED with an exception. WAVECAST_SLOW is for broadcast() alone. */
    int (*cork)(WavecastCork *cork, PyObject *conn);
    /* Flush the connections past their write limit and release the cork; 0 or -1. */
    int (*finish)(WavecastCork *cork);
    /* Release the cork without flushing, on an error path. */
    void (*release)(WavecastCork *cork);
} WavecastCorkAPI;

#endif
