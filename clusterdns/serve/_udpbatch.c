/* Batched UDP for the hot path: recvmmsg(2) in, sendmmsg(2) out, Python only when needed.
 *
 * Python's socket module has recvfrom/sendto only, so every query costs two system calls
 * and an event-loop wakeup. Here one readable event drains up to BATCH datagrams per
 * system call and the replies leave together, with the client's address passed back to
 * the kernel as it came in (no conversion on the way out). A query whose exact bytes
 * (less the ID) were answered before from the same snapshot is answered here, from the
 * listener's `known` dict, without calling into Python at all; any other goes to the
 * Python callback. Linux only; clusterdns falls back to recvfrom/sendto where this module
 * is not built (serve/udp.py).
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64          /* datagrams per recvmmsg/sendmmsg call */
#define DATAGRAM 65536    /* a UDP payload is at most 65,507 bytes: never truncated */

static char buffers[BATCH][DATAGRAM]; /* only the pages datagrams touch become resident */
static struct sockaddr_storage peers[BATCH];
static struct iovec in_iov[BATCH], out_iov[2 * BATCH]; /* a reply: [ID, tail] or [whole] */
static struct mmsghdr in_msgs[BATCH], out_msgs[BATCH];
static PyObject *replies[BATCH]; /* the bytes out_iov points into, held until they are sent */
static int busy; /* the buffers above are shared: one serve() at a time (the event loop's thread) */

/* The request-duration histogram's upper bounds (metrics.DURATION_BUCKETS), set by buckets(). */
#define MAX_BOUNDS 32
static double bounds[MAX_BOUNDS];
static int nbounds;
static PyObject *str_current; /* "current", interned */
static PyObject *one;         /* the int 1 */

/* (host, port) of an IPv4 peer. The dotted quad is written by hand: glibc's inet_ntop goes
 * through sprintf, a few % of the whole server's CPU at 300k queries/s. */
static PyObject *ipv4_tuple(const struct sockaddr_in *sin) {
    char host[INET_ADDRSTRLEN];
    const unsigned char *octet = (const unsigned char *)&sin->sin_addr;
    char *p = host;
    for (int i = 0; i < 4; i++) {
        unsigned int v = octet[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = '.';
    }
    PyObject *text = PyUnicode_FromStringAndSize(host, p - host - 1);
    PyObject *port = text ? PyLong_FromLong(ntohs(sin->sin_port)) : NULL;
    if (port == NULL) {
        Py_XDECREF(text);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(text);
        Py_DECREF(port);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, text);
    PyTuple_SET_ITEM(pair, 1, port);
    return pair;
}

/* The (host, port) tuples of recent IPv4 peers, by address and port. A client that keeps
 * its socket (a caching resolver forwarding to us, a load generator) sends from the same
 * address and port again and again; its tuple is then reused instead of built (a string,
 * an int and a tuple per datagram). Tuples are immutable, so sharing one is safe. */
#define PEER_SLOTS 64
static struct {
    uint32_t addr;
    uint16_t port;
    PyObject *tuple; /* a reference we own, or NULL */
} peer_cache[PEER_SLOTS];

/* The peer as Python's socket module spells it: (host, port) or (host, port, flow, scope). */
static PyObject *peer_tuple(const struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        uint32_t addr = sin->sin_addr.s_addr;
        uint16_t port = sin->sin_port;
        unsigned slot = (addr ^ (addr >> 16) ^ port) % PEER_SLOTS;
        if (peer_cache[slot].tuple != NULL && peer_cache[slot].addr == addr && peer_cache[slot].port == port) {
            Py_INCREF(peer_cache[slot].tuple);
            return peer_cache[slot].tuple;
        }
        PyObject *pair = ipv4_tuple(sin);
        if (pair != NULL) {
            Py_XSETREF(peer_cache[slot].tuple, Py_NewRef(pair));
            peer_cache[slot].addr = addr;
            peer_cache[slot].port = port;
        }
        return pair;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        return Py_BuildValue("(siII)", host, ntohs(sin6->sin6_port), ntohl(sin6->sin6_flowinfo), sin6->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

/* Send out_msgs[0:count]; a full send buffer drops the rest, as a lost datagram would be
 * (the client retries). Returns how many were dropped. */
static Py_ssize_t send_all(int fd, unsigned int count) {
    unsigned int sent = 0;
    while (sent < count) {
        int r = sendmmsg(fd, out_msgs + sent, count - sent, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                return (Py_ssize_t)(count - sent);
            sent++; /* this one is undeliverable (e.g. EPERM, EINVAL for its address): skip it */
            continue;
        }
        sent += (unsigned int)r;
    }
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* list[i] += delta, for the numbers in a metrics cell. */
static int add_to_item(PyObject *list, Py_ssize_t i, PyObject *delta) {
    PyObject *old = PyList_GET_ITEM(list, i);
    PyObject *sum = PyNumber_Add(old, delta);
    if (sum == NULL)
        return -1;
    PyList_SET_ITEM(list, i, sum);
    Py_DECREF(old);
    return 0;
}

/* Count one answer of `seconds` in a metrics cell: [duration sum, a count per duration
 * bucket..., the +Inf count], as ListenerStats.record does in Python. */
static int record(PyObject *cell, double seconds) {
    if (!PyList_CheckExact(cell) || PyList_GET_SIZE(cell) != nbounds + 2) {
        PyErr_SetString(PyExc_TypeError, "a metrics cell is a list of the duration sum and a count per bucket");
        return -1;
    }
    PyObject *duration = PyFloat_FromDouble(seconds);
    if (duration == NULL)
        return -1;
    int failed = add_to_item(cell, 0, duration);
    Py_DECREF(duration);
    int bucket = 0; /* the first bound >= seconds, as bisect_left finds it */
    while (bucket < nbounds && seconds > bounds[bucket])
        bucket++;
    return failed ? -1 : add_to_item(cell, 1 + bucket, one);
}

/* xorshift64* (Vigna 2016): the permutations of loadbalance need speed, not secrecy
 * (CoreDNS draws them from dns.Id(), a uint16 per swap). Seeded at import, and again in
 * every forked child (pthread_atfork, registered at import): --workers children, and
 * whatever path of theirs shuffles (serve() for UDP, reply() for TCP), would otherwise
 * all draw the parent's orders. */
static uint64_t rng_state;

static void seed_random(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rng_state = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^ 0x9E3779B97F4A7C15ULL;
}

static uint32_t next_random(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* A new bytes object: `tail` with the records of each run in `spec` permuted, as
 * loadbalance.shuffled() does in Python. `spec` is uint16 words in native order, per run:
 * the record count n, then the n + 1 record boundaries (offsets into tail). */
#define MAX_RUN 4096
static PyObject *shuffled(PyObject *tail, PyObject *spec) {
    const char *src = PyBytes_AS_STRING(tail);
    Py_ssize_t size = PyBytes_GET_SIZE(tail);
    const uint16_t *words = (const uint16_t *)PyBytes_AS_STRING(spec);
    Py_ssize_t nwords = PyBytes_GET_SIZE(spec) / 2;
    PyObject *out = PyBytes_FromStringAndSize(src, size);
    if (out == NULL)
        return NULL;
    char *dst = PyBytes_AS_STRING(out);
    static uint16_t order[MAX_RUN];
    for (Py_ssize_t at = 0; at < nwords;) {
        unsigned n = words[at];
        const uint16_t *bounds = &words[at + 1];
        at += n + 2;
        if (n > MAX_RUN || at > nwords || bounds[n] > size)
            break; /* not a spec shuffled() wrote: the rest stays in order */
        if (n < 2)
            continue;
        for (unsigned i = 0; i < n; i++)
            order[i] = (uint16_t)i;
        for (unsigned i = n - 1; i > 0; i--) { /* Fisher-Yates */
            unsigned j = next_random() % (i + 1);
            uint16_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        char *w = dst + bounds[0];
        for (unsigned i = 0; i < n; i++) {
            unsigned k = order[i];
            memcpy(w, src + bounds[k], (size_t)(bounds[k + 1] - bounds[k]));
            w += bounds[k + 1] - bounds[k];
        }
    }
    return out;
}

/* A forwarded answer kept while its cache entry is fresh (serve/timed.py): (tail, cell, runs
 * or None, ttls, born, end, counts, kind). The tail with each TTL field counted down by the
 * entry's whole seconds of age (cache/item.go toMsg), shuffled when it has runs, counted in
 * its cell and as a cache request and hit; NULL with no exception once it is not fresh, so
 * Python asks the cache again. */
#define TIMED_FIELDS 8
static PyObject *timed_reply(PyObject *entry, double started) {
    PyObject *tail = PyTuple_GET_ITEM(entry, 0), *runs = PyTuple_GET_ITEM(entry, 2), *ttls = PyTuple_GET_ITEM(entry, 3);
    PyObject *counts = PyTuple_GET_ITEM(entry, 6);
    if (!PyBytes_CheckExact(tail) || !PyBytes_CheckExact(ttls) || !PyList_CheckExact(counts) || PyList_GET_SIZE(counts) != 3
        || (runs != Py_None && !PyBytes_CheckExact(runs))) {
        PyErr_SetString(PyExc_TypeError, "a timed answer is (tail, cell, runs or None, ttls, born, end, counts, kind)");
        return NULL;
    }
    double born = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 4)), end = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 5));
    Py_ssize_t kind = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 7));
    if (PyErr_Occurred())
        return NULL;
    double t = now();
    if (t < born || t >= end || kind < 1 || kind > 2)
        return NULL;
    long age = (long)(t - born);
    Py_ssize_t size = PyBytes_GET_SIZE(tail);
    PyObject *out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(tail), size);
    if (out == NULL)
        return NULL;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    const uint32_t *pairs = (const uint32_t *)PyBytes_AS_STRING(ttls);
    for (Py_ssize_t i = 0; i + 1 < PyBytes_GET_SIZE(ttls) / 4; i += 2) {
        uint32_t at = pairs[i], stored = pairs[i + 1];
        uint32_t ttl = (long)stored > age ? stored - (uint32_t)age : 0;
        if ((Py_ssize_t)at + 4 > size)
            continue;
        dst[at] = (unsigned char)(ttl >> 24);
        dst[at + 1] = (unsigned char)(ttl >> 16);
        dst[at + 2] = (unsigned char)(ttl >> 8);
        dst[at + 3] = (unsigned char)ttl;
    }
    if (runs != Py_None) {
        PyObject *mixed = shuffled(out, runs);
        Py_DECREF(out);
        if (mixed == NULL)
            return NULL;
        out = mixed;
    }
    if (add_to_item(counts, 0, one) < 0 || add_to_item(counts, kind, one) < 0 || record(PyTuple_GET_ITEM(entry, 1), now() - started) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* The reply tail known for this query (a new reference), counted in its metrics cell;
 * NULL with no exception when it is not known. `known` maps the query's bytes less the
 * ID to (reply less the ID, metrics cell), or (reply less the ID, metrics cell, runs)
 * when loadbalance shuffles it: then every reply is a fresh permutation. */
static PyObject *known_reply(PyObject *known, const char *query, Py_ssize_t size) {
    double started = now();
    PyObject *key = PyBytes_FromStringAndSize(query + 2, size - 2);
    if (key == NULL)
        return NULL;
    PyObject *entry = PyDict_GetItemWithError(known, key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL)
        return NULL;
    Py_ssize_t fields = PyTuple_CheckExact(entry) ? PyTuple_GET_SIZE(entry) : 0;
    if (fields == TIMED_FIELDS)
        return timed_reply(entry, started);
    if ((fields != 2 && fields != 3) || !PyBytes_CheckExact(PyTuple_GET_ITEM(entry, 0))
        || (fields == 3 && !PyBytes_CheckExact(PyTuple_GET_ITEM(entry, 2)))) {
        PyErr_SetString(PyExc_TypeError, "a known answer is (reply bytes less the ID, metrics cell[, runs bytes])");
        return NULL;
    }
    PyObject *tail = fields == 3 ? shuffled(PyTuple_GET_ITEM(entry, 0), PyTuple_GET_ITEM(entry, 2))
                                 : Py_NewRef(PyTuple_GET_ITEM(entry, 0));
    if (tail == NULL)
        return NULL;
    if (record(PyTuple_GET_ITEM(entry, 1), now() - started) < 0) {
        Py_DECREF(tail);
        return NULL;
    }
    return tail;
}

/* Whether `known` answers for the handler's current snapshot, `known_for`: a reload swaps
 * handler.current, and from then on only the Python callback answers until the listener
 * has a `known` dict for the new snapshot. Returns -1 on error. */
static int known_is_current(PyObject *handler, PyObject *known_for) {
    PyObject *current = PyObject_GetAttr(handler, str_current);
    if (current == NULL)
        return -1;
    int same = current == known_for;
    Py_DECREF(current);
    return same;
}

/* Reply number `n` of this batch (a reference it takes) goes to the sender of datagram
 * `slot`: `reply` whole, or after the query's own ID (the first two bytes still in its
 * buffer) when it is a known reply's tail. */
static void queue_reply(unsigned int n, int slot, PyObject *reply, int after_id) {
    struct iovec *iov = &out_iov[2 * n];
    replies[n] = reply;
    if (after_id) {
        iov->iov_base = buffers[slot];
        iov->iov_len = 2;
        iov++;
    }
    iov->iov_base = PyBytes_AS_STRING(reply);
    iov->iov_len = (size_t)PyBytes_GET_SIZE(reply);
    out_msgs[n].msg_hdr.msg_iovlen = after_id ? 2 : 1;
    out_msgs[n].msg_hdr.msg_name = &peers[slot];
    out_msgs[n].msg_hdr.msg_namelen = in_msgs[slot].msg_hdr.msg_namelen;
}

PyDoc_STRVAR(serve_doc,
"serve(fd, answer, handler=None, known=None, known_for=None, rounds=8) -> (received, dropped)\n\n"
"Read the datagrams waiting on non-blocking UDP socket fd, up to rounds batches of 64,\n"
"and send each its reply. A query whose bytes less the ID are a key of the dict known\n"
"is answered with the query's ID and that entry's reply tail (and counted in its cell),\n"
"while handler.current is known_for; any other goes to answer(data, peer), and every\n"
"bytes it returns is sent back to that peer. dropped counts replies the socket's full\n"
"send buffer did not take.");

static PyObject *serve(PyObject *self, PyObject *args) {
    int fd, rounds = 8;
    PyObject *answer, *handler = Py_None, *known = Py_None, *known_for = Py_None;
    if (!PyArg_ParseTuple(args, "iO|OOOi:serve", &fd, &answer, &handler, &known, &known_for, &rounds))
        return NULL;
    if (known != Py_None && !PyDict_CheckExact(known)) {
        PyErr_SetString(PyExc_TypeError, "known must be a dict");
        return NULL;
    }
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError, "serve() is not reentrant");
        return NULL;
    }
    busy = 1;
    Py_ssize_t received = 0, dropped = 0;
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < BATCH; i++)
            in_msgs[i].msg_hdr.msg_namelen = sizeof peers[i]; /* the kernel wrote the last one's length */
        int n = recvmmsg(fd, in_msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            continue; /* a pending ICMP error for an earlier reply (ECONNREFUSED...): read on */
        }
        received += n;
        unsigned int count = 0;
        /* Only Python code can swap the snapshot (under the GIL, which this loop holds), so
         * the check is needed once per batch and again after each callback. */
        int use_known = known != Py_None ? known_is_current(handler, known_for) : 0;
        int failed = use_known < 0;
        for (int i = 0; i < n && !failed; i++) {
            Py_ssize_t size = (Py_ssize_t)in_msgs[i].msg_len;
            PyObject *reply = NULL;
            if (use_known && size >= 12) {
                reply = known_reply(known, buffers[i], size);
                if (reply != NULL) {
                    queue_reply(count++, i, reply, 1);
                    continue;
                }
                if (PyErr_Occurred()) {
                    failed = 1;
                    break;
                }
            }
            PyObject *data = PyBytes_FromStringAndSize(buffers[i], size);
            PyObject *peer = data ? peer_tuple(&peers[i]) : NULL;
            reply = peer ? PyObject_CallFunctionObjArgs(answer, data, peer, NULL) : NULL;
            Py_XDECREF(data);
            Py_XDECREF(peer);
            if (reply == NULL) {
                failed = 1; /* an exception: send what is ready, then raise it */
                break;
            }
            if (known != Py_None && (use_known = known_is_current(handler, known_for)) < 0) {
                Py_DECREF(reply);
                failed = 1;
                break;
            }
            if (!PyBytes_Check(reply)) {
                Py_DECREF(reply);
                continue;
            }
            queue_reply(count++, i, reply, 0);
        }
        dropped += send_all(fd, count);
        for (unsigned int j = 0; j < count; j++)
            Py_DECREF(replies[j]);
        if (failed) {
            busy = 0;
            return NULL;
        }
        if (n < BATCH)
            break; /* drained: back to the event loop */
    }
    busy = 0;
    return Py_BuildValue("(nn)", received, dropped);
}

PyDoc_STRVAR(reply_doc,
"reply(known, query) -> bytes or None\n\n"
"What serve() sends for one query it finds in the dict known, for a listener that reads\n"
"its queries itself (TCP): the kept reply less the ID (shuffled, or with its TTLs counted\n"
"down, as kept), counted in its metrics cell; None when nothing fresh is kept.");

static PyObject *reply(PyObject *self, PyObject *args) {
    PyObject *known;
    Py_buffer query;
    if (!PyArg_ParseTuple(args, "O!y*:reply", &PyDict_Type, &known, &query))
        return NULL;
    PyObject *tail = query.len >= 12 ? known_reply(known, (const char *)query.buf, query.len) : NULL;
    PyBuffer_Release(&query);
    if (tail == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return tail;
}

PyDoc_STRVAR(buckets_doc,
"buckets(bounds)\n\n"
"The upper bounds of the request-duration histogram that known answers are counted in.");

static PyObject *set_buckets(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "bounds must be a sequence of numbers");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_BOUNDS) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "at most %d bounds", MAX_BOUNDS);
    }
    double values[MAX_BOUNDS];
    for (Py_ssize_t i = 0; i < n; i++) {
        values[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (values[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    memcpy(bounds, values, sizeof(double) * (size_t)n);
    nbounds = (int)n;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS, serve_doc},
    {"reply", reply, METH_VARARGS, reply_doc},
    {"buckets", set_buckets, METH_O, buckets_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_udpbatch", "Batched UDP receive and send (recvmmsg/sendmmsg) for the hot path.", -1, methods,
};

/* What never changes between calls: each slot's buffer, address and iovec. No control
 * messages are asked for or sent, so the rest of each msghdr stays zero (static storage). */
static void wire_slots(void) {
    for (int i = 0; i < BATCH; i++) {
        in_iov[i].iov_base = buffers[i];
        in_iov[i].iov_len = DATAGRAM;
        in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
        in_msgs[i].msg_hdr.msg_iovlen = 1;
        in_msgs[i].msg_hdr.msg_name = &peers[i];
        out_msgs[i].msg_hdr.msg_iov = &out_iov[2 * i];
        out_msgs[i].msg_hdr.msg_iovlen = 1;
    }
}

PyMODINIT_FUNC PyInit__udpbatch(void) {
    wire_slots();
    seed_random();
    if (pthread_atfork(NULL, NULL, seed_random) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
        return NULL;
    }
    str_current = PyUnicode_InternFromString("current");
    one = PyLong_FromLong(1);
    if (str_current == NULL || one == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "BATCH", BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
