/* dict.h — a small string-keyed hash table (chained, power-of-two buckets, grows on load).
 *
 * The table copies keys; values are borrowed pointers whose owner is the caller (free them
 * before dict_del/dict_free, or pass a destructor to dict_free). */
#ifndef IMPACTD_DICT_H
#define IMPACTD_DICT_H

#include <stddef.h>

struct dict_entry {
    struct dict_entry *next;
    void *value;
    char key[];
};

struct dict {
    struct dict_entry **buckets;
    size_t nbuckets;
    size_t count;
};

int dict_init(struct dict *d) __attribute__((warn_unused_result));
void *dict_get(const struct dict *d, const char *key);
/* Inserts or replaces; returns 0, or -1 when out of memory (the table is unchanged). */
int dict_set(struct dict *d, const char *key, void *value) __attribute__((warn_unused_result));
/* Removes key; returns its value (or NULL). */
void *dict_del(struct dict *d, const char *key);
/* Calls fn on each entry; fn may not modify the table unless it returns 1 to delete the entry
 * it was given (after freeing its value). */
void dict_sweep(struct dict *d, int (*fn)(const char *key, void *value, void *arg), void *arg);
void dict_free(struct dict *d, void (*destroy)(void *value));

#endif
