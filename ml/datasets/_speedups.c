/* Native helpers for the dataset builder's per-example work.
 *
 * Each function here has a Python twin that stays the reference (ml/datasets/dedupe.py,
 * ml/datasets/formats.py); tests/ml/datasets/test_native.py holds the two to the same results.
 * Built by `pip install -e .` (setup.py); without a compiler the Python twins run instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "../json_out.h"

static PyObject *str_lower, *str_user;

/* ---- normalize ---------------------------------------------------------------------------- */

#define REPEAT_FOLD_MAX 32

/* Kept by dedupe's normalize: what `\w` matches in a str pattern, and NUL (the part separator). */
static inline int
is_kept(Py_UCS4 ch)
{
    return ch == 0 || ch == '_' || Py_UNICODE_ISALNUM(ch);
}

/* Full-width digits and letters to ASCII (only lower-case letters are left after lower()). */
static inline Py_UCS4
fold_width(Py_UCS4 ch)
{
    return (ch >= 0xFF10 && ch <= 0xFF5A) ? ch - 0xFEE0 : ch;
}

/* The parts joined by NUL, the parts' own NULs dropped: a new reference. */
static PyObject *
joined(PyObject *parts)
{
    Py_ssize_t count = PyTuple_GET_SIZE(parts);
    int has_nul = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *part = PyTuple_GET_ITEM(parts, k);
        Py_ssize_t at = PyUnicode_FindChar(part, 0, 0, PyUnicode_GET_LENGTH(part), 1);
        if (at == -2)
            return NULL;
        has_nul |= at >= 0;
    }
    if (count == 1) {
        PyObject *part = PyTuple_GET_ITEM(parts, 0);
        Py_INCREF(part);
        return part;
    }
    PyObject *separator = PyUnicode_FromOrdinal(0);
    if (separator == NULL)
        return NULL;
    PyObject *text;
    if (!has_nul) {
        text = PyUnicode_Join(separator, parts);
    }
    else {
        PyObject *empty = PyUnicode_New(0, 0), *cleaned = PyTuple_New(count);
        text = NULL;
        if (empty != NULL && cleaned != NULL) {
            Py_ssize_t k = 0;
            for (; k < count; k++) {
                PyObject *part =
                    PyUnicode_Replace(PyTuple_GET_ITEM(parts, k), separator, empty, -1);
                if (part == NULL)
                    break;
                PyTuple_SET_ITEM(cleaned, k, part);
            }
            if (k == count)
                text = PyUnicode_Join(separator, cleaned);
        }
        Py_XDECREF(empty);
        Py_XDECREF(cleaned);
    }
    Py_DECREF(separator);
    return text;
}

/* Appends to `kept` what normalize keeps of `text`, lowered one character at a time; NULs are
 * kept only when they separate parts already joined. */
static Py_ssize_t
keep_lowered(PyObject *text, int keep_nul, Py_UCS4 *kept, Py_ssize_t m, Py_UCS4 *widest)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 0x80) {
            if (ch >= 'A' && ch <= 'Z')
                ch += 'a' - 'A';
            else if (ch == 0 ? !keep_nul : ch != '_' && !Py_ISALNUM(ch))
                continue;
        }
        else if (ch < 0x4E00 || ch > 0x9FFF) { /* CJK ideographs are letters without case */
            ch = Py_UNICODE_TOLOWER(ch);
            if (!is_kept(ch))
                continue;
            ch = fold_width(ch);
        }
        kept[m++] = ch;
        if (ch > *widest)
            *widest = ch;
    }
    return m;
}

/* Whether str.lower() could map a character of the parts differently from one character at a
 * time: U+0130 (İ) lowers to two characters, U+03A3 (Σ) to ς or σ by context. */
static int
needs_full_lower(PyObject *parts)
{
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(parts); k++) {
        PyObject *part = PyTuple_GET_ITEM(parts, k);
        if (PyUnicode_MAX_CHAR_VALUE(part) < 0x130)
            continue;
        Py_ssize_t n = PyUnicode_GET_LENGTH(part);
        if (PyUnicode_FindChar(part, 0x130, 0, n, 1) != -1 ||
            PyUnicode_FindChar(part, 0x3A3, 0, n, 1) != -1)
            return 1;
    }
    return 0;
}

/* normalize(*parts) -> str: ml.datasets.dedupe.normalize_py, character for character. */
static PyObject *
normalize(PyObject *module, PyObject *parts)
{
    Py_ssize_t count = PyTuple_GET_SIZE(parts), total = count;
    if (count == 0) {
        PyErr_SetString(PyExc_TypeError, "normalize() needs at least one part");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *part = PyTuple_GET_ITEM(parts, k);
        if (!PyUnicode_Check(part)) {
            PyErr_Format(PyExc_TypeError, "normalize() takes str parts, not %.100s",
                         Py_TYPE(part)->tp_name);
            return NULL;
        }
        total += 2 * PyUnicode_GET_LENGTH(part); /* İ lowers to two characters */
    }
    Py_UCS4 small[256];
    Py_UCS4 *kept = total <= 256 ? small : PyMem_Malloc(total * sizeof(Py_UCS4));
    if (kept == NULL)
        return PyErr_NoMemory();
    Py_ssize_t m = 0;
    Py_UCS4 widest = 0;
    PyObject *result = NULL;
    if (needs_full_lower(parts)) {
        /* Rare: str.lower() on the joined text itself, final sigma and all. */
        PyObject *text = joined(parts), *lowered = NULL;
        if (text != NULL)
            lowered = PyObject_CallMethodNoArgs(text, str_lower);
        Py_XDECREF(text);
        if (lowered == NULL)
            goto done;
        m = keep_lowered(lowered, 1, kept, 0, &widest);
        Py_DECREF(lowered);
    }
    else {
        for (Py_ssize_t k = 0; k < count; k++) {
            if (k > 0)
                kept[m++] = 0;
            m = keep_lowered(PyTuple_GET_ITEM(parts, k), count == 1, kept, m, &widest);
        }
    }
    /* Short texts: a unit of one or two characters repeated back to back is kept once, as
     * re.sub(r"(.)\1+|(..)\2+", unit) does (no newline is left for "." to miss). */
    if (m <= REPEAT_FOLD_MAX) {
        Py_ssize_t out = 0, i = 0;
        while (i < m) {
            Py_UCS4 a = kept[i];
            if (i + 1 < m && kept[i + 1] == a) {
                Py_ssize_t j = i + 2;
                while (j < m && kept[j] == a)
                    j++;
                kept[out++] = a;
                i = j;
            }
            else if (i + 3 < m && kept[i + 2] == a && kept[i + 3] == kept[i + 1]) {
                Py_UCS4 b = kept[i + 1];
                Py_ssize_t j = i + 4;
                while (j + 1 < m && kept[j] == a && kept[j + 1] == b)
                    j += 2;
                kept[out++] = a;
                kept[out++] = b;
                i = j;
            }
            else {
                kept[out++] = kept[i++];
            }
        }
        m = out;
    }
    result = PyUnicode_New(m, widest);
    if (result != NULL) {
        int out_kind = PyUnicode_KIND(result);
        void *out_data = PyUnicode_DATA(result);
        for (Py_ssize_t i = 0; i < m; i++)
            PyUnicode_WRITE(out_kind, out_data, i, kept[i]);
    }
done:
    if (kept != small)
        PyMem_Free(kept);
    return result;
}

/* ---- render_line ------------------------------------------------------------------------ */

/* One buffer for every line: lines are written one at a time, under the GIL. */
static Out line_out;

#define USER_PREFIX "\xe7\x94\xa8\xe6\x88\xb7: "  /* "用户: " in UTF-8 */
#define REPLY_PREFIX "\xe5\x9b\x9e\xe5\xa4\x8d: " /* "回复: " */

/* A JSON string made of an ASCII/UTF-8 prefix and a str, as out_string writes the whole. */
static int
out_prefixed(Out *out, const char *prefix, Py_ssize_t length, PyObject *text)
{
    Py_ssize_t start = out->used;
    int done = out_string(out, text);
    if (done != 0)
        return done;
    /* Slide the string's body along and put the prefix after its opening quote. */
    if (out_reserve(out, length) < 0)
        return -1;
    char *body = out->data + start + 1;
    memmove(body + length, body, out->used - start - 1);
    memcpy(body, prefix, length);
    out->used += length;
    return 0;
}

/* The turns' (role, content) strings: 0, or 1 if a turn is not a pair of str. */
static int
check_turns(PyObject *turns)
{
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(turns); k++) {
        PyObject *turn = PyList_GET_ITEM(turns, k);
        if (!PyTuple_CheckExact(turn) || PyTuple_GET_SIZE(turn) != 2 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(turn, 0)) ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(turn, 1)))
            return 1;
    }
    return 0;
}

#define ROLE(k) PyTuple_GET_ITEM(PyList_GET_ITEM(turns, (k)), 0)
#define CONTENT(k) PyTuple_GET_ITEM(PyList_GET_ITEM(turns, (k)), 1)
#define STEP(call)                                                                             \
    if ((done = (call)) != 0)                                                                  \
        return done;

static int
out_prompt_completion(Out *out, PyObject *turns)
{
    Py_ssize_t count = PyList_GET_SIZE(turns);
    int done;
    STEP(OUT_LITERAL(out, "{\"prompt\":\""));
    for (Py_ssize_t k = 0; k + 1 < count; k++) {
        int user = PyUnicode_Compare(ROLE(k), str_user) == 0;
        if (k > 0)
            STEP(OUT_LITERAL(out, "\\n"));
        STEP(user ? OUT_LITERAL(out, USER_PREFIX) : OUT_LITERAL(out, REPLY_PREFIX));
        /* The content without its quotes: it continues the prompt's string. */
        Py_ssize_t at = out->used;
        STEP(out_string(out, CONTENT(k)));
        memmove(out->data + at, out->data + at + 1, out->used - at - 2);
        out->used -= 2;
    }
    STEP(OUT_LITERAL(out, "\",\"completion\":"));
    STEP(out_prefixed(out, REPLY_PREFIX, sizeof(REPLY_PREFIX) - 1, CONTENT(count - 1)));
    return OUT_LITERAL(out, "}\n");
}

static int
out_sharegpt(Out *out, PyObject *system, PyObject *turns)
{
    int done;
    STEP(OUT_LITERAL(out, "{\"messages\":["));
    if (PyUnicode_GET_LENGTH(system)) {
        STEP(OUT_LITERAL(out, "{\"role\":\"system\",\"content\":"));
        STEP(out_string(out, system));
        STEP(OUT_LITERAL(out, "}"));
    }
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(turns); k++) {
        if (k > 0 || PyUnicode_GET_LENGTH(system))
            STEP(OUT_LITERAL(out, ","));
        STEP(OUT_LITERAL(out, "{\"role\":"));
        STEP(out_string(out, ROLE(k)));
        STEP(OUT_LITERAL(out, ",\"content\":"));
        STEP(out_string(out, CONTENT(k)));
        STEP(OUT_LITERAL(out, "}"));
    }
    return OUT_LITERAL(out, "]}\n");
}

static int
out_alpaca(Out *out, PyObject *system, PyObject *turns)
{
    Py_ssize_t count = PyList_GET_SIZE(turns);
    if (count < 2 || count % 2)
        return 1; /* not user/assistant pairs: render() says what is wrong */
    int done;
    STEP(OUT_LITERAL(out, "{\"instruction\":"));
    STEP(out_string(out, CONTENT(count - 2)));
    STEP(OUT_LITERAL(out, ",\"input\":\"\",\"output\":"));
    STEP(out_string(out, CONTENT(count - 1)));
    STEP(OUT_LITERAL(out, ",\"system\":"));
    STEP(out_string(out, system));
    STEP(OUT_LITERAL(out, ",\"history\":["));
    for (Py_ssize_t k = 0; k + 2 < count; k += 2) {
        if (k > 0)
            STEP(OUT_LITERAL(out, ","));
        STEP(OUT_LITERAL(out, "["));
        STEP(out_string(out, CONTENT(k)));
        STEP(OUT_LITERAL(out, ","));
        STEP(out_string(out, CONTENT(k + 1)));
        STEP(OUT_LITERAL(out, "]"));
    }
    return OUT_LITERAL(out, "]}\n");
}

#undef STEP
#undef CONTENT
#undef ROLE

/* render_line(format, system, turns) -> bytes or None
 *
 * orjson.dumps(formats.render(format, system, turns), option=OPT_APPEND_NEWLINE), byte for
 * byte; None where that takes Python (an unknown format, a lone surrogate, turns that are not
 * (str, str) pairs or that do not pair up for alpaca), so that render() says what is wrong.
 */
static PyObject *
render_line(PyObject *module, PyObject *args)
{
    PyObject *format, *system, *turns;
    if (!PyArg_ParseTuple(args, "UUO!:render_line", &format, &system, &PyList_Type, &turns))
        return NULL;
    if (PyList_GET_SIZE(turns) == 0 || check_turns(turns))
        Py_RETURN_NONE;
    Out *out = &line_out;
    out->used = 0;
    int done;
    if (PyUnicode_CompareWithASCIIString(format, "prompt_completion") == 0)
        done = out_prompt_completion(out, turns);
    else if (PyUnicode_CompareWithASCIIString(format, "sharegpt") == 0)
        done = out_sharegpt(out, system, turns);
    else if (PyUnicode_CompareWithASCIIString(format, "alpaca") == 0)
        done = out_alpaca(out, system, turns);
    else
        done = 1;
    if (done < 0)
        return NULL;
    if (done > 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(out->data, out->used);
}

/* ---- near duplicates ---------------------------------------------------------------------- */

/* MinHash over UTF-16 3-grams with 40 hash functions cut into 10 bands of 4, each band folded
 * into a 32-bit key: the constants and arithmetic of dedupe.MinHasher, so that keys and
 * signatures are the numpy version's to the bit. */
#define NUM_PERM 40
#define BANDS 10
#define NEAR_MIN_MATCHES 28
#define NO_TEXT UINT32_MAX

static uint32_t perm_a[NUM_PERM], perm_b[NUM_PERM];
static uint64_t band_mul[BANDS], band_salt[BANDS];

static void
minhash_init(void)
{
    for (uint32_t p = 0; p < NUM_PERM; p++) {
        perm_a[p] = ((p + 1) * 0x9E3779B1u) | 1u;
        perm_b[p] = ((p + 1) * 0x85EBCA6Bu) ^ 0xC2B2AE35u;
    }
    for (uint64_t b = 0; b < BANDS; b++) {
        band_mul[b] = ((b + 1) * 0xC2B2AE3D27D4EB4FULL) | 1u;
        band_salt[b] = (b + 1) * 0x165667B19E3779F9ULL;
    }
}

/* A text's band keys and 8-bit signature; -1 if it has fewer than three UTF-16 code units.
 * Built twice on x86-64, the loop over the 40 hash functions vectorised with AVX2 where the
 * processor has it (baseline SSE2 has no 32-bit multiply or unsigned minimum per lane). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
__attribute__((target_clones("avx2", "default")))
#endif
#endif
static int
minhash(PyObject *text, uint32_t keys[BANDS], uint8_t signature[NUM_PERM])
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    uint32_t minima[NUM_PERM];
    for (int p = 0; p < NUM_PERM; p++)
        minima[p] = UINT32_MAX;
    uint64_t window = 0; /* the last three code units, the newest in the high 16 bits */
    Py_ssize_t units = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        uint16_t pair[2];
        int count = 1;
        if (ch >= 0x10000) {
            pair[0] = (uint16_t)(0xD800 + ((ch - 0x10000) >> 10));
            pair[1] = (uint16_t)(0xDC00 + ((ch - 0x10000) & 0x3FF));
            count = 2;
        }
        else {
            pair[0] = (uint16_t)ch;
        }
        for (int k = 0; k < count; k++) {
            window = (window >> 16) | ((uint64_t)pair[k] << 32);
            if (++units < 3)
                continue;
            uint32_t gram = (uint32_t)((window * 0x9E3779B97F4A7C15ULL) >> 32);
            for (int p = 0; p < NUM_PERM; p++) {
                uint32_t hashed = perm_a[p] * gram + perm_b[p];
                if (hashed < minima[p])
                    minima[p] = hashed;
            }
        }
    }
    if (units < 3)
        return -1;
    for (int b = 0; b < BANDS; b++) {
        const uint32_t *m = minima + 4 * b;
        uint64_t low = m[0] | ((uint64_t)m[1] << 32), high = m[2] | ((uint64_t)m[3] << 32);
        keys[b] = (uint32_t)(((low * band_mul[b]) ^ high ^ band_salt[b]) >> 32);
    }
    for (int p = 0; p < NUM_PERM; p++)
        signature[p] = (uint8_t)minima[p];
    return 0;
}

/* minhash(texts) -> (keys, signatures): the bytes of MinHasher.hash's two arrays. */
static PyObject *
minhash_many(PyObject *module, PyObject *texts)
{
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "minhash() takes a list of str");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(texts);
    PyObject *keys = PyBytes_FromStringAndSize(NULL, count * BANDS * 4);
    PyObject *signatures = PyBytes_FromStringAndSize(NULL, count * NUM_PERM);
    if (keys == NULL || signatures == NULL)
        goto fail;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *text = PyList_GET_ITEM(texts, k);
        uint32_t row[BANDS];
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "minhash() takes a list of str");
            goto fail;
        }
        if (minhash(text, row, (uint8_t *)PyBytes_AS_STRING(signatures) + k * NUM_PERM) < 0) {
            PyErr_SetString(PyExc_ValueError, "every text needs at least three characters");
            goto fail;
        }
        memcpy(PyBytes_AS_STRING(keys) + k * BANDS * 4, row, sizeof(row));
    }
    return Py_BuildValue("(NN)", keys, signatures);
fail:
    Py_XDECREF(keys);
    Py_XDECREF(signatures);
    return NULL;
}

/* NearIndex: the kept texts' signatures, and band key -> the first kept text with that key, in
 * an open-addressing table (linear probing, at most 3/4 full). Texts are checked one by one, so
 * the verdicts are dedupe.NearIndexPy's by construction. */
typedef struct {
    uint32_t key, text;
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t mask, used; /* capacity - 1, filled slots */
    uint8_t *signatures;
    size_t texts, capacity; /* kept texts, signature rows allocated */
} NearIndex;

static size_t
slot_of(const NearIndex *self, uint32_t key)
{
    size_t at = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & self->mask;
    while (self->slots[at].text != NO_TEXT && self->slots[at].key != key)
        at = (at + 1) & self->mask;
    return at;
}

static int
grow_slots(NearIndex *self)
{
    size_t size = self->slots ? 2 * (self->mask + 1) : 1 << 12;
    Slot *old = self->slots;
    size_t old_size = old ? self->mask + 1 : 0;
    Slot *slots = PyMem_Malloc(size * sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < size; i++)
        slots[i].text = NO_TEXT;
    self->slots = slots;
    self->mask = size - 1;
    for (size_t i = 0; i < old_size; i++) {
        if (old[i].text != NO_TEXT)
            slots[slot_of(self, old[i].key)] = old[i];
    }
    PyMem_Free(old);
    return 0;
}

/* 1 if the text is a near copy of a kept one; else 0, and it is kept. -1 on error. */
static int
near_check(NearIndex *self, const uint32_t keys[BANDS], const uint8_t signature[NUM_PERM])
{
    uint32_t checked[BANDS];
    int candidates = 0;
    for (int b = 0; b < BANDS; b++) {
        uint32_t text = self->slots[slot_of(self, keys[b])].text;
        if (text == NO_TEXT)
            continue;
        int seen = 0;
        for (int c = 0; c < candidates; c++)
            seen |= checked[c] == text;
        if (seen)
            continue;
        checked[candidates++] = text;
        const uint8_t *kept = self->signatures + (size_t)text * NUM_PERM;
        int matches = 0;
        for (int p = 0; p < NUM_PERM; p++)
            matches += kept[p] == signature[p];
        if (matches >= NEAR_MIN_MATCHES)
            return 1;
    }
    if (self->texts == NO_TEXT) {
        PyErr_SetString(PyExc_OverflowError, "too many texts for the near-duplicate index");
        return -1;
    }
    if (self->texts == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 3 / 2 : 1024;
        uint8_t *grown = PyMem_Realloc(self->signatures, capacity * NUM_PERM);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->signatures = grown;
        self->capacity = capacity;
    }
    uint32_t number = (uint32_t)self->texts++;
    memcpy(self->signatures + (size_t)number * NUM_PERM, signature, NUM_PERM);
    for (int b = 0; b < BANDS; b++) {
        if ((self->used + 1) * 4 > (self->mask + 1) * 3 && grow_slots(self) < 0)
            return -1;
        size_t at = slot_of(self, keys[b]);
        if (self->slots[at].text == NO_TEXT) {
            self->slots[at].key = keys[b];
            self->slots[at].text = number;
            self->used++;
        }
    }
    return 0;
}

static PyObject *
NearIndex_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, ":NearIndex", names))
        return NULL;
    NearIndex *self = (NearIndex *)type->tp_alloc(type, 0);
    if (self != NULL && grow_slots(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
NearIndex_dealloc(NearIndex *self)
{
    PyMem_Free(self->slots);
    PyMem_Free(self->signatures);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* near_rows(texts) -> list of the positions of near copies, decided in order. */
static PyObject *
NearIndex_near_rows(NearIndex *self, PyObject *texts)
{
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "near_rows() takes a list of str");
        return NULL;
    }
    PyObject *rows = PyList_New(0);
    if (rows == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(texts); k++) {
        PyObject *text = PyList_GET_ITEM(texts, k);
        uint32_t keys[BANDS];
        uint8_t signature[NUM_PERM];
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "near_rows() takes a list of str");
            goto fail;
        }
        if (minhash(text, keys, signature) < 0) {
            PyErr_SetString(PyExc_ValueError, "every text needs at least three characters");
            goto fail;
        }
        int near = near_check(self, keys, signature);
        if (near < 0)
            goto fail;
        if (near) {
            PyObject *row = PyLong_FromSsize_t(k);
            if (row == NULL || PyList_Append(rows, row) < 0) {
                Py_XDECREF(row);
                goto fail;
            }
            Py_DECREF(row);
        }
    }
    return rows;
fail:
    Py_DECREF(rows);
    return NULL;
}

static PyObject *
NearIndex_len(NearIndex *self, void *closure)
{
    return PyLong_FromSize_t(self->texts);
}

static PyMethodDef NearIndex_methods[] = {
    {"near_rows", (PyCFunction)NearIndex_near_rows, METH_O,
     "near_rows(texts) -> positions of the texts that are near copies of kept ones"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef NearIndex_getset[] = {
    {"kept", (getter)NearIndex_len, NULL, "how many texts are kept", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject NearIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ml.datasets._speedups.NearIndex",
    .tp_basicsize = sizeof(NearIndex),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Near-duplicate detection over kept texts (see ml/datasets/dedupe.py).",
    .tp_new = NearIndex_new,
    .tp_dealloc = (destructor)NearIndex_dealloc,
    .tp_methods = NearIndex_methods,
    .tp_getset = NearIndex_getset,
};

/* ---- module ------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"normalize", normalize, METH_VARARGS, "normalize(*parts) -> str"},
    {"minhash", minhash_many, METH_O, "minhash(texts) -> (keys, signatures) as bytes"},
    {"render_line", render_line, METH_VARARGS,
     "render_line(format, system, turns) -> bytes or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ml.datasets._speedups",
    "Native helpers for the dataset builder: dedupe's normalize and near-duplicate index, and the JSON lines.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    str_lower = PyUnicode_InternFromString("lower");
    str_user = PyUnicode_InternFromString("user");
    if (str_lower == NULL || str_user == NULL || PyType_Ready(&NearIndexType) < 0)
        return NULL;
    minhash_init();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&NearIndexType);
    if (PyModule_AddObject(module, "NearIndex", (PyObject *)&NearIndexType) < 0) {
        Py_DECREF(&NearIndexType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
