/*
 * operator.h — loyaltyctl's operator commands on the executor's state in
 * Redis (approvals, kill switches, budgets, a member's records); see
 * operator.c.
 */
#ifndef LP_LOYALTYCTL_OPERATOR_H
#define LP_LOYALTYCTL_OPERATOR_H

/* The commands' part of --help. */
extern const char lp_operator_usage[];

/* 1 when cmd is one of the operator commands. */
int lp_operator_is_command(const char *cmd);

/* Runs argv[1] with its options; returns the exit status (0, 1 run-time
 * failure, 2 usage). */
int lp_operator_main(int argc, char **argv);

#endif
