/* Compiled probe loop for solaris_batch.serving.index.PairIndex (same table layout and hash as
 * the numpy path, which stays as the fallback). Only the CPython buffer protocol is used. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t pair_hash(int64_t user, int64_t ad) {
    uint64_t h = ((uint64_t)user * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)ad * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 31;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 29;
    return h;
}

/* find(table int64[cap+W], keys int64[n,2], mask, users int64[q], ads int64[q], out int64[q]) */
static PyObject *find(PyObject *self, PyObject *args) {
    Py_buffer tb, kb, ub, ab, ob;
    unsigned long long mask;
    if (!PyArg_ParseTuple(args, "y*y*Ky*y*w*", &tb, &kb, &mask, &ub, &ab, &ob)) return NULL;
    const int64_t *T = tb.buf, *K = kb.buf, *U = ub.buf, *A = ab.buf;
    int64_t *out = ob.buf;
    Py_ssize_t q = ub.len / 8, tlen = tb.len / 8;
    if (ab.len != ub.len || ob.len != ub.len) {
        PyBuffer_Release(&tb); PyBuffer_Release(&kb); PyBuffer_Release(&ub); PyBuffer_Release(&ab); PyBuffer_Release(&ob);
        PyErr_SetString(PyExc_ValueError, "users, ads and out must have the same length");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    enum { AHEAD = 8 };
    for (Py_ssize_t i = 0; i < q; i++) {
        if (i + AHEAD < q)  /* overlap the DRAM misses of independent keys */
            __builtin_prefetch(&T[pair_hash(U[i + AHEAD], A[i + AHEAD]) & mask]);
        uint64_t h = pair_hash(U[i], A[i]);
        int64_t fp = (int64_t)(h >> 33);
        Py_ssize_t p = (Py_ssize_t)(h & mask);
        int64_t r = -1;
        for (; p < tlen; p++) {
            int64_t e = T[p];
            if (e < 0) break;
            if ((e >> 32) == fp) {
                int64_t row = e & 0xFFFFFFFFLL;
                if (K[2 * row] == U[i] && K[2 * row + 1] == A[i]) { r = row; break; }
            }
        }
        out[i] = r;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&tb); PyBuffer_Release(&kb); PyBuffer_Release(&ub); PyBuffer_Release(&ab); PyBuffer_Release(&ob);
    Py_RETURN_NONE;
}

/* gather(emb bytes[n*row], row_bytes, rows int64[q], out bytes[q*row]) -> hits.
 * Copies row r of emb for each r >= 0 and zero-fills the rows of misses (r < 0), in one pass. */
static PyObject *gather(PyObject *self, PyObject *args) {
    Py_buffer eb, rb, ob;
    Py_ssize_t row_bytes;
    if (!PyArg_ParseTuple(args, "y*ny*w*", &eb, &row_bytes, &rb, &ob)) return NULL;
    const char *E = eb.buf;
    const int64_t *R = rb.buf;
    char *O = ob.buf;
    Py_ssize_t q = rb.len / 8, n = row_bytes > 0 ? eb.len / row_bytes : 0, hits = 0;
    int bad = ob.len != q * row_bytes;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        enum { AHEAD = 8 };
        for (Py_ssize_t i = 0; i < q; i++) {
            if (i + AHEAD < q && R[i + AHEAD] >= 0 && R[i + AHEAD] < n)
                __builtin_prefetch(E + R[i + AHEAD] * row_bytes);
            int64_t r = R[i];
            if (r >= 0 && r < n) { memcpy(O + i * row_bytes, E + r * row_bytes, row_bytes); hits++; }
            else memset(O + i * row_bytes, 0, row_bytes);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&eb); PyBuffer_Release(&rb); PyBuffer_Release(&ob);
    if (bad) { PyErr_SetString(PyExc_ValueError, "out must hold len(rows) * row_bytes bytes"); return NULL; }
    return PyLong_FromSsize_t(hits);
}

static PyMethodDef methods[] = {{"find", find, METH_VARARGS, "probe the pair index"},
                                {"gather", gather, METH_VARARGS, "gather rows, zero-filling misses"},
                                {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_probe", NULL, -1, methods};
PyMODINIT_FUNC PyInit__probe(void) { return PyModule_Create(&module); }
