/* test_upload.c: multipart/form-data, Content-Disposition, data: URLs, media types. */
#include <stdlib.h>
#include <string.h>

#include "fcgi/upload.h"
#include "tap.h"

#define CT "multipart/form-data; boundary=XyZ"

static void test_multipart(void)
{
    static const char body[] = "preamble\r\n"
                               "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
                               "hello\r\n"
                               "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"upload\"; "
                               "filename=\"a \\\"b\\\".png\"\r\n"
                               "Content-Type: Image/PNG\r\n\r\n"
                               "\x89PNG\r\n\x1a\n\0bin\r\n--XyZ--\r\n";
    struct upload_part p;
    char why[128];

    ok(upload_is_multipart(CT), "multipart/form-data is recognized");
    ok(upload_is_multipart("Multipart/Form-Data;boundary=a"), "in any case");
    ok(!upload_is_multipart("image/png"), "an image is not multipart");
    ok(!upload_is_multipart(NULL), "no type is not multipart");
    is_int(upload_multipart_file(body, sizeof body - 1, CT, &p, why, sizeof why), 0,
           "the file part is found after a preamble and a plain field");
    is_str(p.filename, "a \"b\".png", "quoted filename with escapes");
    is_str(p.type, "image/png", "the part's type, lowercased");
    is_int(p.len, 12, "the data keeps its NUL and CRLF bytes, not the delimiter's CRLF");
    ok(p.len == 12 && memcmp(p.data, "\x89PNG\r\n\x1a\n\0bin", 12) == 0, "the bytes");

    static const char named[] = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                                "abc\r\n--XyZ--";
    is_int(upload_multipart_file(named, sizeof named - 1, CT, &p, why, sizeof why), 0,
           "a part named file without a filename");
    ok(p.len == 3 && memcmp(p.data, "abc", 3) == 0 && !p.filename[0] && !p.type[0],
       "its data, no name, no type");

    static const char none[] = "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
                               "abc\r\n--XyZ--";
    is_int(upload_multipart_file(none, sizeof none - 1, CT, &p, why, sizeof why), -1,
           "no file part");
    ok(strstr(why, "no file part") != NULL, "says so: %s", why);
    static const char cut[] = "--XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nab";
    is_int(upload_multipart_file(cut, sizeof cut - 1, CT, &p, why, sizeof why), -1,
           "a part without its closing delimiter");
    static const char nohead[] = "--XyZ\r\nContent-Disposition: form-data";
    is_int(upload_multipart_file(nohead, sizeof nohead - 1, CT, &p, why, sizeof why), -1,
           "headers without their end");
    is_int(upload_multipart_file(body, sizeof body - 1, "multipart/form-data", &p, why, sizeof why),
           -1, "no boundary");
    is_int(upload_multipart_file("", 0, CT, &p, why, sizeof why), -1, "an empty body");
    is_int(upload_multipart_file(body, sizeof body - 1, "multipart/form-data; boundary=\"XyZ\"", &p,
                                 why, sizeof why),
           0, "a quoted boundary");
}

static void test_names_and_types(void)
{
    char buf[300], t[64];

    is_int(upload_disposition_param("attachment; filename=report.pdf", "filename", buf, sizeof buf),
           0, "a token filename");
    is_str(buf, "report.pdf", "its value");
    is_int(upload_disposition_param("inline", "filename", buf, sizeof buf), -1, "none");
    is_int(upload_disposition_param("a; filename=\"open", "filename", buf, sizeof buf), -1,
           "an unterminated quote");
    is_int(upload_disposition_param(NULL, "filename", buf, sizeof buf), -1, "no header");

    upload_media_type(" Text/Plain; charset=utf-8", t, sizeof t);
    is_str(t, "text/plain", "type without parameters, lowercased");
    upload_media_type("garbage", t, sizeof t);
    is_str(t, "", "no slash: no type");
    upload_media_type(NULL, t, sizeof t);
    is_str(t, "", "NULL: no type");

    strcpy(buf, "../../etc/pa\tss\"wd");
    upload_clean_name(buf, sizeof buf, "x");
    is_str(buf, "passwd", "directories, controls and quotes go");
    strcpy(buf, "C:\\Users\\me\\shot.png");
    upload_clean_name(buf, sizeof buf, "x");
    is_str(buf, "shot.png", "Windows paths too");
    strcpy(buf, "dir/..");
    upload_clean_name(buf, sizeof buf, "attachment");
    is_str(buf, "attachment", "'..' becomes the fallback");
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 127; i++)
        memcpy(buf + 2 * i, "\xc3\xa9", 2); /* 254 bytes of é, then one more */
    memcpy(buf + 254, "\xc3\xa9", 2);
    upload_clean_name(buf, sizeof buf, "x");
    is_int(strlen(buf), 254, "cut to 255 bytes at a UTF-8 boundary");

    ok(upload_type_allowed("image/png") && upload_type_allowed("image/webp"), "images");
    ok(upload_type_allowed("text/markdown") && upload_type_allowed("application/pdf") &&
           upload_type_allowed("application/json") &&
           upload_type_allowed("application/octet-stream"),
       "text, pdf, json, any file");
    ok(!upload_type_allowed("image/svg+xml"), "not SVG (script inside)");
    ok(!upload_type_allowed("application/x-sh") && !upload_type_allowed("text/") &&
           !upload_type_allowed(""),
       "nor other types");
    ok(upload_type_is_image("image/gif") && !upload_type_is_image("text/plain"), "image or not");
    ok(upload_magic_ok("image/png", "\x89PNG\r\n\x1a\nrest", 12), "a PNG signature");
    ok(!upload_magic_ok("image/png", "<html>", 6), "HTML is no PNG");
    ok(upload_magic_ok("image/jpeg", "\xff\xd8\xff\xe0", 4), "a JPEG signature");
    ok(upload_magic_ok("image/gif", "GIF89a", 6), "a GIF signature");
    ok(upload_magic_ok("image/webp", "RIFF\0\0\0\0WEBPVP8 ", 16), "a WebP signature");
    ok(!upload_magic_ok("image/webp", "RIFF", 4), "a short file");
    ok(upload_magic_ok("text/plain", "", 0), "no signature for other types");
}

static void test_data_url(void)
{
    static const char url[] = "data:image/png;base64,iVBORw0KGgo=";
    char t[64];
    void *d = NULL;
    size_t n = 0;

    is_int(upload_data_url(url, sizeof url - 1, 100, t, sizeof t, &d, &n), 0, "decodes");
    is_str(t, "image/png", "its type");
    ok(n == 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0, "its bytes");
    free(d);
    static const char params[] = "data:Image/JPEG;name=x.jpg;base64,/9j/";
    is_int(upload_data_url(params, sizeof params - 1, 100, t, sizeof t, &d, &n), 0,
           "with parameters");
    ok(strcmp(t, "image/jpeg") == 0 && n == 3, "type %s, %zu bytes", t, n);
    free(d);
    is_int(upload_data_url(url, sizeof url - 1, 7, t, sizeof t, &d, &n), -2, "over the limit");
    ok(d == NULL, "nothing allocated");
    static const char plain[] = "data:text/plain,hello";
    is_int(upload_data_url(plain, sizeof plain - 1, 100, t, sizeof t, &d, &n), -1, "not base64");
    static const char bad[] = "data:image/png;base64,iVB*Rw0";
    is_int(upload_data_url(bad, sizeof bad - 1, 100, t, sizeof t, &d, &n), -1, "a bad character");
    is_int(upload_data_url("http://x", 8, 100, t, sizeof t, &d, &n), -1, "not a data URL");
    static const char empty[] = "data:image/png;base64,";
    is_int(upload_data_url(empty, sizeof empty - 1, 100, t, sizeof t, &d, &n), 0, "empty payload");
    ok(n == 0, "zero bytes");
    free(d);
}

int main(void)
{
    plan_lazy();
    test_multipart();
    test_names_and_types();
    test_data_url();
    return done_testing();
}
