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

#include "impactd/calls.h"
#include "impactd/auth.h"
#include "impactd/catalog.h"
#include "impactd/checks.h"
#include "impactd/handlers.h"
#include "impactd/record.h"
#include "impactd/reply.h"
#include "impactd/request.h"
#include "impactd/resource.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/netaddr.h"
#include "impactd/problem.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"

#define BOOTSTRAP_ID "prt_bootstrap"

static const char *const ROLES[] = { "manufacturer", "hospital", "ministry", "admin", NULL };
const struct enumtype ENUM_ROLE = {
    "Role", "ROLE", ROLES, "What a participant is, and so what its tokens may do.",
};

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
    else if (!srv->cfg.webhook_allow_private && netaddr_host_nonglobal(host))
        msg = "points at a private or not globally reachable address, or a localhost name "
              "(allowed only with IMPACTD_WEBHOOK_ALLOW_PRIVATE=1)";
    evhttp_uri_free(u);
    return msg;
}

static const char *const LANGUAGES[] = { "fr", "en", NULL };
const struct enumtype ENUM_LANGUAGE = {
    "Language", "LANGUAGE", LANGUAGES,
    "The language of what impactd writes to the participant: `fr` (default) or `en`.",
};

/* contact: whom the other side of an allocation calls or writes to */
static const struct field FIELDS_CONTACT[] = {
    { "name", 0, FT_STRING, F_CREATE | F_REQUIRED, 1, 200 },
    { "email", 0, FT_STRING, F_CREATE | F_REQUIRED, 3, 254, .check = check_email },
    { "phone", 0, FT_STRING, F_CREATE | F_NULLABLE, 1, 16, .check = check_phone,
      .doc = "E.164: + then the country code and the number, e.g. +33320445962." },
};

/* identifiers: a hospital's FINESS, a manufacturer's SIRET */
static const struct field FIELDS_IDENTIFIERS[] = {
    { "finess", 0, FT_STRING, F_CREATE | F_NULLABLE, 9, 9, .check = check_finess,
      .doc = "A health establishment's FINESS number (9 characters)." },
    { "siret", 0, FT_STRING, F_CREATE | F_NULLABLE, 14, 14, .check = check_siret,
      .doc = "A company's SIRET number (14 digits, Luhn-checked)." },
};

/* Kept in the hash prt:{id}, one hash field per stored field (record.h). */
static const struct field FIELDS_PARTICIPANT[] = {
    { "id", 1, FT_ID, F_OUT, .ref = "prt_", .schema = "ParticipantId" },
    { "role", 2, FT_ENUM, F_OUT | F_CREATE | F_REQUIRED, .enumtype = &ENUM_ROLE },
    { "name", 3, FT_STRING, F_OUT | F_CREATE | F_REQUIRED | F_PATCH, 1, 200 },
    { "region", 4, FT_REGION, F_OUT | F_CREATE | F_NULLABLE, .check = check_region,
      .doc = "The participant's own region (required for manufacturers and hospitals)." },
    { "lat", 5, FT_NUMBER, F_OUT | F_CREATE | F_NULLABLE, -90, 90 },
    { "lon", 6, FT_NUMBER, F_OUT | F_CREATE | F_NULLABLE, -180, 180 },
    { "webhook_url", 7, FT_STRING, F_OUT | F_CREATE | F_PATCH | F_NULLABLE, 1, 2048,
      .check = check_webhook_url,
      .doc = "Where signed notifications are POSTed (Standard Webhooks); null: inbox only." },
    { "regions", 8, FT_STRING_ARRAY, F_OUT | F_CREATE | F_NULLABLE, 1, 64,
      .check = check_regions,
      .doc = "Ministry only: the regions a regional health agency sees; null: the whole "
             "country." },
    { "webhook_secret", 9, FT_STRING, F_SECRET },
    { "created_at", 10, FT_TIME, F_OUT | F_NULLABLE,
      .doc = "null for the bootstrap admin, which is not stored" },
    { "updated_at", 11, FT_TIME, F_OUT | F_NULLABLE },
    { "contact", 12, FT_JSON, F_OUT | F_CREATE | F_PATCH | F_NULLABLE,
      .sub = FIELDS_CONTACT, .nsub = sizeof FIELDS_CONTACT / sizeof FIELDS_CONTACT[0],
      .doc = "Whom the other side of an allocation calls or writes to; a PATCH replaces it "
             "whole." },
    { "language", 13, FT_ENUM, F_OUT | F_CREATE | F_PATCH | F_NULLABLE,
      .enumtype = &ENUM_LANGUAGE, .dflt = "fr" },
    { "identifiers", 14, FT_JSON, F_OUT | F_CREATE | F_PATCH | F_NULLABLE,
      .sub = FIELDS_IDENTIFIERS,
      .nsub = sizeof FIELDS_IDENTIFIERS / sizeof FIELDS_IDENTIFIERS[0],
      .doc = "Official numbers: `finess` (hospitals), `siret` (manufacturers); a PATCH "
             "replaces it whole." },
};

const struct resource RESOURCE_PARTICIPANT = {
    "participant", "participants", "prt_", NULL, "Participant", FIELDS(FIELDS_PARTICIPANT),
    NULL, NULL, 0,
};

/* ---- the participant object ---- */

static json_t *bootstrap_json(void)
{
    json_t *p = json_object();
    for (size_t i = 0; p && i < RESOURCE_PARTICIPANT.nfields; i++)
        if (FIELDS_PARTICIPANT[i].flags & F_OUT)
            json_object_set_new(p, FIELDS_PARTICIPANT[i].name, json_null());
    json_object_set_new(p, "id", json_string(BOOTSTRAP_ID));
    json_object_set_new(p, "role", json_string("admin"));
    json_object_set_new(p, "name", json_string("bootstrap admin"));
    return p;
}

/* Admin, or the participant itself. Answers 403 otherwise. */
static bool may_see(struct req *r, const char *id)
{
    if (r->who.role == ROLE_ADMIN || strcmp(r->who.participant_id, id) == 0)
        return true;
    reply_problem(r, 403, NULL, "only an admin or the participant itself may do this");
    return false;
}

/* GET /v1/participants/{id} by someone who is neither an admin nor {id}: the ministry, or
 * a participant that shares an allocation with {id} (any market's peers set says so). */
struct view_job {
    bool public_view;               /* answer the public view */
    bool shared;                    /* a peers set holds "<caller>|<id>" */
    struct fanout fan;
};

static const struct req_state_type VIEW_JOB = { "participant view", sizeof(struct view_job),
                                                NULL };

/* What a counterpart or the ministry sees: no webhook URL — null, as every key of an object
 * is always present (tokens and the webhook secret are never in the record). */
static void participants_public_view(json_t *p)
{
    json_object_set_new(p, "webhook_url", json_null());
}

static void reply_participant(struct req *r, enum store_status st, redisReply *reply)
{
    if (reply_store_failed(r, st, reply))
        return;
    json_t *p = record_hash_to_api(&RESOURCE_PARTICIPANT, reply);
    if (!p) {
        reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    if (r->state_type == &VIEW_JOB && ((struct view_job *)r->state)->public_view)
        participants_public_view(p);
    reply_json(r, 200, p);
}

static void fetch_participant(struct req *r, const char *id)
{
    if (!id_valid(id, "prt_")) {
        reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGETALL");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT, id);
    req_send(r, &c, reply_participant);
}

/* ---- tokens ---- */

/* Handler state while a participant or a token is being written. */
struct token_job {
    json_t *answer;                 /* the 201 body under construction */
    char participant[ID_MAX_LEN];
    char token_id[ID_MAX_LEN];
};

static void token_job_clear(void *v)
{
    json_decref(((struct token_job *)v)->answer);
}

static const struct req_state_type TOKEN_JOB = { "token", sizeof(struct token_job),
                                                 token_job_clear };

static struct token_job *token_job_new(struct req *r, const char *participant)
{
    struct token_job *j = req_state(r, &TOKEN_JOB);
    if (!j)
        return NULL;
    if (!(j->answer = json_object())) {
        reply_problem(r, 500, NULL, "out of memory");
        return NULL;
    }
    snprintf(j->participant, sizeof j->participant, "%s", participant);
    return j;
}

static void on_token_listed(struct req *r, enum store_status st, redisReply *reply)
{
    struct token_job *j = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    json_t *answer = j->answer;
    j->answer = NULL;
    if (json_object_get(answer, "participant")) {
        char loc[80];
        snprintf(loc, sizeof loc, "/v1/participants/%s", j->participant);
        req_set_header(r, "Location", loc);
    }
    reply_json(r, 201, answer);
}

static void on_token_written(struct req *r, enum store_status st, redisReply *reply)
{
    struct token_job *j = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "SADD");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT_TOKENS, j->participant);
    cmd_add(&c, j->token_id);
    req_send(r, &c, on_token_listed);
}

/* Creates a token for the participant of the request's token job and writes its record;
 * the answer gets "token_id" and "token". */
static void token_issue(struct req *r, const char *role, const char *region,
                        const char *regions_text, int64_t now)
{
    struct token_job *j = r->state;
    char token[TOKEN_LEN], hash[TOKEN_HASH_HEX];
    auth_token_new(token);
    if (auth_token_hash(token, hash) != 0) {
        reply_problem(r, 500, NULL, "cannot hash the token");
        return;
    }
    auth_token_id(hash, j->token_id);
    auth_forget(&r->srv->auth, j->token_id);    /* nothing this process knew of it holds */
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
    req_send(r, &c, on_token_written);
}

/* ---- handlers ---- */

static void on_participant_written(struct req *r, enum store_status st, redisReply *reply)
{
    struct token_job *j = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    json_t *p = json_object_get(j->answer, "participant");
    char *regions = NULL;
    json_t *rg = json_object_get(p, "regions");
    if (json_is_array(rg))
        regions = json_dump_compact(rg);
    token_issue(r, json_string_value(json_object_get(p, "role")),
                json_string_value(json_object_get(p, "region")), regions, time_now_ms());
    free(regions);
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
    validate_object(r->body, RESOURCE_PARTICIPANT.fields, RESOURCE_PARTICIPANT.nfields, F_CREATE,
                    srv, errors);
    create_rules(r->body, errors);
    if (reply_if_invalid(r, errors))
        return;

    int64_t now = time_now_ms();
    char id[ID_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    id_new("prt_", now, id);
    auth_webhook_secret_new(secret);
    struct token_job *j = token_job_new(r, id);
    if (!j)
        return;
    /* the stored values: the body, with what the server sets */
    json_t *values = json_deep_copy(r->body);
    if (!json_object_get(values, "language"))
        json_object_set_new(values, "language", json_string("fr"));
    json_object_set_new(values, "id", json_string(id));
    json_object_set_new(values, "webhook_secret", json_string(secret));
    json_object_set_new(values, "created_at", json_integer(now));
    json_object_set_new(values, "updated_at", json_integer(now));
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HSET");
    store_key(&srv->store, &c, KEY_PARTICIPANT, id);
    int rc = record_hash_args(&RESOURCE_PARTICIPANT, values, 0, &c);
    /* the answer, as a read would show it */
    json_object_del(values, "webhook_secret");
    json_t *p = json_object();
    for (size_t i = 0; p && i < RESOURCE_PARTICIPANT.nfields; i++) {
        const struct field *f = &FIELDS_PARTICIPANT[i];
        if (!(f->flags & F_OUT))
            continue;
        json_t *v = json_object_get(values, f->name);
        if (f->type == FT_TIME)
            json_set_time(p, f->name, now);
        else
            json_object_set(p, f->name, v ? v : json_null());
    }
    json_decref(values);
    if (rc != 0 || !p) {
        cmd_free(&c);
        json_decref(p);
        sodium_memzero(secret, sizeof secret);
        reply_problem(r, 500, NULL, "cannot store the participant");
        return;
    }
    json_object_set_new(j->answer, "participant", p);
    json_object_set_new(j->answer, "webhook_secret", json_string(secret));
    sodium_memzero(secret, sizeof secret);
    req_send(r, &c, on_participant_written);
}

void participants_me(struct req *r)
{
    if (r->who.bootstrap) {
        reply_json(r, 200, bootstrap_json());
        return;
    }
    fetch_participant(r, r->who.participant_id);
}

static void on_peer(struct req *r, size_t market, redisReply *reply)
{
    (void)market;
    struct view_job *j = r->state;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
        j->shared = true;
}

static void on_peers_done(struct req *r)
{
    struct view_job *j = r->state;
    if (!j->shared) {
        reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    fetch_participant(r, req_param(r, 0));
}

void participants_get(struct req *r)
{
    const char *id = req_param(r, 0);
    if (strcmp(id, BOOTSTRAP_ID) == 0 && r->who.bootstrap) {
        reply_json(r, 200, bootstrap_json());
        return;
    }
    if (r->who.role == ROLE_ADMIN || strcmp(r->who.participant_id, id) == 0) {
        fetch_participant(r, id);
        return;
    }
    if (!id_valid(id, "prt_")) {
        reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    struct view_job *j = req_state(r, &VIEW_JOB);
    if (!j)
        return;
    j->public_view = true;
    if (r->who.role == ROLE_MINISTRY) {
        fetch_participant(r, id);
        return;
    }
    /* anyone else: only a counterpart, and to anyone else the participant does not exist */
    const struct catalog *cat = &r->srv->catalog;
    char member[2 * ID_MAX_LEN + 2];
    snprintf(member, sizeof member, "%s|%s", r->who.participant_id, id);
    fanout_begin(&j->fan, on_peer, on_peers_done);
    for (size_t i = 0; i < cat->nmarkets; i++) {
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "SISMEMBER");
        store_key(&r->srv->store, &c, KEY_MARKET, cat->markets[i].id, MKEY_PEERS);
        cmd_add(&c, member);
        fanout_send(r, &j->fan, i, &c);
    }
    fanout_end(r, &j->fan);
}

void participants_patch(struct req *r)
{
    const char *id = req_param(r, 0);
    if (!may_see(r, id))
        return;
    json_t *errors = problem_errors_new();
    validate_object(r->body, RESOURCE_PARTICIPANT.fields, RESOURCE_PARTICIPANT.nfields, F_PATCH,
                    r->srv, errors);
    if (reply_if_invalid(r, errors))
        return;
    if (!id_valid(id, "prt_")) {
        reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    parties_forget(&r->srv->parties, id);     /* its next posting reads the record again */
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_PARTICIPANT, id);
    cmd_addll(&c, time_now_ms());
    if (record_hash_args(&RESOURCE_PARTICIPANT, r->body, F_PATCH, &c) != 0) {
        cmd_free(&c);
        reply_problem(r, 500, NULL, "cannot pack the change");
        return;
    }
    req_fcall(r, FN_PARTICIPANT_PATCH, 1, &c, reply_participant);
}

static void on_owner_found(struct req *r, enum store_status st, redisReply *reply)
{
    if (reply_store_failed(r, st, reply))
        return;
    const char *role = store_reply_field(reply, "role");
    if (!role) {
        reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    struct token_job *j = r->state;
    int64_t now = time_now_ms();
    json_object_set_new(j->answer, "participant_id", json_string(j->participant));
    json_set_time(j->answer, "created_at", now);
    token_issue(r, role, store_reply_field(reply, "region"), store_reply_field(reply, "regions"),
                now);
}

void participants_issue_token(struct req *r)
{
    const char *id = req_param(r, 0);
    if (r->body) {
        json_t *errors = problem_errors_new();
        validate_object(r->body, NULL, 0, F_CREATE, NULL, errors);
        if (reply_if_invalid(r, errors))
            return;
    }
    if (!id_valid(id, "prt_")) {
        reply_problem(r, 404, NULL, "no such participant");
        return;
    }
    if (!token_job_new(r, id))
        return;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGETALL");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT, id);
    req_send(r, &c, on_owner_found);
}

static void on_token_unlisted(struct req *r, enum store_status st, redisReply *reply)
{
    (void)st;
    (void)reply;    /* the token is gone already; a stale set member is harmless */
    reply_empty(r, 204);
}

static void on_token_revoked(struct req *r, enum store_status st, redisReply *reply)
{
    if (reply_store_failed(r, st, reply))
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        reply_problem(r, 404, NULL, "no such token");
        return;
    }
    const char *tid = req_param(r, 0);
    auth_forget(&r->srv->auth, tid);
    log_info("msg=\"token revoked\" req=%s token=%s owner=%s by=%s", r->id, tid, reply->str,
             r->who.participant_id);
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "SREM");
    store_key(&r->srv->store, &c, KEY_PARTICIPANT_TOKENS, reply->str);
    cmd_add(&c, tid);
    req_send(r, &c, on_token_unlisted);
}

void participants_revoke_token(struct req *r)
{
    const char *tid = req_param(r, 0);
    bool ok = strncmp(tid, "tok_", 4) == 0 && strlen(tid) == 28;
    for (const char *p = tid + 4; ok && *p; p++)
        ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    if (!ok) {
        reply_problem(r, 404, NULL, "no such token");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_TOKEN, tid);
    cmd_add(&c, r->who.role == ROLE_ADMIN ? "" : r->who.participant_id);
    req_fcall(r, FN_TOKEN_REVOKE, 1, &c, on_token_revoked);
}
