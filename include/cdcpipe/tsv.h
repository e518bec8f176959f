/*
 * tsv — reading ClickHouse's TabSeparated answers.
 */
#ifndef CDCPIPE_TSV_H
#define CDCPIPE_TSV_H

/* TSV field unescaping, in place: \t \n \r \b \f \0 \\ \' and any other escaped character as
 * itself. */
void tsv_unescape(char *s);

/* The next line of an answer at *p (NULL: none), split off in place (its '\n' becomes '\0') and
 * *p moved past it; NULL at the end (after the last '\n'). */
char *tsv_line(char **p);

/* The next field of a line at *p, split off in place (its tab becomes '\0') and *p moved past it;
 * "" past the last field. */
char *tsv_field(char **p);

#endif
