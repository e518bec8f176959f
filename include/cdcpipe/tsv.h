/*
 * tsv — reading ClickHouse's TabSeparated answers.
 */
#ifndef CDCPIPE_TSV_H
#define CDCPIPE_TSV_H

/* TSV field unescaping, in place: \t \n \r \b \f \0 \\ \' and any other escaped character as
 * itself. */
void tsv_unescape(char *s);

#endif
