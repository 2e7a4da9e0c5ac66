/* upload.h: decoding uploaded files at the edge: multipart/form-data bodies,
 * Content-Disposition filenames, data: URLs, and the media types an attachment may have
 * (checked against the file's first bytes for images). Pure functions over buffers: no
 * request, no backend. */
#ifndef CGW_FCGI_UPLOAD_H
#define CGW_FCGI_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>

#define UPLOAD_NAME_MAX 255 /* bytes of a file name (store.h STORE_ATTACHMENT_NAME_MAX) */
#define UPLOAD_TYPE_MAX 127 /* bytes of a media type (STORE_ATTACHMENT_TYPE_MAX) */

/* The file part of a multipart/form-data body. data points into the body (borrowed). */
struct upload_part {
    const char *data;
    size_t len;
    char filename[UPLOAD_NAME_MAX + 1]; /* "" when the part had none */
    char type[UPLOAD_TYPE_MAX + 1];     /* the part's Content-Type, lowercased, "" when none */
};

/* True when content_type is multipart/form-data (any parameters). */
bool upload_is_multipart(const char *content_type);

/* Finds the file of a multipart/form-data body: the first part with a filename, else the
 * first part named "file". Returns 0 with *out filled, or -1 with a reason in why (a
 * malformed body, no boundary, no file part). */
int upload_multipart_file(const char *body, size_t len, const char *content_type,
                          struct upload_part *out, char *why, size_t why_size);

/* Copies the value of parameter key ("filename", "name") of a Content-Disposition header
 * value (quoted or token) into buf. Returns 0, or -1 when absent or malformed. */
int upload_disposition_param(const char *value, const char *key, char *buf, size_t size);

/* The media type of a Content-Type value, lowercased, without parameters, into buf
 * ("" for NULL or a malformed value). */
void upload_media_type(const char *content_type, char *buf, size_t size);

/* Makes name a safe display name in place: the part after the last '/' or '\\', control
 * characters and '"' dropped, cut to UPLOAD_NAME_MAX bytes at a UTF-8 boundary; an empty
 * result becomes fallback. */
void upload_clean_name(char *name, size_t size, const char *fallback);

/* True when type (a lowercased media type) may be uploaded: image/png, image/jpeg,
 * image/gif, image/webp, text/(any), application/pdf, application/json,
 * application/octet-stream (doc/api.md "Attachments"). */
bool upload_type_allowed(const char *type);

/* True when type is one of the image types above. */
bool upload_type_is_image(const char *type);

/* For an image type, true when data starts with that format's signature; true for every
 * other type. */
bool upload_magic_ok(const char *type, const void *data, size_t len);

/* Decodes a "data:<type>[;params];base64,<payload>" URL: the media type into type, and
 * the payload into *out, a new buffer of *len bytes (free(); at least 1 byte). A decoded
 * size over max is -2 (nothing allocated); a malformed URL -1. */
int upload_data_url(const char *url, size_t url_len, size_t max, char *type, size_t type_size,
                    void **out, size_t *len);

#endif
