/* The module definition that every wavecast C extension makes the same way. */
#ifndef WAVECAST_MODULE_H
#define WAVECAST_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Define speedups_module, a single-phase module with methods and no state of its own. */
#define WAVECAST_MODULE(name, doc, methods)                                                                    \
    static struct PyModuleDef speedups_module = {                                                              \
        PyModuleDef_HEAD_INIT, .m_name = (name), .m_doc = (doc), .m_size = -1, .m_methods = (methods)}

/* In a METH_FASTCALL function: fail with TypeError unless it was given n arguments. */
#define WAVECAST_EXPECT_ARGS(function, n)                                                                      \
    if (nargs != (n)) {                                                                                        \
        PyErr_SetString(PyExc_TypeError, function "() takes exactly " #n " arguments");                       \
        return NULL;                                                                                           \
    }

#endif
