/* Batched UDP for the hot path: recvmmsg(2) in, one Python call per datagram, sendmmsg(2) out.
 *
 * Python's socket module has recvfrom/sendto only, so every query costs two system calls
 * and an event-loop wakeup. Here one readable event drains up to BATCH datagrams per
 * system call and the replies leave together, with the client's address passed back to
 * the kernel as it came in (no conversion on the way out). Linux only; clusterdns falls
 * back to recvfrom/sendto where this module is not built (transports.py).
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#define BATCH 64          /* datagrams per recvmmsg/sendmmsg call */
#define DATAGRAM 65536    /* a UDP payload is at most 65,507 bytes: never truncated */

static char buffers[BATCH][DATAGRAM]; /* only the pages datagrams touch become resident */
static struct sockaddr_storage peers[BATCH];
static struct iovec in_iov[BATCH], out_iov[BATCH];
static struct mmsghdr in_msgs[BATCH], out_msgs[BATCH];
static int busy; /* the buffers above are shared: one serve() at a time (the event loop's thread) */

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

PyDoc_STRVAR(serve_doc,
"serve(fd, answer, rounds=8) -> (received, dropped)\n\n"
"Read the datagrams waiting on non-blocking UDP socket fd, up to rounds batches of 64;\n"
"call answer(data, peer) for each and send every bytes it returns back to that peer.\n"
"dropped counts replies the socket's full send buffer did not take.");

static PyObject *serve(PyObject *self, PyObject *args) {
    int fd, rounds = 8;
    PyObject *answer;
    if (!PyArg_ParseTuple(args, "iO|i:serve", &fd, &answer, &rounds))
        return NULL;
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError, "serve() is not reentrant");
        return NULL;
    }
    busy = 1;
    Py_ssize_t received = 0, dropped = 0;
    PyObject *replies[BATCH];
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
        int failed = 0;
        for (int i = 0; i < n; i++) {
            PyObject *data = PyBytes_FromStringAndSize(buffers[i], in_msgs[i].msg_len);
            PyObject *peer = data ? peer_tuple(&peers[i]) : NULL;
            PyObject *reply = peer ? PyObject_CallFunctionObjArgs(answer, data, peer, NULL) : NULL;
            Py_XDECREF(data);
            Py_XDECREF(peer);
            if (reply == NULL) {
                failed = 1; /* an exception: send what is ready, then raise it */
                break;
            }
            if (!PyBytes_Check(reply)) {
                Py_DECREF(reply);
                continue;
            }
            replies[count] = reply;
            out_iov[count].iov_base = PyBytes_AS_STRING(reply);
            out_iov[count].iov_len = (size_t)PyBytes_GET_SIZE(reply);
            out_msgs[count].msg_hdr.msg_name = &peers[i];
            out_msgs[count].msg_hdr.msg_namelen = in_msgs[i].msg_hdr.msg_namelen;
            count++;
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

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS, serve_doc},
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
        out_msgs[i].msg_hdr.msg_iov = &out_iov[i];
        out_msgs[i].msg_hdr.msg_iovlen = 1;
    }
}

PyMODINIT_FUNC PyInit__udpbatch(void) {
    wire_slots();
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "BATCH", BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
