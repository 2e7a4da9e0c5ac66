/* hello.c: the FastCGI hello-world that make bench compares chatgw.fcgi with: libfcgi,
 * THREADS worker threads accepting on one socket (as chatgw.fcgi's workers do), each
 * answering every request with a small JSON body.
 *
 *   hello SOCKET_PATH THREADS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fcgiapp.h>

static int sock;

static void *worker(void *arg)
{
    FCGX_Request r;
    (void)arg;
    FCGX_InitRequest(&r, sock, 0);
    for (;;) {
        if (FCGX_Accept_r(&r) < 0)
            break;
        FCGX_FPrintF(r.out, "Status: 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: 15\r\n\r\n{\"hello\":true}\n");
        FCGX_Finish_r(&r);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hello SOCKET_PATH THREADS\n");
        return 2;
    }
    int n = atoi(argv[2]);
    FCGX_Init();
    umask(0);
    sock = FCGX_OpenSocket(argv[1], 1024);
    if (sock < 0) {
        perror("hello: socket");
        return 1;
    }
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return 0;
}
