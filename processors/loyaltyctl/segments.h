/*
 * segments.h — loyaltyctl segments: the member-value scores of every
 * stored member under the model in force (see segments.c).
 */
#ifndef LP_LOYALTYCTL_SEGMENTS_H
#define LP_LOYALTYCTL_SEGMENTS_H

/* The command's part of --help. */
extern const char lp_segments_usage[];

/* Runs "segments" (argv[1]) with its options; the exit status (0, 1 on
 * a run-time failure, 2 usage). */
int lp_segments_main(int argc, char **argv);

#endif
