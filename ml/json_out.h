/* JSON output shared by weft's C modules (ml/parsing/_speedups.c, ml/datasets/_speedups.c):
 * a growing byte buffer and strings written byte for byte as orjson writes them. */
#ifndef WEFT_JSON_OUT_H
#define WEFT_JSON_OUT_H

#include <Python.h>
#include <string.h>

/* A growing byte buffer. */
typedef struct {
    char *data;
    Py_ssize_t used, size;
} Out;

static int
out_reserve(Out *out, Py_ssize_t more)
{
    if (out->used + more <= out->size)
        return 0;
    Py_ssize_t size = out->size ? out->size : 1 << 16;
    while (size < out->used + more)
        size *= 2;
    char *grown = PyMem_Realloc(out->data, size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->data = grown;
    out->size = size;
    return 0;
}

static int
out_ascii(Out *out, const char *text, Py_ssize_t length)
{
    if (out_reserve(out, length) < 0)
        return -1;
    memcpy(out->data + out->used, text, length);
    out->used += length;
    return 0;
}

#define OUT_LITERAL(out, text) out_ascii((out), (text), (Py_ssize_t)sizeof(text) - 1)

/* A JSON string as orjson writes one: UTF-8, escaping only '"', '\\' and control characters.
 * 1 if the text holds a lone surrogate (orjson refuses those: the caller falls back). */
static int
out_string(Out *out, PyObject *text)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (out_reserve(out, 2 + 6 * n) < 0) /* the most one character can take */
        return -1;
    char *at = out->data + out->used;
    *at++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 0x80) {
            if (ch >= 0x20 && ch != '"' && ch != '\\') {
                *at++ = (char)ch;
                continue;
            }
            *at++ = '\\';
            switch (ch) {
            case '"': *at++ = '"'; break;
            case '\\': *at++ = '\\'; break;
            case '\b': *at++ = 'b'; break;
            case '\t': *at++ = 't'; break;
            case '\n': *at++ = 'n'; break;
            case '\f': *at++ = 'f'; break;
            case '\r': *at++ = 'r'; break;
            default:
                *at++ = 'u';
                *at++ = '0';
                *at++ = '0';
                *at++ = "0123456789abcdef"[ch >> 4];
                *at++ = "0123456789abcdef"[ch & 15];
            }
        }
        else if (ch < 0x800) {
            *at++ = (char)(0xC0 | (ch >> 6));
            *at++ = (char)(0x80 | (ch & 0x3F));
        }
        else if (ch < 0x10000) {
            if (ch >= 0xD800 && ch <= 0xDFFF)
                return 1;
            *at++ = (char)(0xE0 | (ch >> 12));
            *at++ = (char)(0x80 | ((ch >> 6) & 0x3F));
            *at++ = (char)(0x80 | (ch & 0x3F));
        }
        else {
            *at++ = (char)(0xF0 | (ch >> 18));
            *at++ = (char)(0x80 | ((ch >> 12) & 0x3F));
            *at++ = (char)(0x80 | ((ch >> 6) & 0x3F));
            *at++ = (char)(0x80 | (ch & 0x3F));
        }
    }
    *at++ = '"';
    out->used = at - out->data;
    return 0;
}

#endif /* WEFT_JSON_OUT_H */
