/* Geolocation database: a MaxMind-format file (GeoLite2, DB-IP; read with libmaxminddb) turned at
 * load time into prefix maps and a location table, so that a lookup on the query path is one
 * binary search and no string work.
 *
 * Load and close on the control thread; lookups from any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zj_geo_loc {
    uint16_t continent;   /* ZJ_GEO_CODE2, 0 = unknown */
    uint16_t country;     /* ZJ_GEO_CODE2 (ISO 3166-1 alpha-2), 0 = unknown */
    uint32_t subdivision; /* first ISO 3166-2 subdivision (zj_img_pset_d packing), 0 = none */
} zj_geo_loc_t;

typedef struct zj_geo zj_geo_t;

/** Read path into a new database. On failure a negative zj_err and a one-line reason in err. */
int zj_geo_open(const char *path, zj_geo_t **out, char *err, size_t errcap);

/** NULL is accepted. */
void zj_geo_close(zj_geo_t *g);

/** Location of addr (family AF_INET: 4 bytes, AF_INET6: 16, network order). Returns false when
 *  the database has no location for it. *scope receives the prefix length of the database
 *  network that decided the answer (also when that network has no location); for an address
 *  in no network of the database, that of the largest block around addr in none (the empty
 *  records of the file are merged at load). Hot-path safe. */
bool zj_geo_lookup(const zj_geo_t *g, int family, const uint8_t *addr, zj_geo_loc_t *loc,
                   uint8_t *scope);

/** Networks and distinct locations loaded, for status output. */
size_t zj_geo_networks(const zj_geo_t *g);
size_t zj_geo_locations(const zj_geo_t *g);
