/*
 * datetime — pure conversions from Debezium's time encodings to ClickHouse DateTime/Date text.
 *
 * Everything here is UTC arithmetic on integers: no time zone, no libc time functions, so the
 * process's TZ never changes a result. Used by the `cdcpipe` Lua module (cdc.datetime, cdc.date).
 */
#ifndef CDCPIPE_DATETIME_H
#define CDCPIPE_DATETIME_H

#include <stddef.h>
#include <stdint.h>

/* "YYYY-MM-DD hh:mm:ss" plus NUL; years beyond 9999 or before 0 are rejected. */
#define DT_DATETIME_LEN 20
/* "YYYY-MM-DD" plus NUL. */
#define DT_DATE_LEN 11

typedef enum { DT_SECONDS, DT_MILLIS, DT_MICROS, DT_NANOS } dt_unit;

/* Parses "s", "ms", "us", "ns" into *unit. Returns 0, or -1 for anything else. */
const char *dt_unit_name(dt_unit unit); /* "s", "ms", "us", "ns" */
int64_t dt_units_per_second(dt_unit unit);

/* Floor division and the matching non-negative remainder; d > 0. */
int64_t dt_floor_div(int64_t v, int64_t d);
int64_t dt_floor_mod(int64_t v, int64_t d);

int dt_parse_unit(const char *name, dt_unit *unit);

/* Formats an epoch value (may be negative: before 1970) counted in `unit` as UTC
 * "YYYY-MM-DD hh:mm:ss" into out. Sub-second parts are floored (-1 ms is 1969-12-31 23:59:59).
 * Returns 0, or -1 with a message in err when the year falls outside 0000..9999. */
int dt_format_epoch(int64_t value, dt_unit unit, char out[DT_DATETIME_LEN], char *err,
                    size_t errlen);

/* Formats an ISO-8601 date-time string as UTC "YYYY-MM-DD hh:mm:ss". Accepts
 * "YYYY-MM-DD", "YYYY-MM-DDThh:mm[:ss[.fraction]]" with 'T' or ' ' as separator, followed by
 * nothing (taken as UTC), "Z", or an offset "+hh", "+hh:mm", "+hhmm" (also '-'). The fraction is
 * dropped (floored). Returns 0, or -1 with err naming the input when it cannot be parsed or a
 * field is out of range (month 13, Feb 30, hour 24, ...). */
int dt_format_iso(const char *s, size_t len, char out[DT_DATETIME_LEN], char *err, size_t errlen);

/* Parses an ISO-8601 date-time as dt_format_iso does, into seconds since the epoch (UTC, floored)
 * and the sub-second part in nanoseconds (0..999999999; fraction digits after the ninth are
 * dropped). Returns 0, or -1 with the same messages as dt_format_iso. */
int dt_parse_iso(const char *s, size_t len, int64_t *secs, uint32_t *nanos, char *err,
                 size_t errlen);

/* Formats days since 1970-01-01 (Debezium io.debezium.time.Date; may be negative) as
 * "YYYY-MM-DD". Returns 0, or -1 with err when outside 0000..9999. */
int dt_format_date(int64_t days, char out[DT_DATE_LEN], char *err, size_t errlen);

/* Days since 1970-01-01 of a proleptic Gregorian civil date (Howard Hinnant's algorithm). */
int64_t dt_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
