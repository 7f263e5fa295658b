/*
 * stats: `indimail stats [--since WHEN] [--top N] [--html FILE] [FILE...]`,
 * a report of what the key=value logs say (messages, bytes, top senders,
 * recipients, domains and clients, rejections by policy, delays, traffic
 * per hour). docs/operations.md, "Log reports".
 */
#ifndef INDIMAIL_STATS_H
#define INDIMAIL_STATS_H

int	stats_main(int argc, char **argv);

#endif
