/* testenv.h: what C tests need around them: temp dirs and a private redis-server.
 *
 * A test's redis-server listens on a free loopback port chosen at start, keeps
 * its files in the test's temp dir, and is stopped by its pid only.
 */
#ifndef CGW_TESTENV_H
#define CGW_TESTENV_H

#include <stdbool.h>
#include <sys/types.h>

/* Creates a fresh temp dir (under $TMPDIR or /tmp) named after tag; writes the
 * path into buf (size bytes). Returns 0 or -1. */
int testenv_tmpdir(const char *tag, char *buf, size_t size);

/* Removes a directory tree (best effort). */
void testenv_rmtree(const char *path);

/* Tests wait for the state they mean, never for time: testenv_wait polls cond(arg)
 * until it is true and returns its last value. TESTENV_LIMIT_MS only guards against a
 * hang (false after it); it is never a figure under test (timings are make bench's). */
#define TESTENV_LIMIT_MS 60000
bool testenv_wait(bool (*cond)(void *arg), void *arg);

struct test_redis {
    pid_t pid;
    int port;
    char dir[256];
    char address[64]; /* "127.0.0.1:<port>" */
    bool aof;
};

/* The redis-server binary ($REDIS_SERVER, else found on PATH), or NULL when
 * there is none: the test should then skip_all(). */
const char *testenv_redis_binary(void);

/* Starts redis-server in dir (created if missing) on a free 127.0.0.1 port, with
 * appendonly when aof is true, and waits until it answers PING. Returns 0 or -1. */
int testenv_redis_start(struct test_redis *r, const char *dir, bool aof);

/* Stops it (SIGTERM to its pid, then SIGKILL after 5 s) and reaps it. */
void testenv_redis_stop(struct test_redis *r);

/* Kills it with SIGKILL (a crash: nothing flushed beyond what AOF fsync did). */
void testenv_redis_kill(struct test_redis *r);

/* Starts it again on the same port and dir (AOF replayed when enabled). */
int testenv_redis_restart(struct test_redis *r);

/* Sends one printf-style command on a new connection: an integer reply (or a string
 * that reads as one), else -999 (no connection, error, other reply). tests/lib/
 * testenv_redis.c; the program must link hiredis. */
long long testenv_redis_int(const struct test_redis *r, const char *fmt, ...);

#endif
