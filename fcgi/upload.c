/* upload.c: multipart/form-data, Content-Disposition, data: URLs, allowed media types. */
#include "config.h" /* autoconf's: _GNU_SOURCE for memmem */

#include "fcgi/upload.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOUNDARY_MAX 70 /* RFC 2046 §5.1.1 */

void upload_media_type(const char *content_type, char *buf, size_t size)
{
    size_t n = 0;

    if (size == 0)
        return;
    buf[0] = '\0';
    if (!content_type)
        return;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    for (; content_type[n] && content_type[n] != ';' && content_type[n] != ' ' &&
           content_type[n] != '\t';
         n++) {
        if (n + 1 >= size) {
            buf[0] = '\0';
            return;
        }
        buf[n] = (char)tolower((unsigned char)content_type[n]);
    }
    buf[n] = '\0';
    if (!strchr(buf, '/'))
        buf[0] = '\0';
}

bool upload_is_multipart(const char *content_type)
{
    char t[64];

    upload_media_type(content_type, t, sizeof t);
    return strcmp(t, "multipart/form-data") == 0;
}

/* Finds parameter key in a "; k=v; k2="v2"" list (value begins after the first ';').
 * Copies the unquoted value into buf. Returns 0 or -1. */
static int header_param(const char *value, const char *key, char *buf, size_t size)
{
    const char *p = value ? strchr(value, ';') : NULL;
    size_t klen = strlen(key);

    while (p && *p) {
        p++;
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *name = p;
        while (*p && *p != '=' && *p != ';')
            p++;
        size_t nlen = (size_t)(p - name);
        while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        if (*p != '=') /* a bare token: skip it */
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        bool match = nlen == klen && strncasecmp(name, key, klen) == 0;
        size_t n = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (match && n + 1 < size)
                    buf[n++] = *p;
            }
            if (*p != '"')
                return -1;
            p++;
        } else {
            for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++)
                if (match && n + 1 < size)
                    buf[n++] = *p;
        }
        if (match) {
            if (size == 0)
                return -1;
            buf[n] = '\0';
            return 0;
        }
        p = strchr(p, ';');
    }
    return -1;
}

int upload_disposition_param(const char *value, const char *key, char *buf, size_t size)
{
    return header_param(value, key, buf, size);
}

/* One header line of a part ("Name: value", not NUL-terminated) into the part. */
static void part_header(const char *line, size_t n, struct upload_part *out, char *name,
                        size_t name_size)
{
    char h[1024];

    if (n >= sizeof h)
        return; /* a header this long carries nothing we read */
    memcpy(h, line, n);
    h[n] = '\0';
    if (strncasecmp(h, "content-disposition:", 20) == 0) {
        if (header_param(h + 20, "filename", out->filename, sizeof out->filename) < 0)
            out->filename[0] = '\0';
        if (header_param(h + 20, "name", name, name_size) < 0)
            name[0] = '\0';
    } else if (strncasecmp(h, "content-type:", 13) == 0) {
        upload_media_type(h + 13, out->type, sizeof out->type);
    }
}

/* Parses the part starting at p (after the delimiter line) up to end; sets *next to the
 * delimiter after it. Returns 0 or -1. */
static int part_parse(const char *p, const char *end, const char *delim, size_t dlen,
                      struct upload_part *out, char *name, size_t name_size, const char **next)
{
    memset(out, 0, sizeof *out);
    name[0] = '\0';
    for (;;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            return -1;
        if (eol == p) {
            p += 2;
            break;
        }
        part_header(p, (size_t)(eol - p), out, name, name_size);
        p = eol + 2;
    }
    const char *stop = memmem(p, (size_t)(end - p), delim, dlen);
    if (!stop)
        return -1;
    out->data = p;
    out->len = (size_t)(stop - p);
    *next = stop + 2; /* the delimiter without its leading CRLF */
    return 0;
}

int upload_multipart_file(const char *body, size_t len, const char *content_type,
                          struct upload_part *out, char *why, size_t why_size)
{
    char boundary[BOUNDARY_MAX + 1], delim[BOUNDARY_MAX + 5], name[64];
    struct upload_part part, named = {0};
    bool have_named = false;
    const char *end = body + len, *p;
    size_t blen, dlen;

    if (header_param(content_type, "boundary", boundary, sizeof boundary) < 0 ||
        (blen = strlen(boundary)) == 0 || blen >= BOUNDARY_MAX) {
        snprintf(why, why_size, "multipart/form-data without a usable boundary");
        return -1;
    }
    dlen = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    /* The first delimiter may open the body (no CRLF before it) or follow a preamble. */
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
        p = body;
    else if ((p = body ? memmem(body, len, delim, dlen) : NULL) != NULL)
        p += 2;
    else {
        snprintf(why, why_size, "multipart body without its boundary");
        return -1;
    }
    for (;;) {
        p += dlen - 2;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the close delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            break;
        p += 2;
        if (part_parse(p, end, delim, dlen, &part, name, sizeof name, &p) < 0) {
            snprintf(why, why_size, "malformed multipart body");
            return -1;
        }
        if (part.filename[0]) {
            *out = part;
            return 0;
        }
        if (!have_named && strcmp(name, "file") == 0) {
            named = part;
            have_named = true;
        }
    }
    if (have_named) {
        *out = named;
        return 0;
    }
    snprintf(why, why_size, "the multipart body has no file part");
    return -1;
}

void upload_clean_name(char *name, size_t size, const char *fallback)
{
    char *base = name, *w;
    size_t n;

    for (char *p = name; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    w = name;
    for (const char *r = base; *r; r++) {
        unsigned char c = (unsigned char)*r;
        if (c < 0x20 || c == 0x7f || c == '"')
            continue;
        *w++ = (char)c;
    }
    *w = '\0';
    n = strlen(name);
    if (n > UPLOAD_NAME_MAX) {
        n = UPLOAD_NAME_MAX;
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
        name[n] = '\0';
    }
    if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        snprintf(name, size, "%s", fallback);
}

static const char *const image_types[] = {"image/png", "image/jpeg", "image/gif", "image/webp",
                                          NULL};
static const char *const other_types[] = {"application/pdf", "application/json",
                                          "application/octet-stream", NULL};

bool upload_type_is_image(const char *type)
{
    for (int i = 0; image_types[i]; i++)
        if (strcmp(type, image_types[i]) == 0)
            return true;
    return false;
}

bool upload_type_allowed(const char *type)
{
    if (!type || !*type)
        return false;
    if (upload_type_is_image(type))
        return true;
    if (strncmp(type, "text/", 5) == 0 && type[5])
        return true;
    for (int i = 0; other_types[i]; i++)
        if (strcmp(type, other_types[i]) == 0)
            return true;
    return false;
}

bool upload_magic_ok(const char *type, const void *data, size_t len)
{
    const unsigned char *d = data;

    if (strcmp(type, "image/png") == 0)
        return len >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0;
    if (strcmp(type, "image/jpeg") == 0)
        return len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff;
    if (strcmp(type, "image/gif") == 0)
        return len >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0);
    if (strcmp(type, "image/webp") == 0)
        return len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0;
    return true;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int upload_data_url(const char *url, size_t url_len, size_t max, char *type, size_t type_size,
                    void **out, size_t *len)
{
    const char *comma, *p, *end = url + url_len;
    unsigned char *buf;
    size_t n = 0, chars = 0, cap;
    uint32_t acc = 0;
    int bits = 0;

    *out = NULL;
    *len = 0;
    if (url_len < 5 || strncasecmp(url, "data:", 5) != 0 || !(comma = memchr(url, ',', url_len)))
        return -1;
    {
        char head[256];
        size_t hl = (size_t)(comma - url) - 5;
        if (hl >= sizeof head)
            return -1;
        memcpy(head, url + 5, hl);
        head[hl] = '\0';
        if (hl < 7 || strcasecmp(head + hl - 7, ";base64") != 0)
            return -1;
        head[hl - 7] = '\0';
        upload_media_type(head, type, type_size);
        if (!type[0])
            return -1;
    }
    for (p = comma + 1; p < end; p++)
        if (b64_value((unsigned char)*p) >= 0)
            chars++;
    cap = chars / 4 * 3 + 3;
    if (chars / 4 * 3 > max + 3)
        return -2;
    if (!(buf = malloc(cap)))
        return -1;
    for (p = comma + 1; p < end; p++) {
        int v = b64_value((unsigned char)*p);
        if (v < 0) {
            if (*p == '=' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
                continue;
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (n > max) {
        free(buf);
        return -2;
    }
    *out = buf;
    *len = n;
    return 0;
}
