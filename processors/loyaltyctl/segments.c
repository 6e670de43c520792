/*
 * segments.c — loyaltyctl's view of the member-value scores over every
 * stored profile: the model in force (from Redis) applied to each
 * member's profile at one instant, summed into the segment mix, churn
 * bands, next-best rewards and predicted value, or printed per member.
 * Reads Redis with SCAN (never blocks it) and pipelined GETs; writes
 * nothing.
 */
#include "segments.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

#include "log.h"
#include "model.h"
#include "profile_apply.h"
#include "util.h"

const char lp_segments_usage[] =
    "  segments  [--at TIME] [--members] [--model-key KEY]\n"
    "            [--redis HOST:PORT] [--namespace NS]\n"
    "      Scores every member with an order by the model in force\n"
    "      (<ns>:model:clv, or <ns>:KEY) at TIME (ISO 8601 or YYYY-MM-DD;\n"
    "      default now) and prints the segment mix, churn bands, next-best\n"
    "      rewards and predicted 12-month value, one JSON object per line;\n"
    "      --members prints each member's scores instead.\n";

struct tally {
  long members;
  long segment[LP_SEG_COUNT];
  double segment_clv[LP_SEG_COUNT];
  long churn[3];
  long next_best[LP_MODEL_MAX_REWARDS + 1]; /* last: none */
  double clv, p_alive;
};

static void money(double units, char *out, size_t size) {
  lp_money_format((int64_t)(units * 100 + (units >= 0 ? 0.5 : -0.5)) * 10000,
                  out, size);
}

static void print_member(const struct lp_model *m, const char *member,
                         const struct lp_scores *s) {
  char clv[32], aov[32];
  money(s->clv_12m, clv, sizeof(clv));
  money(s->expected_spend, aov, sizeof(aov));
  printf("{\"member\":%s,\"segment\":%s,\"churn_risk\":%s,\"p_alive\":%.6f,"
         "\"expected_orders_90d\":%.4f,\"expected_aov\":\"%s\","
         "\"clv_12m\":\"%s\",\"next_best_reward\":%s}\n",
         lp_log_str(member), lp_log_str(lp_value_segment_name(s->segment)),
         lp_log_str(lp_churn_band_name(s->churn)), s->p_alive, s->expected_90d,
         aov, clv,
         lp_log_str(s->next_best >= 0 ? m->rewards[s->next_best].id : NULL));
}

/* Scores one batch of order-part keys: their parts fetched in one
 * pipeline. */
static int score_keys(redisContext *c, const struct lp_model *m,
                      redisReply *keys, size_t ns_len, int64_t at,
                      int per_member, struct tally *t) {
  for (size_t i = 0; i < keys->elements; i++) {
    const char *k = keys->element[i]->str;
    redisAppendCommand(c, "GET %s", k);
    /* <ns>:p:{m} -> <ns>:c:{m}: the customer part of the same member */
    char *ck = lp_xstrdup(k);
    ck[ns_len + 1] = 'c';
    redisAppendCommand(c, "GET %s", ck);
    free(ck);
  }
  for (size_t i = 0; i < keys->elements; i++) {
    redisReply *rp = NULL, *rc = NULL;
    if (redisGetReply(c, (void **)&rp) != REDIS_OK ||
        redisGetReply(c, (void **)&rc) != REDIS_OK) {
      fprintf(stderr, "loyaltyctl: redis: %s\n", c->errstr);
      if (rp)
        freeReplyObject(rp);
      return -1;
    }
    struct lp_buf text;
    lp_buf_init(&text);
    if (rp->type == REDIS_REPLY_STRING)
      lp_buf_append(&text, rp->str, rp->len);
    if (rc->type == REDIS_REPLY_STRING)
      lp_buf_append(&text, rc->str, rc->len);
    struct lp_profile p;
    char err[256];
    const char *k = keys->element[i]->str;
    if (lp_profile_from_snapshot((const char *)text.data, text.len, &p, err,
                                 sizeof(err)) != 0) {
      fprintf(stderr, "loyaltyctl: %s: %s (skipped)\n", k, err);
    } else if (p.first_order_ms) {
      struct lp_scores s;
      lp_model_score(m, &p, at, &s);
      t->members++;
      t->segment[s.segment]++;
      t->segment_clv[s.segment] += s.clv_12m;
      t->churn[s.churn]++;
      t->next_best[s.next_best >= 0 ? (size_t)s.next_best : m->n_rewards]++;
      t->clv += s.clv_12m;
      t->p_alive += s.p_alive;
      if (per_member) {
        const char *open = strchr(k, '{'), *close = strrchr(k, '}');
        char member[600];
        snprintf(member, sizeof(member), "%.*s",
                 open && close > open ? (int)(close - open - 1) : 0,
                 open ? open + 1 : "");
        print_member(m, member, &s);
      }
    }
    lp_profile_clear(&p);
    lp_buf_free(&text);
    freeReplyObject(rp);
    freeReplyObject(rc);
  }
  return 0;
}

static void print_tally(const struct lp_model *m, const char *at_text,
                        const struct tally *t) {
  char total[32];
  money(t->clv, total, sizeof(total));
  printf("{\"model\":%s,\"at\":%s,\"members\":%ld,\"clv_12m\":\"%s\","
         "\"mean_p_alive\":%.4f}\n",
         lp_log_str(m->version), lp_log_str(at_text), t->members, total,
         t->members ? t->p_alive / (double)t->members : 0.0);
  for (int s = 0; s < LP_SEG_COUNT; s++) {
    char clv[32];
    money(t->segment_clv[s], clv, sizeof(clv));
    printf("{\"segment\":%s,\"members\":%ld,\"share\":%.4f,\"clv_12m\":\"%s\"}"
           "\n",
           lp_log_str(lp_value_segment_name((enum lp_value_segment)s)),
           t->segment[s],
           t->members ? (double)t->segment[s] / (double)t->members : 0.0, clv);
  }
  for (int b = 0; b < 3; b++)
    printf("{\"churn_risk\":%s,\"members\":%ld}\n",
           lp_log_str(lp_churn_band_name((enum lp_churn_band)b)), t->churn[b]);
  for (size_t r = 0; r <= m->n_rewards; r++)
    if (t->next_best[r] || r < m->n_rewards)
      printf("{\"next_best_reward\":%s,\"members\":%ld}\n",
             lp_log_str(r < m->n_rewards ? m->rewards[r].id : NULL),
             t->next_best[r]);
}

static int parse_at(const char *s, int64_t *ms) {
  char iso[64];
  if (strlen(s) == 8 && strspn(s, "0123456789") == 8) /* YYYYMMDD */
    snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2sT23:59:59Z", s, s + 4, s + 6);
  else if (strlen(s) == 10) /* YYYY-MM-DD: the end of that day */
    snprintf(iso, sizeof(iso), "%sT23:59:59Z", s);
  else
    snprintf(iso, sizeof(iso), "%s", s);
  return lp_time_parse_iso8601(iso, ms);
}

int lp_segments_main(int argc, char **argv) {
  const char *redis = "127.0.0.1:6379", *ns = "loyalty", *at_s = NULL;
  const char *model_key = "model:clv";
  int per_member = 0;
  static const struct option opts[] = {
      {"redis", required_argument, NULL, 'r'},
      {"namespace", required_argument, NULL, 'n'},
      {"at", required_argument, NULL, 'a'},
      {"model-key", required_argument, NULL, 'k'},
      {"members", no_argument, NULL, 'm'},
      {NULL, 0, NULL, 0}};
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'r':
      redis = optarg;
      break;
    case 'n':
      ns = optarg;
      break;
    case 'a':
      at_s = optarg;
      break;
    case 'k':
      model_key = optarg;
      break;
    case 'm':
      per_member = 1;
      break;
    default:
      fputs("loyaltyctl: segments: unknown option (see loyaltyctl --help)\n",
            stderr);
      return 2;
    }
  }
  int64_t at = lp_now_ms();
  if (optind < argc || (at_s && parse_at(at_s, &at) != 0)) {
    fputs("loyaltyctl: segments: --at TIME (ISO 8601 or YYYY-MM-DD)\n", stderr);
    return 2;
  }
  char at_text[40];
  lp_time_format_iso8601(at, at_text, sizeof(at_text));
  char host[256];
  int port;
  if (lp_host_port_parse(redis, host, sizeof(host), &port)) {
    fprintf(stderr,
            "loyaltyctl: segments: --redis \"%s\": expected HOST:PORT\n",
            redis);
    return 2;
  }
  redisContext *rc = redisConnect(host, port);
  if (!rc || rc->err) {
    fprintf(stderr, "loyaltyctl: redis %s: %s\n", redis,
            rc ? rc->errstr : "out of memory");
    if (rc)
      redisFree(rc);
    return 1;
  }
  int status = 1;
  struct lp_model m;
  char err[1024], key[600];
  snprintf(key, sizeof(key), "%s:%s", ns, model_key);
  redisReply *r = redisCommand(rc, "GET %s", key);
  if (!r || r->type != REDIS_REPLY_STRING) {
    fprintf(stderr,
            "loyaltyctl: no model at %s (run the trainer with "
            "--redis)\n",
            key);
    goto done;
  }
  if (lp_model_parse(r->str, r->len, key, &m, err, sizeof(err)) != 0) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    goto done;
  }
  struct tally t;
  memset(&t, 0, sizeof(t));
  char cursor[32] = "0", pattern[600];
  snprintf(pattern, sizeof(pattern), "%s:p:*", ns);
  do {
    redisReply *s =
        redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
    if (!s || s->type != REDIS_REPLY_ARRAY || s->elements != 2) {
      fprintf(stderr, "loyaltyctl: redis SCAN failed\n");
      if (s)
        freeReplyObject(s);
      goto done;
    }
    snprintf(cursor, sizeof(cursor), "%s", s->element[0]->str);
    int bad = score_keys(rc, &m, s->element[1], strlen(ns), at, per_member, &t);
    freeReplyObject(s);
    if (bad)
      goto done;
  } while (strcmp(cursor, "0") != 0);
  if (!per_member)
    print_tally(&m, at_text, &t);
  status = 0;
done:
  if (r)
    freeReplyObject(r);
  redisFree(rc);
  return status;
}
