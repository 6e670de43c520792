/*
 * import.h — `loyaltyctl import shopify|bigcommerce|csv`: resumable
 * backfills of a shop's history into the orders (or customers) topic,
 * exactly once per event id across kills and restarts (see import.c and
 * docs/importers.md).
 */
#ifndef LP_LOYALTYCTL_IMPORT_H
#define LP_LOYALTYCTL_IMPORT_H

/* The command's part of loyaltyctl --help. */
extern const char lp_import_usage[];

/* Runs `loyaltyctl import ...` (argv[1] is "import"); returns the exit
 * status: 0 complete, 1 run-time failure or bad records skipped, 2 usage,
 * 130 / 143 stopped by SIGINT / SIGTERM (resume with the same command). */
int lp_import_main(int argc, char **argv);

#endif
