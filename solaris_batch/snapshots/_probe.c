/* Compiled lookup for solaris_batch.serving: probe the PairIndex table and gather embedding rows
 * in one pass (same table layout and hash as the numpy path in index.py, which stays as the
 * fallback). Only the CPython buffer protocol is used.
 *
 * Keys flow through a software pipeline so their DRAM misses overlap instead of following one
 * another: key i + AHEAD_SLOT is hashed and its home slot prefetched; key i + AHEAD_ROW reads its
 * slot (arrived by then), picks the candidate row by fingerprint and prefetches that row's key and
 * embedding lines; key i is verified and copied. A rolling pipeline keeps ~3 lines per key in
 * flight at all times (measured 1.5x faster than stage-by-stage groups of 32 keys). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#ifndef AHEAD_SLOT
#define AHEAD_SLOT 16
#endif
#ifndef AHEAD_ROW
#define AHEAD_ROW 8
#endif
enum { RING = 64 };  /* > AHEAD_SLOT */
enum { SMALL_MAX = 1024 };  /* one-user requests hash groups up to this many rows, else bisect */

static inline unsigned small_hash(int64_t ad, unsigned bits) {
    return (unsigned)(((uint64_t)ad * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}

static inline uint64_t pair_hash(int64_t user, int64_t ad) {
    uint64_t h = ((uint64_t)user * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)ad * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 31;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 29;
    return h;
}

/* First slot at or after p whose entry has fingerprint fp (its position), or -1 at an empty slot.
 * Every slot is bounds-checked here, whatever the mask the caller was given: a table or mask read
 * from storage can be wrong, and a wrong one must give misses, never a read outside the table. */
static inline Py_ssize_t scan(const int64_t *T, Py_ssize_t tlen, Py_ssize_t p, int64_t fp) {
    if (p < 0) return -1;
    for (; p < tlen; p++) {
        int64_t e = T[p];
        if (e < 0) return -1;
        if ((e >> 32) == fp) return p;
    }
    return -1;
}

/* Copies row r; rows of misses keep the zeros of the one bulk memset done first (one large memset
 * writes whole cache lines fast, where hundreds of 128-byte ones each pay a read-for-ownership). */
static inline void copy_row(char *o, const char *E, int64_t r, Py_ssize_t row_bytes) {
    if (r < 0) return;
    if (row_bytes == 128) memcpy(o, E + r * 128, 128);  /* d = 64 float16: inlined */
    else memcpy(o, E + r * row_bytes, row_bytes);
}

/* lookup(table int64[cap+W], keys int64[n,2], mask, users int64[q], ads int64[q], rows_out int64[q],
 *        hit_out bool[q], emb bytes[n*row_bytes], row_bytes, emb_out bytes[q*row_bytes]) -> hits
 * rows_out gets each pair's row or -1 and hit_out whether it was found (either may be empty: not
 * written); with row_bytes > 0, emb_out gets the rows, zeros for misses. */
static PyObject *lookup(PyObject *self, PyObject *args) {
    Py_buffer tb, kb, ub, ab, rb, hb, eb, ob;
    unsigned long long mask;
    Py_ssize_t row_bytes;
    if (!PyArg_ParseTuple(args, "y*y*Ky*y*w*w*y*nw*", &tb, &kb, &mask, &ub, &ab, &rb, &hb, &eb, &row_bytes, &ob))
        return NULL;
    const int64_t *T = tb.buf, *K = kb.buf, *U = ub.buf, *A = ab.buf;
    const char *E = eb.buf;
    int64_t *R = rb.len ? rb.buf : NULL;
    uint8_t *H = hb.len ? hb.buf : NULL;
    char *O = ob.buf;
    Py_ssize_t q = ub.len / 8, tlen = tb.len / 8, n = kb.len / 16, hits = 0;
    const char *err = NULL;
    if (ab.len != ub.len || (R && rb.len != ub.len) || (H && hb.len != q))
        err = "users, ads, rows_out and hit_out (where given) must have the same length";
    else if (row_bytes < 0 || (row_bytes > 0 && (eb.len != n * row_bytes || ob.len != q * row_bytes)))
        err = "emb must hold len(keys) rows and emb_out len(users) rows of row_bytes bytes";
    if (!err) {
        Py_BEGIN_ALLOW_THREADS
        if (row_bytes) memset(O, 0, q * row_bytes);
        Py_ssize_t pos[RING];
        int64_t fp[RING];
        for (Py_ssize_t i = -AHEAD_SLOT; i < q; i++) {
            Py_ssize_t j = i + AHEAD_SLOT;  /* stage 1: hash key j, prefetch its home slot */
            if (j < q) {
                uint64_t h = pair_hash(U[j], A[j]), slot = h & mask;
                pos[j % RING] = slot < (uint64_t)tlen ? (Py_ssize_t)slot : -1;  /* out of the table: a miss */
                fp[j % RING] = (int64_t)(h >> 33);
                if (pos[j % RING] >= 0) __builtin_prefetch(&T[pos[j % RING]]);
            }
            j = i + AHEAD_ROW;  /* stage 2: key j's slot has arrived: prefetch its candidate row */
            if (j >= 0 && j < q) {
                Py_ssize_t p = scan(T, tlen, pos[j % RING], fp[j % RING]);
                pos[j % RING] = p;
                if (p >= 0) {
                    int64_t row = T[p] & 0xFFFFFFFFLL;
                    if (row < n) {
                        __builtin_prefetch(&K[2 * row]);
                        if (row_bytes) {
                            uintptr_t e = (uintptr_t)(E + row * row_bytes);  /* each line of the row */
                            for (uintptr_t b = e & ~(uintptr_t)63; b < e + row_bytes; b += 64)
                                __builtin_prefetch((const void *)b);
                        }
                    }
                }
            }
            if (i < 0) continue;
            Py_ssize_t p = pos[i % RING];  /* stage 3: verify key i, copy its row */
            int64_t r = -1;
            while (p >= 0) {  /* a fingerprint clash continues the probe (rare) */
                int64_t row = T[p] & 0xFFFFFFFFLL;
                if (row < n && K[2 * row] == U[i] && K[2 * row + 1] == A[i]) { r = row; break; }
                p = scan(T, tlen, p + 1, fp[i % RING]);
            }
            if (R) R[i] = r;
            if (H) H[i] = r >= 0;
            if (row_bytes) copy_row(O + i * row_bytes, E, r, row_bytes);
            hits += r >= 0;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&tb); PyBuffer_Release(&kb); PyBuffer_Release(&ub); PyBuffer_Release(&ab);
    PyBuffer_Release(&rb); PyBuffer_Release(&hb); PyBuffer_Release(&eb); PyBuffer_Release(&ob);
    if (err) { PyErr_SetString(PyExc_ValueError, err); return NULL; }
    return PyLong_FromSsize_t(hits);
}

/* lookup_user(user_table, mask, segments int64[s,4], keys, emb, row_bytes, users int64[q], ads int64[q],
 *             rows_out, hit_out, emb_out) -> hits, or None when the users differ.
 * For rows grouped by user with ads sorted in each group: segments holds (user, 0, start, end) per
 * group and user_table indexes its (user, 0) pairs; one probe finds the user's rows [start, end),
 * then each ad is looked up among those few rows, which stay in cache. */
static PyObject *lookup_user(PyObject *self, PyObject *args) {
    Py_buffer sb, gb, kb, eb, ub, ab, rb, hb, ob;
    unsigned long long mask;
    Py_ssize_t row_bytes;
    if (!PyArg_ParseTuple(args, "y*Ky*y*y*ny*y*w*w*w*", &sb, &mask, &gb, &kb, &eb, &row_bytes, &ub, &ab, &rb, &hb, &ob))
        return NULL;
    const int64_t *ST = sb.buf, *SG = gb.buf, *K = kb.buf, *U = ub.buf, *A = ab.buf;
    const char *E = eb.buf;
    int64_t *R = rb.len ? rb.buf : NULL;
    uint8_t *H = hb.len ? hb.buf : NULL;
    char *O = ob.buf;
    Py_ssize_t q = ub.len / 8, n = kb.len / 16, ns = gb.len / 32, tlen = sb.len / 8, hits = 0;
    const char *err = NULL;
    int same = 1;
    if (ab.len != ub.len || (R && rb.len != ub.len) || (H && hb.len != q))
        err = "users, ads, rows_out and hit_out (where given) must have the same length";
    else if (row_bytes <= 0 || eb.len != n * row_bytes || ob.len != q * row_bytes)
        err = "emb must hold len(keys) rows and emb_out len(users) rows of row_bytes bytes";
    if (!err && q) {
        Py_BEGIN_ALLOW_THREADS
        uint64_t h = pair_hash(U[0], 0), slot = h & mask;
        Py_ssize_t p = slot < (uint64_t)tlen ? (Py_ssize_t)slot : -1;  /* out of the table: a miss */
        int64_t fp = (int64_t)(h >> 33), s = 0, e = 0;
        if (p >= 0) __builtin_prefetch(&ST[p]);  /* in flight while the users are checked */
        for (Py_ssize_t i = 1; i < q && same; i++) same = U[i] == U[0];
        if (same) {
            memset(O, 0, q * row_bytes);
            for (p = scan(ST, tlen, p, fp); p >= 0; p = scan(ST, tlen, p + 1, fp)) {
                int64_t g = ST[p] & 0xFFFFFFFFLL;
                if (g < ns && SG[4 * g] == U[0]) {
                    s = SG[4 * g + 2], e = SG[4 * g + 3];
                    if (s < 0 || e > n || s > e) s = e = 0;  /* bounds out of the keys: no rows */
                    break;
                }
            }
            /* the user's rows are contiguous: fetch their keys, then embeddings, while the searches run */
            for (const char *c = (const char *)(K + 2 * s); c < (const char *)(K + 2 * e); c += 64) __builtin_prefetch(c);
            for (const char *c = E + s * row_bytes; c < E + e * row_bytes; c += 64) __builtin_prefetch(c);
            const int64_t *seg = K + 2 * s + 1;  /* the user's ads, stride 2 */
            /* up to SMALL_MAX ads: a per-request hash table of them (load <= 1/8, in L1), so an
             * absent candidate, the common case, costs one look at an empty slot */
            int16_t small[8 * SMALL_MAX];
            int use_small = e - s <= SMALL_MAX;
            unsigned bits = 4;
            while (use_small && (1 << bits) < 8 * (e - s)) bits++;
            unsigned wrap = (1u << bits) - 1;
            if (use_small) {
                memset(small, -1, sizeof(int16_t) << bits);
                for (int64_t j = 0; j < e - s; j++) {
                    unsigned h = small_hash(seg[2 * j], bits);
                    while (small[h] >= 0) h = (h + 1) & wrap;
                    small[h] = (int16_t)j;
                }
            }
            for (Py_ssize_t i = 0; i < q; i++) {
                int64_t ad = A[i], r = -1;
                if (use_small) {
                    for (unsigned h = small_hash(ad, bits); small[h] >= 0; h = (h + 1) & wrap)
                        if (seg[2 * small[h]] == ad) { r = s + small[h]; break; }
                } else if (e > s) {  /* branchless lower bound: no mispredictions, ads of a request overlap */
                    const int64_t *b = seg;
                    for (int64_t len = e - s; len > 1; len -= len >> 1)
                        b = b[2 * (len >> 1)] < ad ? b + 2 * (len >> 1) : b;
                    b += 2 * (*b < ad);
                    int64_t j = s + (b - seg) / 2;
                    r = j < e && *b == ad ? j : -1;
                }
                if (R) R[i] = r;
                if (H) H[i] = r >= 0;
                copy_row(O + i * row_bytes, E, r, row_bytes);
                hits += r >= 0;
            }
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&sb); PyBuffer_Release(&gb); PyBuffer_Release(&kb); PyBuffer_Release(&eb);
    PyBuffer_Release(&ub); PyBuffer_Release(&ab); PyBuffer_Release(&rb); PyBuffer_Release(&hb); PyBuffer_Release(&ob);
    if (err) { PyErr_SetString(PyExc_ValueError, err); return NULL; }
    if (!same || !q) Py_RETURN_NONE;
    return PyLong_FromSsize_t(hits);
}

static PyMethodDef methods[] = {{"lookup_user", lookup_user, METH_VARARGS, "one user's pairs via its row group"},
                                {"lookup", lookup, METH_VARARGS, "probe the pair index and gather rows"},
                                {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_probe", NULL, -1, methods};
PyMODINIT_FUNC PyInit__probe(void) { return PyModule_Create(&module); }
