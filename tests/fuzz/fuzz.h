/* fuzz.h — what the libFuzzer targets under tests/fuzz/ share.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput for one parser and calls the project's
 * own code (the core library, built again with coverage instrumentation by
 * tests/fuzz/meson.build). A target aborts (FUZZ_ASSERT) when one of the parser's stated
 * contracts does not hold, so that libFuzzer records the input as a crash. */
#ifndef IMPACTD_FUZZ_H
#define IMPACTD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

struct server;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The server the validators and record writers take as context: configuration defaults and
 * the shipped catalogue (SOURCE_ROOT/config), loaded on the first call; aborts when it cannot
 * be loaded. Targets may flip settings (webhook_allow_private) between calls. */
struct server *fuzz_server(void);

/* A NUL-terminated copy of data, cut at its first NUL (as a C string parser would see it);
 * malloc'ed, the caller frees. Aborts when out of memory. */
char *fuzz_cstring(const uint8_t *data, size_t size);

/* The text of SOURCE_ROOT/<relpath>, malloc'ed and NUL-terminated; aborts when unreadable. */
char *fuzz_read_tree_file(const char *relpath);

void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));
#define FUZZ_ASSERT(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

#endif
