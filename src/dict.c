/* dict.c — string-keyed chained hash table (FNV-1a), doubling when load exceeds 1. */
#include "impactd/dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t dict_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int dict_init(struct dict *d)
{
    d->nbuckets = 64;
    d->count = 0;
    d->buckets = calloc(d->nbuckets, sizeof *d->buckets);
    return d->buckets ? 0 : -1;
}

static struct dict_entry **dict_find(const struct dict *d, const char *key)
{
    struct dict_entry **pp = &d->buckets[dict_hash(key) & (d->nbuckets - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

void *dict_get(const struct dict *d, const char *key)
{
    struct dict_entry *e = *dict_find(d, key);
    return e ? e->value : NULL;
}

static void dict_grow(struct dict *d)
{
    size_t n = d->nbuckets * 2;
    struct dict_entry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;     /* keep working with longer chains */
    for (size_t i = 0; i < d->nbuckets; i++) {
        struct dict_entry *e = d->buckets[i];
        while (e) {
            struct dict_entry *next = e->next;
            size_t j = dict_hash(e->key) & (n - 1);
            e->next = nb[j];
            nb[j] = e;
            e = next;
        }
    }
    free(d->buckets);
    d->buckets = nb;
    d->nbuckets = n;
}

int dict_set(struct dict *d, const char *key, void *value)
{
    struct dict_entry **pp = dict_find(d, key);
    if (*pp) {
        (*pp)->value = value;
        return 0;
    }
    size_t klen = strlen(key);
    struct dict_entry *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return -1;
    memcpy(e->key, key, klen + 1);
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (++d->count > d->nbuckets)
        dict_grow(d);
    return 0;
}

void *dict_del(struct dict *d, const char *key)
{
    struct dict_entry **pp = dict_find(d, key);
    struct dict_entry *e = *pp;
    if (!e)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    d->count--;
    return v;
}

void dict_sweep(struct dict *d, int (*fn)(const char *key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < d->nbuckets; i++) {
        struct dict_entry **pp = &d->buckets[i];
        while (*pp) {
            struct dict_entry *e = *pp;
            if (fn(e->key, e->value, arg)) {
                *pp = e->next;
                free(e);
                d->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

void dict_free(struct dict *d, void (*destroy)(void *value))
{
    if (!d->buckets)
        return;
    for (size_t i = 0; i < d->nbuckets; i++) {
        struct dict_entry *e = d->buckets[i];
        while (e) {
            struct dict_entry *next = e->next;
            if (destroy)
                destroy(e->value);
            free(e);
            e = next;
        }
    }
    free(d->buckets);
    d->buckets = NULL;
    d->count = 0;
}
