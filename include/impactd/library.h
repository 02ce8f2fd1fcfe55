/* library.h — impactd's Redis function library, put together at start-up.
 *
 * The library is the Lua files of src/scripts/ (embedded at build time, in the order
 * meson.build lists them) behind a prelude written here from the catalogue (regions, their
 * neighbours, markets) and the resource descriptors (each record's positions, the codes of
 * each enum, the allocation actions), so that nothing a function needs is parsed per call.
 * Its name carries a hash of its text: daemons with the same build and catalogue share one
 * library, and a different one loads beside it (FUNCTION LOAD at connect, store.c). */
#ifndef IMPACTD_LIBRARY_H
#define IMPACTD_LIBRARY_H

#include <stddef.h>

#include "store.h"

struct catalog;

/* Fills lib (its code is owned: library_free). Returns -1 (err says why) on failure. */
int library_build(struct store_library *lib, const struct catalog *cat, char *err,
                  size_t errlen) __attribute__((warn_unused_result));
void library_free(struct store_library *lib);

#endif
