/* testenv.c: temp dirs and a private redis-server for the C tests. */
#define _GNU_SOURCE /* nftw, prctl */
#include "testenv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define REDIS_START_TRIES 5
#define REDIS_UP_WAIT_MS 10000
#define REDIS_STOP_WAIT_MS 5000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool testenv_wait(bool (*cond)(void *arg), void *arg)
{
    long long deadline = mono_ms() + TESTENV_LIMIT_MS;
    while (mono_ms() < deadline) {
        if (cond(arg))
            return true;
        sleep_ms(5);
    }
    return cond(arg);
}

int testenv_tmpdir(const char *tag, char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    int n;

    if (!base || !base[0])
        base = "/tmp";
    n = snprintf(buf, size, "%s/cgw-%s-XXXXXX", base, tag ? tag : "test");
    if (n < 0 || (size_t)n >= size)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void testenv_rmtree(const char *path)
{
    if (path && path[0])
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

const char *testenv_redis_binary(void)
{
    static char found[PATH_MAX];
    const char *env = getenv("REDIS_SERVER");
    const char *path = getenv("PATH");

    if (env && env[0])
        return executable(env) ? env : NULL;
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n + sizeof("/redis-server") < sizeof(found)) {
            memcpy(found, path, n);
            snprintf(found + n, sizeof(found) - n, "/redis-server");
            if (executable(found))
                return found;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return NULL;
}

/* A port the kernel just gave out, so almost certainly free for redis-server. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int port = -1, fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static pid_t spawn_redis(const struct test_redis *r)
{
    const char *bin = testenv_redis_binary();
    char port[16], log[512], sock[300];
    const char *argv[32];
    int argc = 0;
    pid_t pid;

    if (!bin)
        return -1;
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    argv[argc++] = bin;
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--dir";
    argv[argc++] = r->dir;
    argv[argc++] = "--save";
    argv[argc++] = "";
    argv[argc++] = "--appendonly";
    argv[argc++] = r->aof ? "yes" : "no";
    if (r->aof) {
        argv[argc++] = "--appendfsync";
        argv[argc++] = "always";
    }
    argv[argc++] = "--daemonize";
    argv[argc++] = "no";
    argv[argc++] = "--logfile";
    argv[argc++] = log;
    /* Also a unix socket, <dir>/redis.sock, when the path fits sun_path. */
    if (strlen(r->dir) + sizeof("/redis.sock") <= 100) {
        snprintf(sock, sizeof(sock), "%s/redis.sock", r->dir);
        argv[argc++] = "--unixsocket";
        argv[argc++] = sock;
        argv[argc++] = "--unixsocketperm";
        argv[argc++] = "700";
    }
    argv[argc] = NULL;

    pid = fork();
    if (pid != 0)
        return pid;

    /* Child: die with the test (a crashed test leaves no server behind), and keep
     * none of the test's descriptors (pipes the test waits on to close). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    }
    execv(bin, (char *const *)argv);
    _exit(127);
}

/* PONG (not LOADING) within the deadline, while the child lives. */
static int wait_up(struct test_redis *r, long long deadline)
{
    while (mono_ms() < deadline) {
        struct timeval tv = {0, 200000};
        redisContext *c;
        int status;

        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;
        }
        c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
        if (c && !c->err) {
            redisReply *rep;
            redisSetTimeout(c, tv);
            rep = redisCommand(c, "PING");
            if (rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0) {
                freeReplyObject(rep);
                redisFree(c);
                return 0;
            }
            if (rep)
                freeReplyObject(rep);
        }
        if (c)
            redisFree(c);
        sleep_ms(20);
    }
    return -1;
}

static int start_on_port(struct test_redis *r)
{
    r->pid = spawn_redis(r);
    if (r->pid < 0) {
        r->pid = 0;
        return -1;
    }
    if (wait_up(r, mono_ms() + REDIS_UP_WAIT_MS) == 0)
        return 0;
    testenv_redis_kill(r);
    return -1;
}

int testenv_redis_start(struct test_redis *r, const char *dir, bool aof)
{
    memset(r, 0, sizeof(*r));
    if (!dir || strlen(dir) >= sizeof(r->dir) || !testenv_redis_binary())
        return -1;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    r->aof = aof;
    /* Someone may take the port between our probe and redis' bind: try others. */
    for (int i = 0; i < REDIS_START_TRIES; i++) {
        r->port = free_port();
        if (r->port <= 0)
            continue;
        snprintf(r->address, sizeof(r->address), "127.0.0.1:%d", r->port);
        if (start_on_port(r) == 0)
            return 0;
    }
    return -1;
}

void testenv_redis_stop(struct test_redis *r)
{
    long long deadline;
    int status;

    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    deadline = mono_ms() + REDIS_STOP_WAIT_MS;
    while (mono_ms() < deadline) {
        pid_t w = waitpid(r->pid, &status, WNOHANG);
        if (w == r->pid || (w < 0 && errno == ECHILD)) {
            r->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    testenv_redis_kill(r);
}

void testenv_redis_kill(struct test_redis *r)
{
    int status;

    if (r->pid <= 0)
        return;
    kill(r->pid, SIGKILL);
    while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->pid = 0;
}

int testenv_redis_restart(struct test_redis *r)
{
    long long deadline = mono_ms() + REDIS_UP_WAIT_MS;

    if (r->pid > 0)
        testenv_redis_stop(r);
    /* The same port: a client's address stays valid. It was ours a moment ago;
     * retry a little in case the old socket is still being torn down. */
    while (mono_ms() < deadline) {
        if (start_on_port(r) == 0)
            return 0;
        sleep_ms(100);
    }
    return -1;
}
