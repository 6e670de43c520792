/*
 * operator.c — loyaltyctl's operator commands on the executor's Redis
 * state (common/exec_store.h): the approval queue (list, approve,
 * reject, singly or by rule, with who), kill switches, campaign budgets
 * and their burn, and a member's view (profile, idempotency records,
 * reward cost per period). Output is JSON, one object per line.
 */
#include "operator.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

#include "exec_store.h"
#include "log.h"
#include "util.h"

const char lp_operator_usage[] =
    "  approvals [--rule R]\n"
    "      Lists decisions waiting for approval (id, rule, campaign,\n"
    "      when parked, when it expires).\n"
    "  approve   (--decision ID | --rule R) --actor NAME\n"
    "  reject    (--decision ID | --rule R) --actor NAME\n"
    "      Settles waiting decisions; who and when go into the audit\n"
    "      record. An approved decision is carried out by the executor;\n"
    "      a rejected one never is, and its reserved budget returns.\n"
    "  kill      set|clear --scope all|rule:ID|campaign:ID|platform:NAME\n"
    "            [--note TEXT]\n"
    "      Kill switches, in force on the executor's next decision.\n"
    "  budget    set --campaign C --amount 100.00 | show --campaign C\n"
    "            [--period-s S]\n"
    "      A campaign's budget per period (0 = back to the default), and\n"
    "      its spend in the current and previous periods.\n"
    "  member    --shop S --customer C\n"
    "      The member's idempotency records and reward cost per period.\n"
    "  Operator commands take --redis HOST:PORT (default 127.0.0.1:6379)\n"
    "  and --namespace NS (default loyalty).\n";

struct op_opts {
  const char *redis, *ns, *decision, *rule, *actor, *scope, *note, *campaign,
      *amount, *shop, *customer;
  long period_s;
};

static int usage_error(const char *msg) {
  fprintf(stderr, "loyaltyctl: %s (see loyaltyctl --help)\n", msg);
  return 2;
}

static int parse_redis(const char *spec, char *host, size_t size, int *port) {
  snprintf(host, size, "127.0.0.1");
  *port = 6379;
  return spec ? lp_host_port_parse(spec, host, size, port) : 0;
}

static struct lp_exec_store *open_store(const struct op_opts *o) {
  char host[256], err[512];
  int port;
  if (parse_redis(o->redis, host, sizeof(host), &port)) {
    usage_error("--redis HOST:PORT");
    return NULL;
  }
  struct lp_exec_store_config c = {.host = host,
                                   .port = port,
                                   .ns = o->ns ? o->ns : "loyalty",
                                   .member_period_s = 86400,
                                   .frequency_period_s = 86400,
                                   .campaign_period_s = 86400};
  struct lp_exec_store *s = lp_exec_store_new(&c, err, sizeof(err));
  if (!s)
    fprintf(stderr, "loyaltyctl: %s\n", err);
  return s;
}

static redisContext *open_redis(const struct op_opts *o) {
  char host[256];
  int port;
  if (parse_redis(o->redis, host, sizeof(host), &port)) {
    usage_error("--redis HOST:PORT");
    return NULL;
  }
  redisContext *c = redisConnect(host, port);
  if (!c || c->err) {
    fprintf(stderr, "loyaltyctl: redis %s:%d: %s\n", host, port,
            c ? c->errstr : "out of memory");
    if (c)
      redisFree(c);
    return NULL;
  }
  return c;
}

static void iso_ms(int64_t ms, char *out, size_t size) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_approvals(const struct op_opts *o, const char *verb) {
  struct lp_exec_store *s = open_store(o);
  if (!s)
    return 1;
  char err[512];
  struct lp_exec_approval *list;
  size_t n;
  if (lp_exec_store_approvals(s, &list, &n, err, sizeof(err))) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    lp_exec_store_destroy(&s);
    return 1;
  }
  int rc = 0;
  size_t settled = 0;
  for (size_t i = 0; i < n; i++) {
    struct lp_exec_approval *a = &list[i];
    int match = (!o->rule || strcmp(o->rule, a->rule) == 0) &&
                (!o->decision || strcmp(o->decision, a->decision_id) == 0);
    if (match && !verb) {
      char parked[32], until[32];
      iso_ms(a->parked_ms, parked, sizeof(parked));
      iso_ms(a->until_ms, until, sizeof(until));
      printf("{\"decision_id\":%s,\"rule\":%s,\"campaign\":%s,"
             "\"parked\":\"%s\",\"expires\":\"%s\"}\n",
             lp_log_str(a->decision_id), lp_log_str(a->rule),
             lp_log_str(a->campaign), parked, until);
    } else if (match) {
      if (lp_exec_store_settle(s, a->decision_id, verb, o->actor, err,
                               sizeof(err))) {
        fprintf(stderr, "loyaltyctl: %s\n", err);
        rc = 1;
      } else {
        printf("{\"decision_id\":%s,\"fate\":\"%s\",\"actor\":%s}\n",
               lp_log_str(a->decision_id), verb, lp_log_str(o->actor));
        settled++;
      }
    }
  }
  for (size_t i = 0; i < n; i++)
    lp_exec_approval_clear(&list[i]);
  free(list);
  /* A single decision that was not waiting is an error the operator
   * must see (settled twice, expired, or a typo). */
  if (verb && o->decision && settled == 0 && rc == 0) {
    fprintf(stderr, "loyaltyctl: decision %s is not waiting for approval\n",
            o->decision);
    rc = 1;
  }
  if (verb && o->rule)
    fprintf(stderr, "loyaltyctl: %zu decisions of rule %s %s\n", settled,
            o->rule, verb);
  lp_exec_store_destroy(&s);
  return rc;
}

static int cmd_kill(const struct op_opts *o, const char *action) {
  if (!action || (strcmp(action, "set") && strcmp(action, "clear")))
    return usage_error("kill set|clear --scope SCOPE");
  if (!o->scope)
    return usage_error("kill: --scope is required");
  struct lp_exec_store *s = open_store(o);
  if (!s)
    return 1;
  char err[512];
  int rc = strcmp(action, "set") == 0
               ? lp_exec_store_kill_set(s, o->scope, o->note, err, sizeof(err))
               : lp_exec_store_kill_clear(s, o->scope, err, sizeof(err));
  if (rc)
    fprintf(stderr, "loyaltyctl: %s\n", err);
  else
    printf("{\"kill_switch\":%s,\"state\":\"%s\"}\n", lp_log_str(o->scope),
           strcmp(action, "set") == 0 ? "set" : "cleared");
  lp_exec_store_destroy(&s);
  return rc ? 1 : 0;
}

static int cmd_budget(const struct op_opts *o, const char *action) {
  if (!action || (strcmp(action, "set") && strcmp(action, "show")))
    return usage_error("budget set|show --campaign C");
  if (!o->campaign)
    return usage_error("budget: --campaign is required");
  const char *ns = o->ns ? o->ns : "loyalty";
  if (strcmp(action, "set") == 0) {
    int64_t micros;
    if (!o->amount || lp_money_parse(o->amount, &micros) || micros < 0)
      return usage_error("budget set: --amount DECIMAL (e.g. 250.00)");
    struct lp_exec_store *s = open_store(o);
    if (!s)
      return 1;
    char err[512];
    int rc = lp_exec_store_budget_set(s, o->campaign, micros, err, sizeof(err));
    if (rc)
      fprintf(stderr, "loyaltyctl: %s\n", err);
    else
      printf("{\"campaign\":%s,\"budget\":\"%s\"}\n", lp_log_str(o->campaign),
             o->amount);
    lp_exec_store_destroy(&s);
    return rc ? 1 : 0;
  }
  redisContext *c = open_redis(o);
  if (!c)
    return 1;
  long period = o->period_s > 0 ? o->period_s : 86400;
  int64_t now_period = lp_now_ms() / 1000 / period;
  redisReply *b = redisCommand(c, "HGET %s:budgets %s", ns, o->campaign);
  char budget[32] = "default";
  if (b && b->type == REDIS_REPLY_STRING)
    lp_money_format(strtoll(b->str, NULL, 10), budget, sizeof(budget));
  if (b)
    freeReplyObject(b);
  printf("{\"campaign\":%s,\"budget\":\"%s\",\"period_s\":%ld,\"spend\":[",
         lp_log_str(o->campaign), budget, period);
  for (int i = 0; i < 2; i++) {
    redisReply *r = redisCommand(c, "GET %s:b:{%s}:%lld", ns, o->campaign,
                                 (long long)(now_period - i));
    char spend[32];
    lp_money_format(
        r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0,
        spend, sizeof(spend));
    char start[32];
    iso_ms((now_period - i) * period * 1000, start, sizeof(start));
    printf("%s{\"period_start\":\"%s\",\"spent\":\"%s\"}", i ? "," : "", start,
           spend);
    if (r)
      freeReplyObject(r);
  }
  printf("]}\n");
  redisFree(c);
  return 0;
}

/* Copies s into out with Redis glob characters escaped, so a shop or
 * customer id matches only itself in SCAN MATCH. */
static void glob_escape(const char *s, char *out, size_t size) {
  size_t o = 0;
  for (; *s && o + 2 < size; s++) {
    if (strchr("*?[]\\", *s))
      out[o++] = '\\';
    out[o++] = *s;
  }
  out[o] = '\0';
}

/* Calls fn for every key matching pattern (SCAN: never blocks Redis). */
static void scan_keys(redisContext *c, const char *pattern,
                      void (*fn)(redisContext *, const char *)) {
  char cursor[32] = "0";
  do {
    redisReply *r =
        redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      if (r)
        freeReplyObject(r);
      return;
    }
    snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++)
      fn(c, r->element[1]->element[i]->str);
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
}

static void print_record(redisContext *c, const char *key) {
  redisReply *h = redisCommand(c, "HGETALL %s", key);
  const char *id = strrchr(key, ':');
  printf("{\"decision_id\":%s", lp_log_str(id ? id + 1 : key));
  for (size_t k = 0; h && h->type == REDIS_REPLY_ARRAY && k + 1 < h->elements;
       k += 2)
    printf(",%s:%s", lp_log_str(h->element[k]->str),
           lp_log_str(h->element[k + 1]->str));
  printf("}\n");
  if (h)
    freeReplyObject(h);
}

static void print_cost(redisContext *c, const char *key) {
  redisReply *v = redisCommand(c, "GET %s", key);
  char cost[32];
  lp_money_format(v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10)
                                                     : 0,
                  cost, sizeof(cost));
  const char *period = strrchr(key, ':');
  printf("{\"reward_cost_period\":%s,\"cost\":\"%s\"}\n",
         lp_log_str(period ? period + 1 : ""), cost);
  if (v)
    freeReplyObject(v);
}

static int cmd_member(const struct op_opts *o) {
  if (!o->shop || !o->customer)
    return usage_error("member: --shop and --customer are required");
  redisContext *c = open_redis(o);
  if (!c)
    return 1;
  const char *ns = o->ns ? o->ns : "loyalty";
  char shop[512], customer[512], pattern[1200];
  glob_escape(o->shop, shop, sizeof(shop));
  glob_escape(o->customer, customer, sizeof(customer));
  snprintf(pattern, sizeof(pattern), "%s:x:{%s:%s}:*", ns, shop, customer);
  scan_keys(c, pattern, print_record);
  snprintf(pattern, sizeof(pattern), "%s:g:{%s:%s}:cost:*", ns, shop, customer);
  scan_keys(c, pattern, print_cost);
  redisFree(c);
  return 0;
}

int lp_operator_is_command(const char *cmd) {
  static const char *const cmds[] = {"approvals", "approve", "reject",
                                     "kill",      "budget",  "member"};
  for (size_t i = 0; i < LP_ARRAY_LEN(cmds); i++)
    if (strcmp(cmd, cmds[i]) == 0)
      return 1;
  return 0;
}

int lp_operator_main(int argc, char **argv) {
  const char *cmd = argv[1];
  struct op_opts o;
  memset(&o, 0, sizeof(o));
  static const struct option longopts[] = {
      {"redis", required_argument, NULL, 'r'},
      {"namespace", required_argument, NULL, 'n'},
      {"decision", required_argument, NULL, 'd'},
      {"rule", required_argument, NULL, 'R'},
      {"actor", required_argument, NULL, 'a'},
      {"scope", required_argument, NULL, 'S'},
      {"note", required_argument, NULL, 'N'},
      {"campaign", required_argument, NULL, 'c'},
      {"amount", required_argument, NULL, 'A'},
      {"shop", required_argument, NULL, 's'},
      {"customer", required_argument, NULL, 'u'},
      {"period-s", required_argument, NULL, 'p'},
      {NULL, 0, NULL, 0}};
  /* "kill set ...", "budget show ...": the action is the next word. */
  const char *action = NULL;
  int first = 2;
  if ((strcmp(cmd, "kill") == 0 || strcmp(cmd, "budget") == 0) && argc > 2 &&
      argv[2][0] != '-') {
    action = argv[2];
    first = 3;
  }
  optind = first;
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'r':
      o.redis = optarg;
      break;
    case 'n':
      o.ns = optarg;
      break;
    case 'd':
      o.decision = optarg;
      break;
    case 'R':
      o.rule = optarg;
      break;
    case 'a':
      o.actor = optarg;
      break;
    case 'S':
      o.scope = optarg;
      break;
    case 'N':
      o.note = optarg;
      break;
    case 'c':
      o.campaign = optarg;
      break;
    case 'A':
      o.amount = optarg;
      break;
    case 's':
      o.shop = optarg;
      break;
    case 'u':
      o.customer = optarg;
      break;
    case 'p':
      o.period_s = atol(optarg);
      break;
    default:
      return usage_error("unknown option");
    }
  }
  if (optind < argc)
    return usage_error("unexpected argument");
  if (strcmp(cmd, "approvals") == 0)
    return cmd_approvals(&o, NULL);
  if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "reject") == 0) {
    if (!o.decision && !o.rule)
      return usage_error("approve/reject: --decision ID or --rule R");
    if (!o.actor || !*o.actor)
      return usage_error("approve/reject: --actor NAME is required (audit)");
    return cmd_approvals(&o,
                         strcmp(cmd, "approve") == 0 ? "approved" : "rejected");
  }
  if (strcmp(cmd, "kill") == 0)
    return cmd_kill(&o, action);
  if (strcmp(cmd, "budget") == 0)
    return cmd_budget(&o, action);
  return cmd_member(&o);
}
