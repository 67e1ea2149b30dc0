/* A YAML stream's documents built in C from libyaml's events: yaml_fast.load_stream's plain path.

   PyYAML's C loader hands every libyaml event to Python as an object with two Marks, and
   yaml_fast._document then builds the data from them in Python: 10,000 Services and
   Deployments (920,000 events) took 1.06 s of CPU that way, of which libyaml's own parsing
   is 0.12 s. This builds the same dicts, lists and scalars straight from the events.

   Only plain data: an explicit tag, an anchor or alias, a directive, a parse error or a
   scalar the resolver will not construct (a merge key `<<`, say) makes load() return None,
   and the caller reads the stream in Python as before: its result or its error. A plain
   scalar (YAML 1.1: `yes`, `0o17`, `1e3`, `~`, ...) is resolved by the Python callable
   configure() was given, once per distinct value, only when its first character can start
   a non-string; every other scalar is a str. So the documents are the ones PyYAML's safe
   loading gives.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <yaml.h>

static PyObject *resolver;            /* callable(str) -> value, raising for "not plain" */
static PyObject *resolved;            /* dict: plain scalar -> its value, bounded */
static unsigned char may_resolve[256]; /* first bytes that can start a non-string */
#define RESOLVED_MAX 20000
/* Deeper than this, the Python reading decides: the libyaml PyYAML bundles refuses
   nesting past 1000 levels (yaml_set_max_nest_level), the 0.2.5 linked here does not. */
#define MAX_DEPTH 256

typedef struct {
    PyObject *container; /* borrowed: the parent holds it (the root: `root`) */
    PyObject *key;       /* owned: a mapping's key waiting for its value, or NULL */
} Frame;

typedef struct {
    Frame *frames;
    Py_ssize_t depth, size;
} Stack;

static int push(Stack *s, PyObject *container) {
    if (s->depth >= MAX_DEPTH)
        return -1;
    if (s->depth == s->size) {
        Py_ssize_t size = s->size ? s->size * 2 : 32;
        Frame *grown = PyMem_Realloc(s->frames, size * sizeof(Frame));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->frames = grown;
        s->size = size;
    }
    s->frames[s->depth].container = container;
    s->frames[s->depth].key = NULL;
    s->depth++;
    return 0;
}

static void clear(Stack *s) {
    for (Py_ssize_t i = 0; i < s->depth; i++)
        Py_CLEAR(s->frames[i].key);
    s->depth = 0;
}

/* A scalar event's value: a str, or what the resolver makes of a plain one. NULL with an
   exception set on failure (the caller gives up on the stream). */
static PyObject *scalar(yaml_event_t *event) {
    const char *text = (const char *)event->data.scalar.value;
    size_t length = event->data.scalar.length;
    PyObject *value = PyUnicode_DecodeUTF8(text, (Py_ssize_t)length, "strict");
    /* An untagged non-plain scalar (quoted, literal, folded) is a str (PyYAML's resolve()
       skips the implicit resolvers unless implicit[0], the plain flag). */
    if (value == NULL || !event->data.scalar.plain_implicit || (length && !may_resolve[(unsigned char)text[0]]))
        return value;
    PyObject *found = PyDict_GetItemWithError(resolved, value);
    if (found != NULL) {
        Py_INCREF(found);
        Py_DECREF(value);
        return found;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(value);
        return NULL;
    }
    found = PyObject_CallOneArg(resolver, value);
    if (found != NULL) {
        if (PyDict_GET_SIZE(resolved) >= RESOLVED_MAX)
            PyDict_Clear(resolved);
        if (PyDict_SetItem(resolved, value, found) < 0)
            Py_CLEAR(found);
    }
    Py_DECREF(value);
    return found;
}

/* Put `value` (a reference this steals) into the open container, or make it the root.
   0, or -1 when it cannot be: an exception set, or none for "not plain" (a mapping or
   sequence as a key). */
static int place(Stack *s, PyObject **root, PyObject *value) {
    if (s->depth == 0) {
        Py_XSETREF(*root, value);
        return 0;
    }
    Frame *top = &s->frames[s->depth - 1];
    if (PyList_CheckExact(top->container)) {
        int failed = PyList_Append(top->container, value);
        Py_DECREF(value);
        return failed;
    }
    if (top->key == NULL) {
        if (PyDict_CheckExact(value) || PyList_CheckExact(value)) { /* unhashable key */
            Py_DECREF(value);
            return -1;
        }
        top->key = value;
        return 0;
    }
    int failed = PyDict_SetItem(top->container, top->key, value); /* a repeated key: the last wins, as in PyYAML */
    Py_CLEAR(top->key);
    Py_DECREF(value);
    return failed;
}

/* One event into the document being built: 1 when it was the document's end, 0 to go on,
   -1 to give up (an exception set, or none for "not plain"). */
static int build(yaml_event_t *event, Stack *s, PyObject **root) {
    PyObject *value;
    switch (event->type) {
    case YAML_SCALAR_EVENT:
        if (event->data.scalar.tag != NULL || event->data.scalar.anchor != NULL)
            return -1;
        value = scalar(event);
        if (value == NULL)
            return -1;
        return place(s, root, value);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (event->type == YAML_SEQUENCE_START_EVENT ? (event->data.sequence_start.tag || event->data.sequence_start.anchor)
                                                     : (event->data.mapping_start.tag || event->data.mapping_start.anchor))
            return -1;
        value = event->type == YAML_SEQUENCE_START_EVENT ? PyList_New(0) : PyDict_New();
        if (value == NULL)
            return -1;
        Py_INCREF(value); /* one for the container it goes into, one held while it is open */
        if (place(s, root, value) < 0 || push(s, value) < 0) {
            Py_DECREF(value);
            return -1;
        }
        Py_DECREF(value); /* its container (or `root`) holds it now */
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (s->depth == 0)
            return -1;
        s->depth--;
        Py_CLEAR(s->frames[s->depth].key);
        return 0;
    case YAML_DOCUMENT_END_EVENT:
        return 1;
    default: /* an alias, or a stream or document start out of place */
        return -1;
    }
}

/* One document after its DOCUMENT-START: (line of its content, data), or NULL with
   *not_plain set. */
static PyObject *document(yaml_parser_t *parser, int *not_plain) {
    Stack stack = {NULL, 0, 0};
    PyObject *root = NULL, *item = NULL;
    long line = -1;
    yaml_event_t event;
    for (;;) {
        if (!yaml_parser_parse(parser, &event)) {
            *not_plain = 1; /* an error: PyYAML's reading says which */
            break;
        }
        if (line < 0)
            line = (long)event.start_mark.line + 1;
        int done = build(&event, &stack, &root);
        yaml_event_delete(&event);
        if (done < 0) {
            *not_plain = 1;
            break;
        }
        if (done == 1) {
            item = Py_BuildValue("(lO)", line, root ? root : Py_None);
            if (item == NULL)
                *not_plain = 1;
            break;
        }
    }
    clear(&stack);
    PyMem_Free(stack.frames);
    Py_XDECREF(root);
    return item;
}

static PyObject *load(PyObject *self, PyObject *text) {
    if (resolver == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    Py_ssize_t size;
    const char *data = PyUnicode_AsUTF8AndSize(text, &size);
    if (data == NULL) { /* not encodable (a lone surrogate): PyYAML's reading says so */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return PyErr_NoMemory();
    /* No yaml_parser_set_encoding: libyaml's detection finds UTF-8 (these bytes cannot start
       with a UTF-16 BOM) and skips a leading BOM, as it does for PyYAML's CParser. */
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, (size_t)size);
    PyObject *documents = PyList_New(0);
    int not_plain = 0;
    yaml_event_t event;
    while (documents != NULL && !not_plain) {
        if (!yaml_parser_parse(&parser, &event)) {
            not_plain = 1;
            break;
        }
        yaml_event_type_t type = event.type;
        int directives = type == YAML_DOCUMENT_START_EVENT &&
                         (event.data.document_start.version_directive || event.data.document_start.tag_directives.start);
        yaml_event_delete(&event);
        if (type == YAML_STREAM_END_EVENT)
            break;
        if (type == YAML_STREAM_START_EVENT)
            continue;
        if (type != YAML_DOCUMENT_START_EVENT || directives) {
            not_plain = 1;
            break;
        }
        PyObject *item = document(&parser, &not_plain);
        if (item != NULL && PyList_Append(documents, item) < 0)
            not_plain = 1;
        Py_XDECREF(item);
    }
    yaml_parser_delete(&parser);
    if (not_plain || documents == NULL) {
        /* A failure (the resolver's "not plain", a parse error, no memory): the stream is read
           in Python instead, which gives its result or its error. An interrupt is not one. */
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
            Py_XDECREF(documents);
            return NULL;
        }
        PyErr_Clear();
        Py_XDECREF(documents);
        Py_RETURN_NONE;
    }
    return documents;
}

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *resolve, *first;
    if (!PyArg_ParseTuple(args, "OO!:configure", &resolve, &PyBytes_Type, &first))
        return NULL;
    if (!PyCallable_Check(resolve)) {
        PyErr_SetString(PyExc_TypeError, "resolve must be callable");
        return NULL;
    }
    memset(may_resolve, 0, sizeof may_resolve);
    for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(first); i++)
        may_resolve[(unsigned char)PyBytes_AS_STRING(first)[i]] = 1;
    Py_INCREF(resolve);
    Py_XSETREF(resolver, resolve);
    if (resolved == NULL && (resolved = PyDict_New()) == NULL)
        return NULL;
    PyDict_Clear(resolved);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(resolve, first_bytes): the plain-scalar resolver, and the first bytes of plain scalars that may not be strings"},
    {"load", load, METH_O, "load(text) -> [(line of content, data), ...] per document, or None: read it in Python"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_yamlstream", "YAML documents built from libyaml's events.", -1, methods};

PyMODINIT_FUNC PyInit__yamlstream(void) { return PyModule_Create(&module); }
