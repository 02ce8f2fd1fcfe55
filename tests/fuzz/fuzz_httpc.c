/* fuzz_httpc.c — the HTTP client's answer parser (httpc.c httpc_answer_feed): what a webhook
 * endpoint may send back, fed whole and fed in pieces (cut points from the input's first
 * byte), and then again for every further answer on the same connection (keep-alive).
 *
 * Contract: the parser's verdict does not depend on how the bytes arrive: whole or in pieces,
 * the same answers with the same status, close flag and error, and (unless it failed) the
 * same bytes left after them. */
#include "fuzz.h"

#include <event2/buffer.h>
#include <string.h>

#include "impactd/httpc.h"

#define MAX_ANSWERS 8

struct verdict {
    int n;                      /* answers parsed */
    int rc;                     /* of the last feed: 1, 0 or -1 */
    enum httpc_error error;
    int status[MAX_ANSWERS];
    bool close[MAX_ANSWERS];
    size_t left;
};

/* Feeds text in pieces of `step` bytes (0: all at once), then the end of the connection. */
static void run(const uint8_t *text, size_t size, size_t step, struct verdict *v)
{
    struct evbuffer *in = evbuffer_new();
    FUZZ_ASSERT(in != NULL);
    memset(v, 0, sizeof *v);
    struct httpc_answer a;
    httpc_answer_init(&a);
    size_t off = 0;
    bool eof = false;
    for (;;) {
        enum httpc_error error = HTTPC_OK;
        int rc = httpc_answer_feed(&a, in, eof, &error);
        v->rc = rc;
        if (rc == 1) {
            FUZZ_ASSERT(a.status >= 100 && a.status <= 999);
            v->status[v->n] = a.status;
            v->close[v->n] = a.close;
            if (++v->n == MAX_ANSWERS || a.close)
                break;
            httpc_answer_init(&a);
            continue;
        }
        if (rc < 0) {
            FUZZ_ASSERT(error != HTTPC_OK);
            v->error = error;
            break;
        }
        FUZZ_ASSERT(rc == 0);
        if (eof)
            break;
        if (off == size) {
            eof = true;
            continue;
        }
        size_t n = step == 0 || size - off < step ? size - off : step;
        FUZZ_ASSERT(evbuffer_add(in, text + off, n) == 0);
        off += n;
    }
    v->left = evbuffer_get_length(in) + (size - off);
    evbuffer_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 7;
    struct verdict whole, pieces;
    run(data + 1, size - 1, 0, &whole);
    run(data + 1, size - 1, step, &pieces);
    FUZZ_ASSERT(whole.n == pieces.n && whole.rc == pieces.rc && whole.error == pieces.error);
    FUZZ_ASSERT(whole.rc < 0 || whole.left == pieces.left);
    for (int i = 0; i < whole.n; i++)
        FUZZ_ASSERT(whole.status[i] == pieces.status[i] && whole.close[i] == pieces.close[i]);
    return 0;
}
