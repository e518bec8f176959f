/*
 * start_position — where consumption starts when this process first gets a partition (--from).
 *
 *   committed   the group's committed offset; the earliest offset when the group has none
 *               (a CDC sink must never skip events by default)
 *   beginning   the earliest offset still in the topic
 *   end         only events produced from now on
 *   <unix-ms>   the first event with a timestamp at or after that time (offsets-for-times)
 *   -<N>s       the same, N seconds before start-up (also -<N>m, -<N>h)
 */
#ifndef CDCPIPE_START_POSITION_H
#define CDCPIPE_START_POSITION_H

#include <stddef.h>
#include <stdint.h>

typedef enum { START_COMMITTED, START_BEGINNING, START_END, START_TIMESTAMP } start_kind;

typedef struct {
    start_kind kind;
    int64_t timestamp_ms; /* START_TIMESTAMP: absolute unix milliseconds */
} start_position;

/* Parses text; relative forms are resolved against the current wall clock. Returns 0, or -1 with
 * err quoting the text and listing the accepted forms. */
int start_position_parse(const char *text, start_position *pos, char *err, size_t errlen);

#endif
