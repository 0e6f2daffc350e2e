/*
 * Native readers for the two export layouts that carry most messages: MemoTrace's TXT and
 * MemoTrace's CSV (and, at the end, the JSON lines that `weft parse` prints). Each takes one
 * buffer of decoded text and returns the messages in it, built
 * exactly as the Python readers in formats/txt.py and formats/csvfmt.py build them; those stay
 * the reference (tests compare the two on the fixture corpus and on generated input) and the
 * fallback where this module is not compiled. Anything rare (a non-text body, a system notice,
 * a timestamp that is not plain digits, an hour with a DST change) is handed to the Python
 * callables that the state object carries, so the rules live in one place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>

#include "../json_out.h"

/* ---- CRC-32, bit-identical to zlib.crc32 ------------------------------------------------- */

static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

/* zlib.crc32(text.encode(), crc): the UTF-8 bytes are produced on the fly. */
static int
crc_text(PyObject *text, uint32_t *crc)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    uint32_t c = ~*crc;
#define CRC_BYTE(b) (c = crc_table[(c ^ (b)) & 0xff] ^ (c >> 8))
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 0x80) {
            CRC_BYTE(ch);
        }
        else if (ch < 0x800) {
            CRC_BYTE(0xC0 | (ch >> 6));
            CRC_BYTE(0x80 | (ch & 0x3F));
        }
        else if (ch < 0x10000) {
            if (ch >= 0xD800 && ch <= 0xDFFF) {
                /* A lone surrogate: let str.encode raise the error Python would. */
                PyObject *encoded = PyUnicode_AsUTF8String(text);
                Py_XDECREF(encoded);
                if (encoded == NULL)
                    return -1;
            }
            CRC_BYTE(0xE0 | (ch >> 12));
            CRC_BYTE(0x80 | ((ch >> 6) & 0x3F));
            CRC_BYTE(0x80 | (ch & 0x3F));
        }
        else {
            CRC_BYTE(0xF0 | (ch >> 18));
            CRC_BYTE(0x80 | ((ch >> 12) & 0x3F));
            CRC_BYTE(0x80 | ((ch >> 6) & 0x3F));
            CRC_BYTE(0x80 | (ch & 0x3F));
        }
    }
#undef CRC_BYTE
    *crc = ~c;
    return 0;
}

/* ---- state shared with Python -------------------------------------------------------------- */

static PyObject *str_text, *str_member, *str_epoch, *str_first, *str_seen, *str_refer;
static PyObject *str_local_id, *str_chat_id, *str_system, *str_recall, *str_empty;
static PyObject *str_utcoffset;

/* A borrowed-free attribute fetch: a new reference, or NULL with the error set. */
static PyObject *
attr(PyObject *state, const char *name)
{
    return PyObject_GetAttrString(state, name);
}

static int
attr_ssize(PyObject *state, const char *name, Py_ssize_t *out)
{
    PyObject *value = attr(state, name);
    if (value == NULL)
        return -1;
    *out = value == Py_None ? -1 : PyLong_AsSsize_t(value);
    Py_DECREF(value);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static int
attr_longlong(PyObject *state, const char *name, long long *out)
{
    PyObject *value = attr(state, name);
    if (value == NULL)
        return -1;
    *out = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* KeyMaker's state for the current second, carried between buffers. */
typedef struct {
    PyObject *owner;     /* the KeyMaker */
    long long epoch;
    PyObject *first;     /* str or NULL */
    PyObject *seen;      /* dict or NULL */
} Keys;

static int
keys_load(Keys *keys, PyObject *owner)
{
    keys->owner = owner;
    keys->first = keys->seen = NULL;
    PyObject *epoch = PyObject_GetAttr(owner, str_epoch);
    if (epoch == NULL)
        return -1;
    keys->epoch = PyLong_AsLongLong(epoch);
    Py_DECREF(epoch);
    if (keys->epoch == -1 && PyErr_Occurred())
        return -1;
    keys->first = PyObject_GetAttr(owner, str_first);
    if (keys->first == NULL)
        return -1;
    PyObject *seen = PyObject_GetAttr(owner, str_seen);
    if (seen == NULL)
        return -1;
    if (seen == Py_None)
        Py_DECREF(seen);
    else
        keys->seen = seen;
    return 0;
}

static int
keys_store(Keys *keys)
{
    int result = 0;
    PyObject *epoch = PyLong_FromLongLong(keys->epoch);
    if (epoch == NULL || PyObject_SetAttr(keys->owner, str_epoch, epoch) < 0 ||
        PyObject_SetAttr(keys->owner, str_first, keys->first ? keys->first : str_empty) < 0 ||
        PyObject_SetAttr(keys->owner, str_seen, keys->seen ? keys->seen : Py_None) < 0)
        result = -1;
    Py_XDECREF(epoch);
    return result;
}

static void
keys_clear(Keys *keys)
{
    Py_CLEAR(keys->first);
    Py_CLEAR(keys->seen);
}

/* "h:<epoch>:<crc>", numbered within its second as KeyMaker.hashed does. */
static char *
write_digits(char *at, unsigned long long value)
{
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (count)
        *at++ = digits[--count];
    return at;
}

static PyObject *
hashed_key(Keys *keys, long long epoch, uint32_t crc)
{
    /* PyUnicode_FromFormat goes through vsprintf: writing the digits here is much faster. */
    char text[64], *at = text;
    *at++ = 'h';
    *at++ = ':';
    if (epoch < 0) {
        *at++ = '-';
        at = write_digits(at, 0ULL - (unsigned long long)epoch);
    }
    else {
        at = write_digits(at, (unsigned long long)epoch);
    }
    *at++ = ':';
    at = write_digits(at, crc);
    PyObject *key = PyUnicode_New(at - text, 127);
    if (key == NULL)
        return NULL;
    memcpy(PyUnicode_1BYTE_DATA(key), text, at - text);
    if (epoch != keys->epoch) {
        keys->epoch = epoch;
        Py_XSETREF(keys->first, Py_NewRef(key));
        Py_CLEAR(keys->seen);
        return key;
    }
    if (keys->seen == NULL) {
        keys->seen = PyDict_New();
        PyObject *one = PyLong_FromLong(1);
        if (keys->seen == NULL || one == NULL ||
            PyDict_SetItem(keys->seen, keys->first ? keys->first : str_empty, one) < 0) {
            Py_XDECREF(one);
            Py_DECREF(key);
            return NULL;
        }
        Py_DECREF(one);
    }
    PyObject *count = PyDict_GetItemWithError(keys->seen, key);
    if (count == NULL && PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    long seen = count == NULL ? 0 : PyLong_AsLong(count);
    PyObject *next = PyLong_FromLong(seen + 1);
    if (next == NULL || PyDict_SetItem(keys->seen, key, next) < 0) {
        Py_XDECREF(next);
        Py_DECREF(key);
        return NULL;
    }
    Py_DECREF(next);
    if (seen == 0)
        return key;
    PyObject *numbered = PyUnicode_FromFormat("%U:%ld", key, seen);
    Py_DECREF(key);
    return numbered;
}

/* ParsedMessage is a NamedTuple: filled in place, without a Python-level __new__. */
static PyObject *
new_message(PyTypeObject *type, PyObject *sender, PyObject *sender_id, PyObject *when,
            PyObject *text, PyObject *kind, PyObject *is_self, PyObject *raw, PyObject *key)
{
    PyObject *message = type->tp_alloc(type, 8);
    if (message == NULL)
        return NULL;
    PyObject *items[8] = {sender, sender_id, when, text, kind, is_self, raw, key};
    for (int i = 0; i < 8; i++)
        PyTuple_SET_ITEM(message, i, Py_NewRef(items[i]));
    /* Holding no container the collector tracks, a message cannot be part of a cycle; the
     * collector would untrack it on its first pass anyway (as it does any such tuple), but
     * not before traversing a million of them. */
    if (!PyObject_GC_IsTracked(raw))
        PyObject_GC_UnTrack(message);
    return message;
}

/* The aware datetime of a second inside an hour that starts at `start` (a datetime, or None
 * where the hour holds a DST change: then `from_epoch(epoch)`). Same as start + timedelta. */
typedef struct {
    PyObject *start;    /* borrowed from the hour cache */
    PyObject *tz;
    int whole;          /* start is at minute 0, second 0 */
    int year, month, day, hour;
} Hour;

static int
hour_set(Hour *hour, PyObject *start)
{
    hour->start = start;
    hour->whole = 0;
    if (start == Py_None)
        return 0;
    if (!PyDateTime_Check(start)) {
        PyErr_SetString(PyExc_TypeError, "an hour must start at a datetime or None");
        return -1;
    }
    hour->tz = PyDateTime_DATE_GET_TZINFO(start);
    hour->whole = PyDateTime_DATE_GET_MINUTE(start) == 0 &&
                  PyDateTime_DATE_GET_SECOND(start) == 0 &&
                  PyDateTime_DATE_GET_MICROSECOND(start) == 0;
    hour->year = PyDateTime_GET_YEAR(start);
    hour->month = PyDateTime_GET_MONTH(start);
    hour->day = PyDateTime_GET_DAY(start);
    hour->hour = PyDateTime_DATE_GET_HOUR(start);
    return 0;
}

static PyObject *
hour_datetime(Hour *hour, long long epoch, int offset, PyObject *from_epoch, PyObject *deltas)
{
    if (hour->start == Py_None) {
        PyObject *seconds = PyLong_FromLongLong(epoch);
        if (seconds == NULL)
            return NULL;
        PyObject *when = PyObject_CallOneArg(from_epoch, seconds);
        Py_DECREF(seconds);
        return when;
    }
    if (hour->whole)
        return PyDateTimeAPI->DateTime_FromDateAndTime(
            hour->year, hour->month, hour->day, hour->hour, offset / 60, offset % 60, 0,
            hour->tz, PyDateTimeAPI->DateTimeType);
    return PyNumber_Add(hour->start, PyTuple_GET_ITEM(deltas, offset));
}

/* ---- MemoTrace TXT ------------------------------------------------------------------------- */

/* One header: "\n[ \t]*\n" gap, "YYYY-MM-DD HH:MM:SS", an optional space, the name line. */
typedef struct {
    Py_ssize_t gap, stamp, name, name_end;
    int year, month, day, hour, minute, second;
    long long order;     /* the stamp as one number, to check the order of headers */
} Head;

#define CH(i) PyUnicode_READ(kind, data, (i))
#define DIGIT(i) ((Py_UCS4)(CH(i) - '0') <= 9)
#define NUM2(i) ((int)(CH(i) - '0') * 10 + (int)(CH((i) + 1) - '0'))

/* Whether a MemoTrace stamp starts at i: \d{4}-[01]\d-[0-3]\d [0-2]\d:[0-5]\d:[0-5]\d */
static int
stamp_at(int kind, const void *data, Py_ssize_t n, Py_ssize_t i, Head *head)
{
    if (i + 19 > n)
        return 0;
    if (!(DIGIT(i) && DIGIT(i + 1) && DIGIT(i + 2) && DIGIT(i + 3) && CH(i + 4) == '-' &&
          (CH(i + 5) == '0' || CH(i + 5) == '1') && DIGIT(i + 6) && CH(i + 7) == '-' &&
          CH(i + 8) >= '0' && CH(i + 8) <= '3' && DIGIT(i + 9) && CH(i + 10) == ' ' &&
          CH(i + 11) >= '0' && CH(i + 11) <= '2' && DIGIT(i + 12) && CH(i + 13) == ':' &&
          CH(i + 14) >= '0' && CH(i + 14) <= '5' && DIGIT(i + 15) && CH(i + 16) == ':' &&
          CH(i + 17) >= '0' && CH(i + 17) <= '5' && DIGIT(i + 18)))
        return 0;
    head->year = NUM2(i) * 100 + NUM2(i + 2);
    head->month = NUM2(i + 5);
    head->day = NUM2(i + 8);
    head->hour = NUM2(i + 11);
    head->minute = NUM2(i + 14);
    head->second = NUM2(i + 17);
    head->order = ((((head->year * 100LL + head->month) * 100 + head->day) * 100 + head->hour) *
                       100 + head->minute) * 100 + head->second;
    return 1;
}

/* The headers of a buffer, as the Python reader's regular expression finds them. */
static Py_ssize_t
find_heads(int kind, const void *data, Py_ssize_t n, Head **out)
{
    Py_ssize_t count = 0, size = 256;
    Head *heads = PyMem_Malloc(size * sizeof(Head));
    if (heads == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t i = 0;
    while (i < n) {
        if (CH(i) != '\n') {
            i++;
            continue;
        }
        Py_ssize_t j = i + 1;
        while (j < n && (CH(j) == ' ' || CH(j) == '\t'))
            j++;
        Head head;
        if (!(j < n && CH(j) == '\n' && stamp_at(kind, data, n, j + 1, &head))) {
            i++;
            continue;
        }
        head.gap = i;
        head.stamp = j + 1;
        Py_ssize_t name = j + 20;
        if (name < n && CH(name) == ' ')
            name++;
        Py_ssize_t end = name;
        while (end < n && CH(end) != '\n')
            end++;
        head.name = name;
        head.name_end = end;
        if (count == size) {
            size *= 2;
            Head *grown = PyMem_Realloc(heads, size * sizeof(Head));
            if (grown == NULL) {
                PyMem_Free(heads);
                PyErr_NoMemory();
                return -1;
            }
            heads = grown;
        }
        heads[count++] = head;
        i = end;
    }
    *out = heads;
    return count;
}

static int
is_trailing(Py_UCS4 ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n';
}

/* A body's first character after which it may be something other than plain text. */
static int
is_special_first(Py_UCS4 ch)
{
    return ch == '[' || ch == ' ' || ch == '\t' || ch == 0x300C; /* 「 */
}

typedef struct {
    PyTypeObject *message;
    PyObject *hour, *senders, *sender, *body, *bare, *from_epoch, *deltas;
    PyObject *self_name, *member, *keys;
    long long system_crc;
} TxtState;

static void
txt_state_clear(TxtState *s)
{
    Py_CLEAR(s->message);
    Py_CLEAR(s->hour);
    Py_CLEAR(s->senders);
    Py_CLEAR(s->sender);
    Py_CLEAR(s->body);
    Py_CLEAR(s->bare);
    Py_CLEAR(s->from_epoch);
    Py_CLEAR(s->deltas);
    Py_CLEAR(s->self_name);
    Py_CLEAR(s->member);
    Py_CLEAR(s->keys);
}

static int
txt_state_load(TxtState *s, PyObject *state)
{
    memset(s, 0, sizeof(*s));
    PyObject *crc;
    if (!(s->message = (PyTypeObject *)attr(state, "message")) || !(s->hour = attr(state, "hour")) ||
        !(s->senders = attr(state, "senders")) || !(s->sender = attr(state, "sender")) ||
        !(s->body = attr(state, "body")) || !(s->bare = attr(state, "bare")) ||
        !(s->from_epoch = attr(state, "from_epoch")) || !(s->deltas = attr(state, "deltas")) ||
        !(s->self_name = attr(state, "self_name")) || !(s->member = attr(state, "member")) ||
        !(s->keys = attr(state, "keys")) || !(crc = attr(state, "system_crc")))
        return -1;
    s->system_crc = PyLong_AsLongLong(crc);
    Py_DECREF(crc);
    if (!PyType_Check(s->message) || !PyDict_Check(s->senders) || !PyTuple_Check(s->deltas) ||
        PyTuple_GET_SIZE(s->deltas) != 3600) {
        PyErr_SetString(PyExc_TypeError, "bad reader state");
        return -1;
    }
    return PyErr_Occurred() ? -1 : 0;
}

/* (kind, text, raw, sender, sender_crc, is_self) of one TXT record: new references. */
static int
txt_record(TxtState *s, PyObject *buf, Py_ssize_t name, Py_ssize_t name_end, Py_ssize_t start,
           Py_ssize_t end, PyObject **kind_out, PyObject **text, PyObject **raw,
           PyObject **sender, uint32_t *sender_crc, PyObject **is_self)
{
    int kind = PyUnicode_KIND(buf);
    const void *data = PyUnicode_DATA(buf);
    PyObject *name_text = PyUnicode_Substring(buf, name, name_end);
    if (name_text == NULL)
        return -1;
    if (end > start && is_trailing(CH(end - 1))) {
        while (end > start && Py_UNICODE_ISSPACE(CH(end - 1)))
            end--;
    }
    if (end <= start) {
        /* A header with no body: a system notice. */
        PyObject *described = PyObject_CallOneArg(s->bare, name_text);
        Py_DECREF(name_text);
        if (described == NULL)
            return -1;
        if (!PyTuple_Check(described) || PyTuple_GET_SIZE(described) != 4) {
            Py_DECREF(described);
            PyErr_SetString(PyExc_TypeError, "bare() must return 4 items");
            return -1;
        }
        *kind_out = Py_NewRef(PyTuple_GET_ITEM(described, 0));
        *text = Py_NewRef(PyTuple_GET_ITEM(described, 1));
        *raw = Py_NewRef(PyTuple_GET_ITEM(described, 2));
        *sender = Py_NewRef(PyTuple_GET_ITEM(described, 3));
        Py_DECREF(described);
        *sender_crc = (uint32_t)s->system_crc;
        *is_self = Py_NewRef(Py_None);
        return 0;
    }
    PyObject *body = PyUnicode_Substring(buf, start + 1, end);
    if (body == NULL) {
        Py_DECREF(name_text);
        return -1;
    }
    Py_ssize_t refer = -1;
    int plain = end > start + 1 && !is_special_first(CH(start + 1));
    if (plain) {
        refer = PyUnicode_Find(body, str_refer, 0, PyUnicode_GET_LENGTH(body), 1);
        if (refer == -2)
            goto fail_body;
    }
    if (plain && refer < 0) {
        *kind_out = Py_NewRef(str_text);
        *text = body;
        *raw = PyDict_New();
        if (*raw == NULL)
            goto fail_out;
    }
    else {
        PyObject *described = PyObject_CallOneArg(s->body, body);
        Py_DECREF(body);
        if (described == NULL) {
            Py_DECREF(name_text);
            return -1;
        }
        if (!PyTuple_Check(described) || PyTuple_GET_SIZE(described) != 3) {
            Py_DECREF(described);
            Py_DECREF(name_text);
            PyErr_SetString(PyExc_TypeError, "body() must return 3 items");
            return -1;
        }
        *kind_out = Py_NewRef(PyTuple_GET_ITEM(described, 0));
        *text = Py_NewRef(PyTuple_GET_ITEM(described, 1));
        *raw = Py_NewRef(PyTuple_GET_ITEM(described, 2));
        Py_DECREF(described);
    }
    PyObject *known = PyDict_GetItemWithError(s->senders, name_text);
    if (known == NULL) {
        if (PyErr_Occurred())
            goto fail_described;
        known = PyObject_CallOneArg(s->sender, name_text);
    }
    else {
        Py_INCREF(known);
    }
    Py_DECREF(name_text);
    name_text = NULL;
    if (known == NULL)
        goto fail_described;
    if (!PyTuple_Check(known) || PyTuple_GET_SIZE(known) != 2) {
        Py_DECREF(known);
        PyErr_SetString(PyExc_TypeError, "sender() must return 2 items");
        goto fail_described;
    }
    *sender = Py_NewRef(PyTuple_GET_ITEM(known, 0));
    *sender_crc = (uint32_t)PyLong_AsUnsignedLongMask(PyTuple_GET_ITEM(known, 1));
    Py_DECREF(known);
    if (s->self_name == Py_None) {
        *is_self = Py_NewRef(Py_None);
    }
    else {
        int same = PyObject_RichCompareBool(*sender, s->self_name, Py_EQ);
        if (same < 0) {
            Py_CLEAR(*sender);
            goto fail_described;
        }
        *is_self = Py_NewRef(same ? Py_True : Py_False);
    }
    return 0;

fail_described:
    Py_XDECREF(name_text);
    Py_CLEAR(*kind_out);
    Py_CLEAR(*text);
    Py_CLEAR(*raw);
    return -1;
fail_out:
    Py_CLEAR(*kind_out);
    Py_CLEAR(*text);
    Py_DECREF(name_text);
    return -1;
fail_body:
    Py_DECREF(body);
    Py_DECREF(name_text);
    return -1;
}

/* memotrace_txt(buffer, eof, state) -> (messages, consumed, headers) or None
 *
 * The messages of the headers in `buffer`, all but the last unless `eof` (its body may go on
 * in the next chunk); `consumed` is where the unread rest starts, `headers` how many headers
 * the buffer holds; state.last_epoch becomes the epoch of the last message. None asks the
 * caller to read this buffer with the Python reader: a header whose time is not real or is
 * earlier than the one before belongs in the previous body (or, in an hour repeated by a DST
 * fall-back, in its second pass), and those rules stay in one place.
 */
static PyObject *
memotrace_txt(PyObject *module, PyObject *args)
{
    PyObject *buf, *state;
    int eof;
    if (!PyArg_ParseTuple(args, "UpO:memotrace_txt", &buf, &eof, &state))
        return NULL;
    int kind = PyUnicode_KIND(buf);
    const void *data = PyUnicode_DATA(buf);
    Py_ssize_t n = PyUnicode_GET_LENGTH(buf);
    Head *heads = NULL;
    Py_ssize_t count = find_heads(kind, data, n, &heads);
    if (count < 0)
        return NULL;
    if (count == 0) {
        PyMem_Free(heads);
        PyObject *empty = PyList_New(0);
        return empty ? Py_BuildValue("(Nnn)", empty, eof ? n : (Py_ssize_t)0, (Py_ssize_t)0)
                     : NULL;
    }
    TxtState s;
    Keys keys = {0};
    PyObject *messages = NULL, *hours = NULL, *last = NULL, *result = NULL;
    long long previous;
    if (txt_state_load(&s, state) < 0 || attr_longlong(state, "last_epoch", &previous) < 0)
        goto done;
    /* Check every header first: each hour real, the times in order, as wall-clock times and
     * as epochs (a step back in epochs is a DST change: the Python reader sorts it out). */
    hours = PyList_New(count);
    if (hours == NULL)
        goto done;
    {
        long long last_hour = -1, last_order = -1;
        for (Py_ssize_t k = 0; k < count; k++) {
            Head *head = &heads[k];
            if (head->order < last_order) {
                Py_CLEAR(hours);
                result = Py_NewRef(Py_None);
                goto done;
            }
            last_order = head->order;
            long long hour_key = head->order / 10000;
            if (hour_key != last_hour) {
                PyObject *key = PyUnicode_Substring(buf, head->stamp, head->stamp + 13);
                if (key == NULL)
                    goto done;
                PyObject *found = PyObject_CallOneArg(s.hour, key);
                Py_DECREF(key);
                if (found == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_ValueError))
                        goto done;
                    PyErr_Clear();
                    Py_CLEAR(hours);
                    result = Py_NewRef(Py_None);
                    goto done;
                }
                if (!PyTuple_Check(found) || PyTuple_GET_SIZE(found) != 2) {
                    Py_DECREF(found);
                    PyErr_SetString(PyExc_TypeError, "hour() must return (epoch, start)");
                    goto done;
                }
                Py_XSETREF(last, found);
                last_hour = hour_key;
            }
            long long base = PyLong_AsLongLong(PyTuple_GET_ITEM(last, 0));
            if (base == -1 && PyErr_Occurred())
                goto done;
            long long epoch = base + head->minute * 60 + head->second;
            if (epoch < previous) {
                Py_CLEAR(hours);
                result = Py_NewRef(Py_None);
                goto done;
            }
            previous = epoch;
            PyList_SET_ITEM(hours, k, Py_NewRef(last));
        }
    }
    Py_ssize_t emit = eof ? count : count - 1;
    long long emitted = LLONG_MIN;
    messages = PyList_New(0);
    if (messages == NULL || keys_load(&keys, s.keys) < 0)
        goto done;
    for (Py_ssize_t k = 0; k < emit; k++) {
        Head *head = &heads[k];
        PyObject *found = PyList_GET_ITEM(hours, k);
        long long base = PyLong_AsLongLong(PyTuple_GET_ITEM(found, 0));
        if (base == -1 && PyErr_Occurred())
            goto done;
        Hour hour;
        if (hour_set(&hour, PyTuple_GET_ITEM(found, 1)) < 0)
            goto done;
        int offset = head->minute * 60 + head->second;
        long long epoch = emitted = base + offset;
        PyObject *when = hour_datetime(&hour, epoch, offset, s.from_epoch, s.deltas);
        if (when == NULL)
            goto done;
        Py_ssize_t end = k + 1 < count ? heads[k + 1].gap : n;
        PyObject *kind_obj = NULL, *text = NULL, *raw = NULL, *sender = NULL, *is_self = NULL;
        uint32_t crc;
        if (txt_record(&s, buf, head->name, head->name_end, head->name_end, end, &kind_obj,
                       &text, &raw, &sender, &crc, &is_self) < 0) {
            Py_DECREF(when);
            goto done;
        }
        PyObject *key = NULL, *message = NULL;
        if ((s.member == Py_None || PyObject_SetItem(raw, str_member, s.member) == 0) &&
            crc_text(text, &crc) == 0 && (key = hashed_key(&keys, epoch, crc)) != NULL)
            message = new_message(s.message, sender, Py_None, when, text, kind_obj, is_self,
                                  raw, key);
        Py_XDECREF(key);
        Py_DECREF(when);
        Py_DECREF(kind_obj);
        Py_DECREF(text);
        Py_DECREF(raw);
        Py_DECREF(sender);
        Py_DECREF(is_self);
        if (message == NULL || PyList_Append(messages, message) < 0) {
            Py_XDECREF(message);
            goto done;
        }
        Py_DECREF(message);
    }
    if (keys_store(&keys) < 0)
        goto done;
    if (emit > 0) {
        PyObject *value = PyLong_FromLongLong(emitted);
        int stored = value != NULL && PyObject_SetAttrString(state, "last_epoch", value) == 0;
        Py_XDECREF(value);
        if (!stored)
            goto done;
    }
    result = Py_BuildValue("(Onn)", messages, eof ? n : heads[count - 1].gap, count);
done:
    keys_clear(&keys);
    txt_state_clear(&s);
    Py_XDECREF(last);
    Py_XDECREF(hours);
    Py_XDECREF(messages);
    PyMem_Free(heads);
    return result;
}

/* ---- MemoTrace CSV ------------------------------------------------------------------------- */

/* One record's fields as csv.reader (excel dialect, non-strict) gives them. An unquoted field
 * is a span of the buffer; a quoted one is unquoted into `chars`. */
typedef struct {
    PyObject *buf;
    int kind;
    const void *data;
    Py_UCS4 *chars;
    Py_ssize_t used, size;
    Py_ssize_t *bounds; /* per field: start, end, and 1 if in chars (else in buf) */
    Py_ssize_t fields, capacity;
} Record;

static int
record_reserve(Record *r, Py_ssize_t more)
{
    if (r->used + more <= r->size)
        return 0;
    Py_ssize_t size = r->size ? r->size : 4096;
    while (size < r->used + more)
        size *= 2;
    Py_UCS4 *grown = PyMem_Realloc(r->chars, size * sizeof(Py_UCS4));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    r->chars = grown;
    r->size = size;
    return 0;
}

static int
record_field(Record *r, Py_ssize_t start, Py_ssize_t end, int in_chars)
{
    if (r->fields == r->capacity) {
        Py_ssize_t capacity = r->capacity ? r->capacity * 2 : 32;
        Py_ssize_t *grown = PyMem_Realloc(r->bounds, 3 * capacity * sizeof(Py_ssize_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->bounds = grown;
        r->capacity = capacity;
    }
    Py_ssize_t *field = r->bounds + 3 * r->fields++;
    field[0] = start;
    field[1] = end;
    field[2] = in_chars;
    return 0;
}

static Py_ssize_t
field_length(Record *r, Py_ssize_t index)
{
    if (index < 0 || index >= r->fields)
        return 0;
    return r->bounds[3 * index + 1] - r->bounds[3 * index];
}

static Py_UCS4
field_char(Record *r, Py_ssize_t index, Py_ssize_t at)
{
    Py_ssize_t *field = r->bounds + 3 * index;
    if (field[2])
        return r->chars[field[0] + at];
    return PyUnicode_READ(r->kind, r->data, field[0] + at);
}

static PyObject *
record_str(Record *r, Py_ssize_t index)
{
    if (index < 0 || index >= r->fields)
        return Py_NewRef(str_empty);
    Py_ssize_t *field = r->bounds + 3 * index;
    if (field[2])
        return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, r->chars + field[0],
                                         field[1] - field[0]);
    return PyUnicode_Substring(r->buf, field[0], field[1]);
}

/* The last few values of a column that repeats from row to row (sender, wxid, chat id),
 * reused instead of building the same str again for every row. */
#define RECENT 4
typedef struct {
    PyObject *values[RECENT];
    int next;
} Recent;

static PyObject *
record_recent(Record *r, Py_ssize_t index, Recent *recent)
{
    Py_ssize_t length = field_length(r, index);
    for (int k = 0; k < RECENT; k++) {
        PyObject *value = recent->values[k];
        if (value == NULL || PyUnicode_GET_LENGTH(value) != length)
            continue;
        int kind = PyUnicode_KIND(value);
        const void *data = PyUnicode_DATA(value);
        Py_ssize_t at = 0;
        while (at < length && PyUnicode_READ(kind, data, at) == field_char(r, index, at))
            at++;
        if (at == length)
            return Py_NewRef(value);
    }
    PyObject *value = record_str(r, index);
    if (value == NULL)
        return NULL;
    Py_XSETREF(recent->values[recent->next], Py_NewRef(value));
    recent->next = (recent->next + 1) % RECENT;
    return value;
}

static void
recent_clear(Recent *recent)
{
    for (int k = 0; k < RECENT; k++)
        Py_CLEAR(recent->values[k]);
}

/* Whether field `index` is exactly the one character `ch`. */
static int
record_is(Record *r, Py_ssize_t index, Py_UCS4 ch)
{
    return field_length(r, index) == 1 && field_char(r, index, 0) == ch;
}

/* The first i >= from where the buffer holds a or b (n if none): one loop per string kind. */
static Py_ssize_t
find_either(int kind, const void *data, Py_ssize_t from, Py_ssize_t n, Py_UCS4 a, Py_UCS4 b)
{
    Py_ssize_t i = from;
#define FIND_EITHER(T)                                                                         \
    {                                                                                          \
        const T *p = (const T *)data;                                                          \
        while (i < n && p[i] != a && p[i] != b)                                                \
            i++;                                                                               \
    }
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        FIND_EITHER(Py_UCS1);
        break;
    case PyUnicode_2BYTE_KIND:
        FIND_EITHER(Py_UCS2);
        break;
    default:
        FIND_EITHER(Py_UCS4);
    }
#undef FIND_EITHER
    return i;
}

/* Reads one record from buf[*pos:]. 1: a record (pos moves past it), 0: the buffer ends inside
 * it and more text is coming, -1: an error, -2: a field over `limit` characters (csv.reader's
 * field_size_limit; *line says on which line), -3: a delimiter after `max_fields` fields (the
 * Python reader's check, see csvfmt._Fields). */
static int
read_record(Record *r, Py_ssize_t n, Py_ssize_t *pos, int eof, Py_UCS4 delimiter,
            Py_ssize_t limit, Py_ssize_t max_fields, Py_ssize_t *line)
{
    int kind = r->kind;
    const void *data = r->data;
    r->used = r->fields = 0;
    Py_ssize_t i = *pos, lines = 0;
    if (i < n && CH(i) == '\n') { /* an empty line: a record without fields */
        *pos = i + 1;
        *line += 1;
        return 1;
    }
    for (;;) { /* at the start of a field */
        if (i == n) {
            if (!eof)
                return 0;
            if (record_field(r, i, i, 0) < 0)
                return -1;
            goto end_of_data;
        }
        if (CH(i) != '"') {
            /* Unquoted: up to the delimiter or the end of the line (a quote is just text). */
            Py_ssize_t start = i;
            i = find_either(kind, data, i, n, delimiter, '\n');
            if (i - start > limit)
                goto too_long;
            if (i == n && !eof)
                return 0;
            if (record_field(r, start, i, 0) < 0)
                return -1;
            if (i == n)
                goto end_of_data;
            if (CH(i++) == '\n')
                goto end_of_line;
            if (r->fields >= max_fields)
                return -3;
            continue;
        }
        /* Quoted: "" is a quote; after the closing quote, text up to the delimiter joins the
         * field (csv.reader's non-strict mode). */
        Py_ssize_t start = r->used;
        int closed = 0;
        i++;
        for (;;) {
            Py_ssize_t from = i;
            i = closed ? find_either(kind, data, i, n, delimiter, '\n')
                       : find_either(kind, data, i, n, '"', '"');
            if (r->used - start + (i - from) > limit) {
                /* csv.reader stops at the first character over the limit: count lines to it */
                for (Py_ssize_t k = from; k < from + limit - (r->used - start); k++)
                    lines += CH(k) == '\n';
                goto too_long;
            }
            if (record_reserve(r, i - from) < 0)
                return -1;
            for (Py_ssize_t k = from; k < i; k++) {
                Py_UCS4 ch = CH(k);
                lines += ch == '\n';
                r->chars[r->used++] = ch;
            }
            if (i == n) {
                if (!eof)
                    return 0;
                if (record_field(r, start, r->used, 1) < 0)
                    return -1;
                goto end_of_data;
            }
            Py_UCS4 ch = CH(i);
            if (!closed) { /* at a quote: an escaped quote, or the closing one */
                if (i + 1 < n && CH(i + 1) == '"') {
                    if (r->used - start >= limit)
                        goto too_long;
                    if (record_reserve(r, 1) < 0)
                        return -1;
                    r->chars[r->used++] = '"';
                    i += 2;
                    continue;
                }
                if (i + 1 == n && !eof)
                    return 0;
                closed = 1;
                i++;
                continue;
            }
            /* after the closing quote, at the delimiter or the end of the line */
            if (record_field(r, start, r->used, 1) < 0)
                return -1;
            i++;
            if (ch == '\n')
                goto end_of_line;
            if (r->fields >= max_fields)
                return -3;
            break;
        }
    }
end_of_data:
    *pos = n;
    *line += lines + 1;
    return 1;
end_of_line:
    *pos = i;
    *line += lines + 1;
    return 1;
too_long:
    *line += lines + 1;
    return -2;
}

typedef struct {
    PyTypeObject *message;
    PyObject *hour, *from_epoch, *deltas, *epoch_of, *describe, *self_name, *member, *keys;
    PyObject *csv_error;
    Py_UCS4 delimiter;
    Py_ssize_t width, limit, max_fields;
    Py_ssize_t i_type, i_self, i_time, i_content, i_sub, i_local, i_talker;
    Py_ssize_t i_strtime, i_remark, i_nick, i_wxid;
} CsvState;

static void
csv_state_clear(CsvState *s)
{
    Py_CLEAR(s->message);
    Py_CLEAR(s->hour);
    Py_CLEAR(s->from_epoch);
    Py_CLEAR(s->deltas);
    Py_CLEAR(s->epoch_of);
    Py_CLEAR(s->describe);
    Py_CLEAR(s->self_name);
    Py_CLEAR(s->member);
    Py_CLEAR(s->keys);
    Py_CLEAR(s->csv_error);
}

static int
csv_state_load(CsvState *s, PyObject *state)
{
    memset(s, 0, sizeof(*s));
    PyObject *delimiter;
    if (!(s->message = (PyTypeObject *)attr(state, "message")) ||
        !(s->hour = attr(state, "hour")) || !(s->from_epoch = attr(state, "from_epoch")) ||
        !(s->deltas = attr(state, "deltas")) || !(s->epoch_of = attr(state, "epoch_of")) ||
        !(s->describe = attr(state, "describe")) || !(s->self_name = attr(state, "self_name")) ||
        !(s->member = attr(state, "member")) || !(s->keys = attr(state, "keys")) ||
        !(s->csv_error = attr(state, "csv_error")) || !(delimiter = attr(state, "delimiter")))
        return -1;
    int ok = PyUnicode_Check(delimiter) && PyUnicode_GET_LENGTH(delimiter) == 1;
    if (ok)
        s->delimiter = PyUnicode_READ_CHAR(delimiter, 0);
    Py_DECREF(delimiter);
    if (!ok || !PyType_Check(s->message) || !PyTuple_Check(s->deltas) ||
        PyTuple_GET_SIZE(s->deltas) != 3600) {
        PyErr_SetString(PyExc_TypeError, "bad reader state");
        return -1;
    }
    if (attr_ssize(state, "width", &s->width) < 0 || attr_ssize(state, "limit", &s->limit) < 0 ||
        attr_ssize(state, "max_fields", &s->max_fields) < 0 ||
        attr_ssize(state, "i_type", &s->i_type) < 0 ||
        attr_ssize(state, "i_self", &s->i_self) < 0 ||
        attr_ssize(state, "i_time", &s->i_time) < 0 ||
        attr_ssize(state, "i_content", &s->i_content) < 0 ||
        attr_ssize(state, "i_sub", &s->i_sub) < 0 ||
        attr_ssize(state, "i_local", &s->i_local) < 0 ||
        attr_ssize(state, "i_talker", &s->i_talker) < 0 ||
        attr_ssize(state, "i_strtime", &s->i_strtime) < 0 ||
        attr_ssize(state, "i_remark", &s->i_remark) < 0 ||
        attr_ssize(state, "i_nick", &s->i_nick) < 0 ||
        attr_ssize(state, "i_wxid", &s->i_wxid) < 0)
        return -1;
    return 0;
}

/* Epoch seconds of CreateTime: plain ASCII digits here (as clock.plain_epoch), anything else
 * through epoch_of. Past 9999-12-30 in milliseconds is out of range: epoch_of refuses it. */
static int
csv_epoch(CsvState *s, Record *r, long long *epoch)
{
    Py_ssize_t length = field_length(r, s->i_time);
    if (length >= 1 && length <= 15) {
        long long value = 0;
        Py_ssize_t k = 0;
        for (; k < length; k++) {
            Py_UCS4 ch = field_char(r, s->i_time, k);
            if (ch < '0' || ch > '9')
                break;
            value = value * 10 + (ch - '0');
        }
        if (k == length && value <= 253402214399000LL) {
            *epoch = value > 100000000000LL ? value / 1000 : value;
            return 0;
        }
    }
    PyObject *created = record_str(r, s->i_time);
    PyObject *strtime = s->i_strtime < 0 ? Py_NewRef(Py_None) : record_str(r, s->i_strtime);
    PyObject *found = NULL;
    if (created != NULL && strtime != NULL)
        found = PyObject_CallFunctionObjArgs(s->epoch_of, created, strtime, NULL);
    Py_XDECREF(created);
    Py_XDECREF(strtime);
    if (found == NULL)
        return -1;
    *epoch = PyLong_AsLongLong(found);
    Py_DECREF(found);
    return *epoch == -1 && PyErr_Occurred() ? -1 : 0;
}

static int
crc_sender(PyObject *sender, uint32_t *crc)
{
    *crc = 0;
    if (crc_text(sender, crc) < 0)
        return -1;
    uint32_t c = ~*crc;
    c = crc_table[(c ^ 0x1F) & 0xff] ^ (c >> 8);
    *crc = ~c;
    return 0;
}

/* One message of a MemoTrace CSV record (as formats/csvfmt.py parse_memotrace builds it). */
static PyObject *
csv_message(CsvState *s, Record *r, Keys *keys, long long *last_hour, Hour *hour,
            PyObject **hour_start, Recent *recent)
{
    long long epoch;
    if (csv_epoch(s, r, &epoch) < 0)
        return NULL;
    long long hour_index = epoch >= 0 ? epoch / 3600 : -((-epoch + 3599) / 3600);
    if (hour_index != *last_hour || *hour_start == NULL) {
        PyObject *index = PyLong_FromLongLong(hour_index);
        if (index == NULL)
            return NULL;
        PyObject *start = PyObject_CallOneArg(s->hour, index);
        Py_DECREF(index);
        if (start == NULL)
            return NULL;
        Py_XSETREF(*hour_start, start);
        if (hour_set(hour, start) < 0)
            return NULL;
        *last_hour = hour_index;
    }
    PyObject *when = NULL, *wxid = NULL, *sender = NULL, *kind = NULL, *text = NULL;
    PyObject *raw = NULL, *value = NULL, *is_self = NULL, *key = NULL, *message = NULL;
    when = hour_datetime(hour, epoch, (int)(epoch - hour_index * 3600), s->from_epoch, s->deltas);
    if (when == NULL || !(wxid = record_recent(r, s->i_wxid, &recent[0])))
        goto done;
    sender = record_recent(r, s->i_remark, &recent[1]);
    if (sender != NULL && PyUnicode_GET_LENGTH(sender) == 0) {
        Py_SETREF(sender, record_recent(r, s->i_nick, &recent[2]));
        if (sender != NULL && PyUnicode_GET_LENGTH(sender) == 0)
            Py_SETREF(sender, Py_NewRef(wxid));
    }
    if (sender == NULL)
        goto done;
    if (record_is(r, s->i_type, '1')) {
        kind = Py_NewRef(str_text);
        if (!(text = record_str(r, s->i_content)) || !(raw = PyDict_New()))
            goto done;
    }
    else {
        PyObject *type = record_str(r, s->i_type);
        PyObject *sub = s->i_sub < 0 ? PyUnicode_FromString("0") : record_str(r, s->i_sub);
        PyObject *content = record_str(r, s->i_content);
        PyObject *described = NULL;
        if (type && sub && content)
            described = PyObject_CallFunctionObjArgs(s->describe, type, sub, content, NULL);
        Py_XDECREF(type);
        Py_XDECREF(sub);
        Py_XDECREF(content);
        if (described == NULL)
            goto done;
        if (!PyTuple_Check(described) || PyTuple_GET_SIZE(described) != 3) {
            Py_DECREF(described);
            PyErr_SetString(PyExc_TypeError, "describe() must return 3 items");
            goto done;
        }
        kind = Py_NewRef(PyTuple_GET_ITEM(described, 0));
        text = Py_NewRef(PyTuple_GET_ITEM(described, 1));
        raw = Py_NewRef(PyTuple_GET_ITEM(described, 2));
        Py_DECREF(described);
    }
    if (s->i_local >= 0) {
        if (!(value = record_str(r, s->i_local)) || PyObject_SetItem(raw, str_local_id, value) < 0)
            goto done;
        Py_CLEAR(value);
    }
    if (s->i_talker >= 0) {
        if (!(value = record_recent(r, s->i_talker, &recent[3])) ||
            PyObject_SetItem(raw, str_chat_id, value) < 0)
            goto done;
        Py_CLEAR(value);
    }
    if (s->member != Py_None && PyObject_SetItem(raw, str_member, s->member) < 0)
        goto done;
    int system = PyUnicode_Check(kind) && (PyUnicode_Compare(kind, str_system) == 0 ||
                                           PyUnicode_Compare(kind, str_recall) == 0);
    if (system) {
        Py_SETREF(sender, Py_NewRef(str_empty));
        Py_SETREF(wxid, Py_NewRef(str_empty));
        is_self = Py_NewRef(Py_None);
    }
    else if (record_is(r, s->i_self, '1')) {
        is_self = Py_NewRef(Py_True);
    }
    else if (record_is(r, s->i_self, '0')) {
        is_self = Py_NewRef(Py_False);
    }
    else if (s->self_name == Py_None) {
        is_self = Py_NewRef(Py_None);
    }
    else {
        int same = PyObject_RichCompareBool(sender, s->self_name, Py_EQ);
        if (same < 0)
            goto done;
        is_self = Py_NewRef(same ? Py_True : Py_False);
    }
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "a message text must be a str");
        goto done;
    }
    uint32_t crc;
    if (crc_sender(sender, &crc) < 0 || crc_text(text, &crc) < 0 ||
        !(key = hashed_key(keys, epoch, crc)))
        goto done;
    message = new_message(s->message, sender,
                          PyUnicode_GET_LENGTH(wxid) ? wxid : Py_None, when, text, kind,
                          is_self, raw, key);
done:
    Py_XDECREF(when);
    Py_XDECREF(wxid);
    Py_XDECREF(sender);
    Py_XDECREF(kind);
    Py_XDECREF(text);
    Py_XDECREF(raw);
    Py_XDECREF(value);
    Py_XDECREF(is_self);
    Py_XDECREF(key);
    return message;
}

/* memotrace_csv(buffer, eof, state) -> (messages, consumed)
 *
 * The messages of the complete records in `buffer` (all of them when `eof`); `consumed` is
 * where the unread rest starts. state.header says whether the header row is still to skip,
 * state.line counts the lines read (for error messages); both are updated. A field longer
 * than state.limit raises state.csv_error as csv.reader would, and so does a record with more
 * than state.max_fields fields (state.line: where it starts).
 */
static PyObject *
memotrace_csv(PyObject *module, PyObject *args)
{
    PyObject *buf, *state;
    int eof;
    if (!PyArg_ParseTuple(args, "UpO:memotrace_csv", &buf, &eof, &state))
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(buf);
    CsvState s;
    Keys keys = {0};
    Record record = {buf, PyUnicode_KIND(buf), PyUnicode_DATA(buf)};
    PyObject *messages = NULL, *result = NULL, *hour_start = NULL, *flag = NULL;
    Hour hour = {0};
    Recent recent[4] = {0};
    long long last_hour = 0;
    Py_ssize_t line, pos = 0;
    int header;
    if (csv_state_load(&s, state) < 0 || attr_ssize(state, "line", &line) < 0)
        goto done;
    if (!(flag = attr(state, "header")) || (header = PyObject_IsTrue(flag)) < 0)
        goto done;
    if (!(messages = PyList_New(0)) || keys_load(&keys, s.keys) < 0)
        goto done;
    while (pos < n) {
        Py_ssize_t reached = line;
        int read =
            read_record(&record, n, &pos, eof, s.delimiter, s.limit, s.max_fields, &reached);
        if (read == 0)
            break;
        if (read < 0) {
            if (read == -2 || read == -3) {
                /* the line of the long field; the line where the wide record starts */
                PyObject *where = PyLong_FromSsize_t(read == -2 ? reached : line + 1);
                if (where && PyObject_SetAttrString(state, "line", where) == 0) {
                    if (read == -2)
                        PyErr_Format(s.csv_error, "field larger than field limit (%zd)",
                                     s.limit);
                    else
                        PyErr_Format(s.csv_error, "record with more than %zd fields",
                                     s.max_fields);
                }
                Py_XDECREF(where);
            }
            goto done;
        }
        line = reached;
        if (header) {
            header = 0;
            continue;
        }
        if (record.fields < s.width &&
            (record.fields == 0 ||
             (record.fields == 1 && field_length(&record, 0) == 0)))
            continue;
        PyObject *message =
            csv_message(&s, &record, &keys, &last_hour, &hour, &hour_start, recent);
        if (message == NULL || PyList_Append(messages, message) < 0) {
            Py_XDECREF(message);
            goto done;
        }
        Py_DECREF(message);
    }
    {
        PyObject *where = PyLong_FromSsize_t(line);
        int stored = where != NULL && PyObject_SetAttrString(state, "line", where) == 0 &&
                     PyObject_SetAttrString(state, "header", header ? Py_True : Py_False) == 0;
        Py_XDECREF(where);
        if (!stored || keys_store(&keys) < 0)
            goto done;
    }
    result = Py_BuildValue("(On)", messages, pos);
done:
    keys_clear(&keys);
    csv_state_clear(&s);
    Py_XDECREF(flag);
    Py_XDECREF(hour_start);
    Py_XDECREF(messages);
    for (int k = 0; k < 4; k++)
        recent_clear(&recent[k]);
    PyMem_Free(record.chars);
    PyMem_Free(record.bounds);
    return result;
}

/* ---- JSON lines for `weft parse` ---------------------------------------------------------- */

static char *
two_digits(char *at, int value)
{
    *at++ = (char)('0' + value / 10);
    *at++ = (char)('0' + value % 10);
    return at;
}

/* The UTC offset of the last minute asked about: messages come minutes apart or closer. */
typedef struct {
    PyObject *tz; /* borrowed: compared by identity only */
    long long minute;
    long offset;
} Offset;

/* "2023-01-01T08:00:00+08:00": 0, or 1 for what orjson should write (no offset, an offset
 * with seconds, microseconds, a year before 1000). */
static int
out_datetime(Out *out, PyObject *when, Offset *cache)
{
    if (!PyDateTime_Check(when) || PyDateTime_DATE_GET_MICROSECOND(when) ||
        PyDateTime_GET_YEAR(when) < 1000)
        return 1;
    PyObject *tz = PyDateTime_DATE_GET_TZINFO(when);
    long long minute =
        ((((PyDateTime_GET_YEAR(when) * 100LL + PyDateTime_GET_MONTH(when)) * 100 +
           PyDateTime_GET_DAY(when)) * 100 + PyDateTime_DATE_GET_HOUR(when)) * 100 +
         PyDateTime_DATE_GET_MINUTE(when)) * 2 + PyDateTime_DATE_GET_FOLD(when);
    long minutes = cache->offset;
    if (tz != cache->tz || minute != cache->minute) {
        PyObject *offset = PyObject_CallMethodNoArgs(when, str_utcoffset);
        if (offset == NULL)
            return -1;
        if (!PyDelta_Check(offset) || PyDateTime_DELTA_GET_SECONDS(offset) % 60 ||
            PyDateTime_DELTA_GET_MICROSECONDS(offset)) {
            Py_DECREF(offset);
            return 1;
        }
        minutes = (long)PyDateTime_DELTA_GET_DAYS(offset) * 1440 +
                  PyDateTime_DELTA_GET_SECONDS(offset) / 60;
        Py_DECREF(offset);
        cache->tz = tz;
        cache->minute = minute;
        cache->offset = minutes;
    }
    char text[32], *at = text;
    int year = PyDateTime_GET_YEAR(when);
    at = two_digits(at, year / 100);
    at = two_digits(at, year % 100);
    *at++ = '-';
    at = two_digits(at, PyDateTime_GET_MONTH(when));
    *at++ = '-';
    at = two_digits(at, PyDateTime_GET_DAY(when));
    *at++ = 'T';
    at = two_digits(at, PyDateTime_DATE_GET_HOUR(when));
    *at++ = ':';
    at = two_digits(at, PyDateTime_DATE_GET_MINUTE(when));
    *at++ = ':';
    at = two_digits(at, PyDateTime_DATE_GET_SECOND(when));
    *at++ = minutes < 0 ? '-' : '+';
    if (minutes < 0)
        minutes = -minutes;
    at = two_digits(at, (int)(minutes / 60));
    *at++ = ':';
    at = two_digits(at, (int)(minutes % 60));
    if (OUT_LITERAL(out, "\"") < 0 || out_ascii(out, text, at - text) < 0 ||
        OUT_LITERAL(out, "\"") < 0)
        return -1;
    return 0;
}

/* A flat {str: str} object; 1 for anything else (orjson writes it). */
static int
out_raw(Out *out, PyObject *raw)
{
    if (!PyDict_CheckExact(raw))
        return 1;
    Py_ssize_t at = 0;
    PyObject *key, *value;
    while (PyDict_Next(raw, &at, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !PyUnicode_CheckExact(value))
            return 1;
    }
    if (OUT_LITERAL(out, "{") < 0)
        return -1;
    at = 0;
    int first = 1;
    while (PyDict_Next(raw, &at, &key, &value)) {
        int done;
        if ((!first && OUT_LITERAL(out, ",") < 0) || (done = out_string(out, key)) < 0 ||
            (done == 0 && OUT_LITERAL(out, ":") < 0) ||
            (done == 0 && (done = out_string(out, value)) < 0))
            return -1;
        if (done)
            return 1;
        first = 0;
    }
    return OUT_LITERAL(out, "}");
}

/* One message as its JSON line: 0, 1 where orjson must write it, -1 on error. */
static int
out_message(Out *out, PyObject *message, Offset *cache)
{
    if (!PyTuple_Check(message) || PyTuple_GET_SIZE(message) != 8)
        return 1;
    PyObject *sender = PyTuple_GET_ITEM(message, 0), *sender_id = PyTuple_GET_ITEM(message, 1);
    PyObject *when = PyTuple_GET_ITEM(message, 2), *text = PyTuple_GET_ITEM(message, 3);
    PyObject *kind = PyTuple_GET_ITEM(message, 4), *is_self = PyTuple_GET_ITEM(message, 5);
    PyObject *raw = PyTuple_GET_ITEM(message, 6), *key = PyTuple_GET_ITEM(message, 7);
    if (!PyUnicode_CheckExact(sender) || !PyUnicode_CheckExact(text) ||
        !PyUnicode_CheckExact(kind) || !PyUnicode_CheckExact(key) ||
        (sender_id != Py_None && !PyUnicode_CheckExact(sender_id)) ||
        (is_self != Py_None && is_self != Py_True && is_self != Py_False))
        return 1;
    Py_ssize_t start = out->used;
    int done;
#define STEP(call)                                                                             \
    if ((done = (call)) != 0)                                                                  \
        goto stop;
    STEP(OUT_LITERAL(out, "{\"sender\":"));
    STEP(out_string(out, sender));
    STEP(OUT_LITERAL(out, ",\"sender_id\":"));
    STEP(sender_id == Py_None ? OUT_LITERAL(out, "null") : out_string(out, sender_id));
    STEP(OUT_LITERAL(out, ",\"timestamp\":"));
    STEP(out_datetime(out, when, cache));
    STEP(OUT_LITERAL(out, ",\"text\":"));
    STEP(out_string(out, text));
    STEP(OUT_LITERAL(out, ",\"kind\":"));
    STEP(out_string(out, kind));
    STEP(OUT_LITERAL(out, ",\"is_self\":"));
    STEP(is_self == Py_None   ? OUT_LITERAL(out, "null")
         : is_self == Py_True ? OUT_LITERAL(out, "true")
                              : OUT_LITERAL(out, "false"));
    STEP(OUT_LITERAL(out, ",\"raw\":"));
    STEP(out_raw(out, raw));
    STEP(OUT_LITERAL(out, ",\"key\":"));
    STEP(out_string(out, key));
    STEP(OUT_LITERAL(out, "}\n"));
#undef STEP
    return 0;
stop:
    out->used = start;
    return done;
}

/* json_lines(messages, encode) -> bytes
 *
 * The messages as `weft parse` prints them, one JSON object per line, byte for byte what
 * orjson writes for message._asdict(); a message this writer does not cover (nested raw
 * values, unusual timestamps) is written by `encode(message)`.
 */
static PyObject *
json_lines(PyObject *module, PyObject *args)
{
    PyObject *messages, *encode;
    if (!PyArg_ParseTuple(args, "O!O:json_lines", &PyList_Type, &messages, &encode))
        return NULL;
    Out out = {0};
    Offset cache = {NULL, -1, 0};
    PyObject *result = NULL;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(messages); k++) {
        PyObject *message = PyList_GET_ITEM(messages, k);
        int done = out_message(&out, message, &cache);
        if (done < 0)
            goto done;
        if (done == 0)
            continue;
        PyObject *line = PyObject_CallOneArg(encode, message);
        if (line == NULL)
            goto done;
        if (!PyBytes_Check(line)) {
            Py_DECREF(line);
            PyErr_SetString(PyExc_TypeError, "encode() must return bytes");
            goto done;
        }
        int written = out_ascii(&out, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
        Py_DECREF(line);
        if (written < 0)
            goto done;
    }
    result = PyBytes_FromStringAndSize(out.data ? out.data : "", out.used);
done:
    PyMem_Free(out.data);
    return result;
}

/* ---- module ------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"memotrace_txt", memotrace_txt, METH_VARARGS,
     "memotrace_txt(buffer, eof, state) -> (messages, consumed, headers) or None"},
    {"memotrace_csv", memotrace_csv, METH_VARARGS,
     "memotrace_csv(buffer, eof, state) -> (messages, consumed)"},
    {"json_lines", json_lines, METH_VARARGS, "json_lines(messages, encode) -> bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ml.parsing._speedups",
    "Native readers for MemoTrace's TXT and CSV exports, and the JSON lines of weft parse.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    crc_init();
    if (!(str_text = PyUnicode_InternFromString("text")) ||
        !(str_member = PyUnicode_InternFromString("member")) ||
        !(str_epoch = PyUnicode_InternFromString("epoch")) ||
        !(str_first = PyUnicode_InternFromString("first")) ||
        !(str_seen = PyUnicode_InternFromString("seen")) ||
        !(str_refer = PyUnicode_FromString("\n\xe5\xbc\x95\xe7\x94\xa8:")) || /* \n引用: */
        !(str_local_id = PyUnicode_InternFromString("local_id")) ||
        !(str_chat_id = PyUnicode_InternFromString("chat_id")) ||
        !(str_system = PyUnicode_InternFromString("system")) ||
        !(str_recall = PyUnicode_InternFromString("recall")) ||
        !(str_empty = PyUnicode_FromString("")) ||
        !(str_utcoffset = PyUnicode_InternFromString("utcoffset")))
        return NULL;
    return PyModule_Create(&module_def);
}
