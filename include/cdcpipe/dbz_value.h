/*
 * dbz_value — one Debezium-encoded Lua value converted to the text a ClickHouse column takes,
 * by kind: the single converter behind both the cdc.* helpers (src/lua_module.c, which pick the
 * kind from their arguments) and cdc.auto (src/schema.c, which picks it from the field's
 * Connect schema). Each kind checks the value's Lua shape, then calls the pure conversion in
 * debezium_types.h / datetime.h.
 *
 * Raises no Lua error itself (only lua_push* may, when out of memory): a value that does not
 * fit its kind returns -1 with a message in the caller's err buffer ("expected UUID text, got a
 * number", "invalid base64 \"A!\": '!' at position 1"), which the caller prefixes with where
 * the value was (cdc.uuid, cdc.auto: after.id (io.debezium.data.Uuid)). The caller owns the two
 * scratch buffers (so a Lua error while pushing leaks nothing); they are reset on every call.
 */
#ifndef CDCPIPE_DBZ_VALUE_H
#define CDCPIPE_DBZ_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "cdcpipe/datetime.h"
#include "cdcpipe/debezium_types.h"
#include "cdcpipe/strbuf.h"

typedef enum {
    DBZ_V_DECIMAL,         /* Connect Decimal: base64 of the unscaled integer with `scale`; or a
                              number (decimal.format=NUMERIC, decimal.handling.mode=double) */
    DBZ_V_DECIMAL_TEXT,    /* decimal.handling.mode=string: plain decimal text, checked */
    DBZ_V_VSDECIMAL,       /* io.debezium.data.VariableScaleDecimal: a {scale, value} table */
    DBZ_V_DATE,            /* whole days since 1970-01-01 → "YYYY-MM-DD" */
    DBZ_V_TIME,            /* whole `unit`s past midnight → "hh:mm:ss[.f]" (`precision`) */
    DBZ_V_ZONED_TIME,      /* ZonedTime text → the UTC time of day (`precision`) */
    DBZ_V_TIMESTAMP,       /* whole epoch `unit`s → DateTime text (precision < 0) or DateTime64 */
    DBZ_V_ZONED_TIMESTAMP, /* ISO-8601 text → DateTime text (precision < 0) or DateTime64 */
    DBZ_V_DURATION,        /* MicroDuration: whole microseconds → `interval` style text */
    DBZ_V_INTERVAL,        /* io.debezium.time.Interval: ISO-8601 duration text, checked */
    DBZ_V_UUID,            /* UUID text → lowercase */
    DBZ_V_BITS,            /* io.debezium.data.Bits: base64 bytes → "10110" (`length`) */
    DBZ_V_BYTES,           /* `binary`-encoded bytes → raw bytes, or lowercase hex with `hex` */
} dbz_value_kind;

typedef struct {
    dbz_value_kind kind;
    dt_unit unit;  /* TIME, TIMESTAMP */
    int precision; /* TIME, ZONED_TIME: -1 = as PostgreSQL prints it, else 0..9 digits;
                      TIMESTAMP, ZONED_TIMESTAMP: -1 = DateTime (seconds), else DateTime64(p) */
    int64_t param; /* DECIMAL: the scale (needed for base64 text); BITS: the length (0: 8 per
                      byte) */
    dbz_binary_mode binary;      /* BYTES */
    bool hex;                    /* BYTES: hex text instead of the raw bytes */
    dbz_interval_style interval; /* DURATION */
} dbz_value_spec;

/* Converts the Lua value at idx by spec and pushes the resulting string (or, for nothing else,
 * returns -1 with err and pushes nothing). Integer kinds take integers and floats with an
 * integral value. scratch: two caller-owned buffers. */
int dbz_value_convert(lua_State *L, int idx, const dbz_value_spec *spec, strbuf scratch[2],
                      char *err, size_t errlen);

/* True when the value at idx is the unchanged-TOAST placeholder (placeholder; NULL means
 * Debezium's default) in any of its shapes: text, bytes encodings, {"P":"P"} hstore json, a
 * one-element text[] / uuid[], int[] of its bytes, an hstore map {P = P}. Leaves the stack as
 * it was; raises no error. */
bool dbz_value_is_unavailable(lua_State *L, int idx, const char *placeholder);

#endif
