/* participants.c — participants (manufacturers, hospitals, ministry, admins) and their tokens.
 *
 * Records live in Redis as hashes: prt:{id} (the participant, including its webhook secret,
 * which is never served again after creation), prt:{id}:tokens (its token ids) and
 * tok:{token id} (hash of the token, owner, role, ministry scope). The token itself and the
 * secret are answered once, at creation. Roles are checked by the route table; this module
 * checks only ownership ("admin or the participant itself"). */
#include <arpa/inet.h>
#include <event2/http.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "impactd/auth.h"
#include "impactd/catalog.h"
#include "impactd/checks.h"
#include "impactd/handlers.h"
#include "impactd/http.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/problem.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"

#define BOOTSTRAP_ID "prt_bootstrap"

static const char *const ROLE_VALUES[] = { "manufacturer", "hospital", "ministry", "admin", NULL };

/* ---- validation ---- */

static const char *check_webhook_url(const json_t *v, const void *ctx)
{
    const struct server *srv = ctx;
    const char *s = json_string_value(v);
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
        return "must be an http:// or https:// URL";
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(s, 0);
    if (!u)
        return "is not a valid URL";
    const char *host = evhttp_uri_get_host(u);
    const char *msg = NULL;
    if (!host || !*host)
        msg = "must name a host";
    else if (evhttp_uri_get_fragment(u))
        msg = "must not have a fragment";
    else if (!srv->cfg.webhook_allow_private && checks_host_private(host))
        msg = "points at a loopback or private address (allowed only with "
              "IMPACTD_WEBHOOK_ALLOW_PRIVATE=1)";
    evhttp_uri_free(u);
    return msg;
}

static const struct vfield CREATE_FIELDS[] = {
    { "role", V_ENUM, true, false, 0, 0, ROLE_VALUES, NULL },
    { "name", V_STRING, true, false, 1, 200, NULL, NULL },
    { "region", V_STRING, false, true, 0, 0, NULL, check_region },
    { "lat", V_NUMBER, false, true, -90, 90, NULL, NULL },
    { "lon", V_NUMBER, false, true, -180, 180, NULL, NULL },
    { "webhook_url", V_STRING, false, true, 1, 2048, NULL, check_webhook_url },
    { "regions", V_STRING_ARRAY, false, true, 1, 64, NULL, check_regions },
};

static const struct vfield PATCH_FIELDS[] = {
    { "name", V_STRING, false, false, 1, 200, NULL, NULL },
    { "webhook_url", V_STRING, false, true, 1, 2048, NULL, check_webhook_url },
};

/* ---- the participant object ---- */

static int set_number_text(json_t *obj, const char *key, const char *text)
{
    json_t *n = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (n && !json_is_number(n)) {
        json_decref(n);
        n = NULL;
    }
    return json_object_set_new(obj, key, n ? n : json_null());
}

static int64_t field_ms(const redisReply *r, const char *field)
{
    long long v;
    const char *s = reply_hash_get(r, field);
    return s && json_parse_ll(s, &v) == 0 ? v : -1;
}

/* Builds the served object from an HGETALL of prt:{id}; NULL when the reply is empty. */
static json_t *participant_json(const redisReply *r)
{
    const char *id = reply_hash_get(r, "id");
    if (!id)
        return NULL;
    json_t *p = json_object();
    if (!p)
        return NULL;
    json_object_set_new(p, "id", json_string(id));
    json_set_str_or_null(p, "role", reply_hash_get(r, "role"));
    json_set_str_or_null(p, "name", reply_hash_get(r, "name"));
    json_set_str_or_null(p, "region", reply_hash_get(r, "region"));
    set_number_text(p, "lat", reply_hash_get(r, "lat"));
    set_number_text(p, "lon", reply_hash_get(r, "lon"));
    json_set_str_or_null(p, "webhook_url", reply_hash_get(r, "webhook_url"));
    const char *regions = reply_hash_get(r, "regions");
    json_t *rj = regions && *regions ? json_loads(regions, 0, NULL) : NULL;
    json_object_set_new(p, "regions", rj ? rj : json_null());
    json_set_time(p, "created_at", field_ms(r, "created_at"));
    json_set_time(p, "updated_at", field_ms(r, "updated_at"));
    return p;
}

static json_t *bootstrap_json(void)
{
    return json_pack("{s:s, s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:n}", "id", BOOTSTRAP_ID,
                     "role", "admin", "name", "bootstrap admin", "region", "lat", "lon",
                     "webhook_url", "regions", "created_at", "updated_at");
}

/* Admin, or the participant itself. Answers 403 otherwise. */
static bool may_see(struct req *r, const char *id)
{
    if (r->who.role == ROLE_ADMIN || strcmp(r->who.participant_id, id) == 0)
        return true;
    http_reply_problem(r, 403, NULL, "only an admin or the participant itself may do this");
    return false;
}

static void reply_participant(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    json_t *p = reply->type == REDIS_REPLY_ARRAY ? participant_json(reply) : NULL;
    if (!p) {
        http_reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    http_reply_json(r, 200, p);
}

static void fetch_participant(struct req *r, const char *id)
{
    if (!id_valid(id, "prt_")) {
        http_reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGETALL");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT, id);
    http_store_send(r, &c, reply_participant);
}

/* ---- tokens ---- */

/* Handler state while a participant or a token is being written. */
struct token_job {
    json_t *answer;                 /* the 201 body under construction */
    char participant[ID_MAX_LEN];
    char token_id[ID_MAX_LEN];
};

static void token_job_free(void *v)
{
    struct token_job *j = v;
    json_decref(j->answer);
    free(j);
}

static void on_token_listed(struct req *r, enum store_status st, redisReply *reply)
{
    struct token_job *j = r->ctx;
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    json_t *answer = j->answer;
    j->answer = NULL;
    if (json_object_get(answer, "participant")) {
        char loc[80];
        snprintf(loc, sizeof loc, "/v1/participants/%s", j->participant);
        http_set_header(r, "Location", loc);
    }
    http_reply_json(r, 201, answer);
}

static void on_token_written(struct req *r, enum store_status st, redisReply *reply)
{
    struct token_job *j = r->ctx;
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "SADD");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT_TOKENS, j->participant);
    cmd_add(&c, j->token_id);
    http_store_send(r, &c, on_token_listed);
}

/* Creates a token for the participant in r->ctx and writes its record; the answer gets
 * "token_id" and "token". */
static void token_issue(struct req *r, const char *role, const char *region,
                        const char *regions_text, int64_t now)
{
    struct token_job *j = r->ctx;
    char token[TOKEN_LEN], hash[TOKEN_HASH_HEX];
    auth_token_new(token);
    if (auth_token_hash(token, hash) != 0) {
        http_reply_problem(r, 500, NULL, "cannot hash the token");
        return;
    }
    auth_token_id(hash, j->token_id);
    json_object_set_new(j->answer, "token_id", json_string(j->token_id));
    json_object_set_new(j->answer, "token", json_string(token));
    sodium_memzero(token, sizeof token);
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HSET");
    store_key(&r->srv->store, &c, KEY_TOKEN, j->token_id);
    cmd_add(&c, "hash");
    cmd_add(&c, hash);
    cmd_add(&c, "participant");
    cmd_add(&c, j->participant);
    cmd_add(&c, "role");
    cmd_add(&c, role);
    cmd_add(&c, "region");
    cmd_add(&c, region ? region : "");
    cmd_add(&c, "regions");
    cmd_add(&c, regions_text ? regions_text : "");
    cmd_add(&c, "created_at");
    cmd_addll(&c, now);
    http_store_send(r, &c, on_token_written);
}

static struct token_job *token_job_new(struct req *r, const char *participant)
{
    struct token_job *j = calloc(1, sizeof *j);
    if (!j || !(j->answer = json_object())) {
        free(j);
        http_reply_problem(r, 500, NULL, "out of memory");
        return NULL;
    }
    snprintf(j->participant, sizeof j->participant, "%s", participant);
    r->ctx = j;
    r->ctx_free = token_job_free;
    return j;
}

/* ---- handlers ---- */

static void on_participant_written(struct req *r, enum store_status st, redisReply *reply)
{
    struct token_job *j = r->ctx;
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    json_t *p = json_object_get(j->answer, "participant");
    const char *regions = NULL;
    char *regions_text = NULL;
    json_t *rg = json_object_get(p, "regions");
    if (json_is_array(rg))
        regions = regions_text = json_dump_compact(rg);
    token_issue(r, json_string_value(json_object_get(p, "role")),
                json_string_value(json_object_get(p, "region")), regions, time_now_ms());
    free(regions_text);
}

/* Cross-field rules the field table cannot say. */
static void create_rules(const json_t *b, json_t *errors)
{
    const char *role = json_string_value(json_object_get(b, "role"));
    if (!role)
        return;
    bool located = strcmp(role, "manufacturer") == 0 || strcmp(role, "hospital") == 0;
    if (located && !json_is_string(json_object_get(b, "region")))
        problem_errors_add(errors, "region", "is required for a %s", role);
    json_t *regions = json_object_get(b, "regions");
    if (regions && !json_is_null(regions) && strcmp(role, "ministry") != 0)
        problem_errors_add(errors, "regions", "is only for ministry participants");
    bool has_lat = json_is_number(json_object_get(b, "lat"));
    bool has_lon = json_is_number(json_object_get(b, "lon"));
    if (has_lat != has_lon)
        problem_errors_add(errors, has_lat ? "lon" : "lat", "must be given with %s",
                           has_lat ? "lat" : "lon");
}

void participants_create(struct req *r)
{
    struct server *srv = r->srv;
    json_t *errors = problem_errors_new();
    validate_object(r->body, CREATE_FIELDS, sizeof CREATE_FIELDS / sizeof CREATE_FIELDS[0], srv,
                    errors);
    create_rules(r->body, errors);
    if (json_array_size(errors)) {
        http_reply_invalid(r, errors);
        return;
    }
    json_decref(errors);

    int64_t now = time_now_ms();
    char id[ID_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    id_new("prt_", now, id);
    auth_webhook_secret_new(secret);
    struct token_job *j = token_job_new(r, id);
    if (!j)
        return;

    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HSET");
    store_key(&srv->store, &c, KEY_PARTICIPANT, id);
    cmd_add(&c, "id");
    cmd_add(&c, id);
    static const char *const STRINGS[] = { "role", "name", "region", "webhook_url" };
    for (size_t i = 0; i < 4; i++) {
        const char *v = json_string_value(json_object_get(r->body, STRINGS[i]));
        if (v) {
            cmd_add(&c, STRINGS[i]);
            cmd_add(&c, v);
        }
    }
    static const char *const OTHERS[] = { "lat", "lon", "regions" };
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(r->body, OTHERS[i]);
        char *text = v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                                                               JSON_REAL_PRECISION(15))
                                           : NULL;
        if (text) {
            cmd_add(&c, OTHERS[i]);
            cmd_add(&c, text);
            free(text);
        }
    }
    cmd_add(&c, "webhook_secret");
    cmd_add(&c, secret);
    cmd_add(&c, "created_at");
    cmd_addll(&c, now);
    cmd_add(&c, "updated_at");
    cmd_addll(&c, now);

    /* the answer, built from what is written */
    json_t *p = json_object();
    json_object_set_new(p, "id", json_string(id));
    for (size_t i = 0; i < 4; i++)
        json_set_str_or_null(p, STRINGS[i],
                             json_string_value(json_object_get(r->body, STRINGS[i])));
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(r->body, OTHERS[i]);
        json_object_set(p, OTHERS[i], v ? v : json_null());
    }
    json_set_time(p, "created_at", now);
    json_set_time(p, "updated_at", now);
    json_object_set_new(j->answer, "participant", p);
    json_object_set_new(j->answer, "webhook_secret", json_string(secret));
    sodium_memzero(secret, sizeof secret);
    http_store_send(r, &c, on_participant_written);
}

void participants_me(struct req *r)
{
    if (r->who.bootstrap) {
        http_reply_json(r, 200, bootstrap_json());
        return;
    }
    fetch_participant(r, r->who.participant_id);
}

void participants_get(struct req *r)
{
    const char *id = http_param(r, 0);
    if (!may_see(r, id))
        return;
    if (strcmp(id, BOOTSTRAP_ID) == 0 && r->who.bootstrap) {
        http_reply_json(r, 200, bootstrap_json());
        return;
    }
    fetch_participant(r, id);
}

void participants_patch(struct req *r)
{
    const char *id = http_param(r, 0);
    if (!may_see(r, id))
        return;
    json_t *errors = problem_errors_new();
    validate_object(r->body, PATCH_FIELDS, sizeof PATCH_FIELDS / sizeof PATCH_FIELDS[0], r->srv,
                    errors);
    if (json_array_size(errors)) {
        http_reply_invalid(r, errors);
        return;
    }
    json_decref(errors);
    if (!id_valid(id, "prt_")) {
        http_reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_PARTICIPANT, id);
    cmd_addll(&c, time_now_ms());
    for (size_t i = 0; i < sizeof PATCH_FIELDS / sizeof PATCH_FIELDS[0]; i++) {
        json_t *v = json_object_get(r->body, PATCH_FIELDS[i].name);
        if (!v)
            continue;
        cmd_add(&c, PATCH_FIELDS[i].name);
        cmd_add(&c, json_is_string(v) ? json_string_value(v) : "");
    }
    http_store_eval(r, SCRIPT_PARTICIPANT_PATCH, 1, &c, reply_participant);
}

static void on_owner_found(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    const char *role = reply_hash_get(reply, "role");
    if (!role) {
        http_reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    struct token_job *j = r->ctx;
    int64_t now = time_now_ms();
    json_object_set_new(j->answer, "participant_id", json_string(j->participant));
    json_set_time(j->answer, "created_at", now);
    token_issue(r, role, reply_hash_get(reply, "region"), reply_hash_get(reply, "regions"), now);
}

void participants_issue_token(struct req *r)
{
    const char *id = http_param(r, 0);
    if (r->body) {
        json_t *errors = problem_errors_new();
        if (validate_object(r->body, NULL, 0, NULL, errors)) {
            http_reply_invalid(r, errors);
            return;
        }
        json_decref(errors);
    }
    if (!id_valid(id, "prt_")) {
        http_reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    if (!token_job_new(r, id))
        return;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGETALL");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT, id);
    http_store_send(r, &c, on_owner_found);
}

static void on_token_unlisted(struct req *r, enum store_status st, redisReply *reply)
{
    (void)st;
    (void)reply;    /* the token is gone already; a stale set member is harmless */
    http_reply_empty(r, 204);
}

static void on_token_revoked(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        http_reply_problem(r, 404, NULL, "no such token");
        return;
    }
    const char *tid = http_param(r, 0);
    auth_forget(&r->srv->auth, tid);
    log_info("msg=\"token revoked\" req=%s token=%s owner=%s by=%s", r->id, tid, reply->str,
             r->who.participant_id);
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "SREM");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT_TOKENS, reply->str);
    cmd_add(&c, tid);
    http_store_send(r, &c, on_token_unlisted);
}

void participants_revoke_token(struct req *r)
{
    const char *tid = http_param(r, 0);
    bool ok = strncmp(tid, "tok_", 4) == 0 && strlen(tid) == 28;
    for (const char *p = tid + 4; ok && *p; p++)
        ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    if (!ok) {
        http_reply_problem(r, 404, NULL, "no such token");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_TOKEN, tid);
    cmd_add(&c, r->who.role == ROLE_ADMIN ? "" : r->who.participant_id);
    http_store_eval(r, SCRIPT_TOKEN_REVOKE, 1, &c, on_token_revoked);
}
