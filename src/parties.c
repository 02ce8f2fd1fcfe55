/* parties.c — the party of a poster (parties.h): built from its participant record, and the
 * per-process table that spares a Redis read when it posts again. */
#include "impactd/parties.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

#include "impactd/store.h"

struct party_entry {
    json_t *party;                  /* owned */
    int64_t stored_ms;
};

static void entry_free(void *v)
{
    struct party_entry *e = v;
    if (e) {
        json_decref(e->party);
        free(e);
    }
}

int parties_init(struct parties *p) { return dict_init(&p->cache); }

void parties_free(struct parties *p) { dict_free(&p->cache, entry_free); }

json_t *parties_from_record(const char *id, const char *role, const redisReply *hash)
{
    const char *name = store_reply_field(hash, "name");
    const char *contact = store_reply_field(hash, "contact");
    json_t *c = contact && *contact ? json_loads(contact, 0, NULL) : NULL;
    if (!json_is_object(c)) {
        json_decref(c);
        c = json_null();
    }
    return json_pack("{s:s, s:o, s:s, s:o, s:n}", "participant_id", id, "name",
                     name ? json_string(name) : json_null(), "role", role, "contact", c,
                     "site");
}

json_t *parties_get(struct parties *p, const char *id, int64_t now_ms, int64_t ttl_ms)
{
    struct party_entry *e = dict_get(&p->cache, id);
    return e && now_ms - e->stored_ms < ttl_ms ? json_deep_copy(e->party) : NULL;
}

void parties_put(struct parties *p, const char *id, const json_t *party, int64_t now_ms)
{
    if (p->cache.count >= PARTIES_MAX && !dict_get(&p->cache, id)) {
        dict_free(&p->cache, entry_free);       /* more posters than expected: start over */
        if (dict_init(&p->cache) != 0)
            return;
    }
    struct party_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->party = json_deep_copy(party))) {
        free(e);
        return;
    }
    e->stored_ms = now_ms;
    entry_free(dict_del(&p->cache, id));
    if (dict_set(&p->cache, id, e) != 0)
        entry_free(e);
}

void parties_forget(struct parties *p, const char *id)
{
    entry_free(dict_del(&p->cache, id));
}
