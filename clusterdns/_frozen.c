/* Makers for @frozen classes (frozen.py): an instance built in C from its field values, in
   field order, as the class's own __init__ builds it.

   The __init__ that @frozen writes is Python: a frame and one member-descriptor call per
   field, 0.8 us for a 13-field Pod. At the envelope a load builds 150,000 Pods, endpoint
   addresses and entries each; a maker stores the values straight into the instance's slots
   (0.15 us). A maker is made once per class from the slots' member descriptors, and checks
   them: each must be an object slot of that very class (a slotted class without __dict__,
   whose instances the maker allocates with the class's own tp_alloc).
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    Py_ssize_t count;
    Py_ssize_t *offsets; /* each field's slot, in field order */
    vectorcallfunc vectorcall;
} Maker;

static void maker_dealloc(Maker *m) {
    Py_XDECREF(m->cls);
    PyMem_Free(m->offsets);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyObject *maker_call(Maker *m, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != m->count || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_Format(PyExc_TypeError, "%s maker takes exactly %zd positional values", m->cls->tp_name, m->count);
        return NULL;
    }
    PyObject *obj = m->cls->tp_alloc(m->cls, 0); /* slots start NULL */
    if (obj == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++)
        *(PyObject **)((char *)obj + m->offsets[i]) = Py_NewRef(args[i]);
    return obj;
}

static PyTypeObject MakerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "clusterdns._frozen.Maker",
    .tp_basicsize = sizeof(Maker),
    .tp_dealloc = (destructor)maker_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Maker, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_doc = "maker(*values): an instance of the class with these field values",
};

/* The slot offset of descriptor `d` when it is an object slot of `cls`; -1 otherwise. */
static Py_ssize_t slot_offset(PyTypeObject *cls, PyObject *d) {
    if (!PyObject_TypeCheck(d, &PyMemberDescr_Type))
        return -1;
    PyMemberDescrObject *member = (PyMemberDescrObject *)d;
    PyMemberDef *def = member->d_member;
    if (member->d_common.d_type != cls || def->type != T_OBJECT_EX || (def->flags & READONLY))
        return -1;
    if (def->offset < (Py_ssize_t)sizeof(PyObject) || def->offset + (Py_ssize_t)sizeof(PyObject *) > cls->tp_basicsize)
        return -1;
    return def->offset;
}

static PyObject *maker(PyObject *self, PyObject *args) {
    PyTypeObject *cls;
    PyObject *names;
    if (!PyArg_ParseTuple(args, "O!O!:maker", &PyType_Type, &cls, &PyTuple_Type, &names))
        return NULL;
    /* Only object plus slots: a C base (dict, say) would have state of its own that tp_new
       sets up and this skips, and so would a __new__ (found by a review). */
    if (cls->tp_dictoffset != 0 || cls->tp_itemsize != 0 || !(cls->tp_flags & Py_TPFLAGS_HEAPTYPE) || cls->tp_base != &PyBaseObject_Type ||
        cls->tp_new != PyBaseObject_Type.tp_new) {
        PyErr_Format(PyExc_TypeError, "%s: not a slotted class of object without __dict__ or __new__", cls->tp_name);
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    Maker *m = PyObject_New(Maker, &MakerType);
    if (m == NULL)
        return NULL;
    m->cls = (PyTypeObject *)Py_NewRef(cls);
    m->count = count;
    m->vectorcall = (vectorcallfunc)maker_call;
    m->offsets = PyMem_Calloc(count ? count : 1, sizeof(Py_ssize_t));
    if (m->offsets == NULL) {
        Py_DECREF(m);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        PyObject *d = PyUnicode_Check(name) ? PyDict_GetItemWithError(cls->tp_dict, name) : NULL;
        if (d == NULL && PyErr_Occurred()) {
            Py_DECREF(m);
            return NULL;
        }
        m->offsets[i] = d == NULL ? -1 : slot_offset(cls, d);
        for (Py_ssize_t j = 0; j < i && m->offsets[i] >= 0; j++)
            if (m->offsets[j] == m->offsets[i])
                m->offsets[i] = -1; /* a field named twice */
        if (m->offsets[i] < 0) {
            PyErr_Format(PyExc_TypeError, "%s.%S: not an object slot of the class", cls->tp_name, name);
            Py_DECREF(m);
            return NULL;
        }
    }
    return (PyObject *)m;
}

static PyMethodDef methods[] = {
    {"maker", maker, METH_VARARGS, "maker(cls, field_names): a callable making instances of cls from its field values in that order"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_frozen", "Makers for @frozen classes.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__frozen(void) {
    if (PyType_Ready(&MakerType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
