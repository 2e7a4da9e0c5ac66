/* testenv_redis.c: one command to a test's redis-server, for tests that check state
 * behind the bus's back (own object file: only programs that call it need hiredis). */
#include "testenv.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

long long testenv_redis_int(const struct test_redis *r, const char *fmt, ...)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    redisReply *rep;
    long long v = -999;
    va_list ap;

    if (!c || c->err) {
        if (c)
            redisFree(c);
        return v;
    }
    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    else if (rep && rep->type == REDIS_REPLY_STRING)
        v = strtoll(rep->str, NULL, 10);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return v;
}
