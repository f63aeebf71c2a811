// btyd_state(day DATE, amount DOUBLE, end DATE) -> STRUCT(days BIGINT, first_day INTEGER,
//   last_day INTEGER, first_total DOUBLE, rest_total DOUBLE, bad BIGINT)
//
// The BTYD summary of one customer in one pass over their rows (segkit.features.btyd_summary):
// the number of distinct purchase days, the first and last of them, the revenue of the first
// day (every row of that day summed) and of the other days; rows after `end` (a NULL end:
// none) are left out, and `bad` counts the rows with an empty day or an empty, NaN or infinite
// amount (the caller stops on them with segkit's message).
//
// Why written here: DuckDB SQL has no aggregate for "distinct days, and the sum over the rows
// of the first day", so its exact plan is two GROUP BYs (customer-day, then customer), 2.4x
// the CPU of one GROUP BY per customer (benchmarks/results/bench_features_others.md). This
// aggregate is that one GROUP BY. It is compiled on first use against DuckDB's stable C
// extension API (segkit/core/native/__init__.py); without a C compiler segkit runs the SQL.
//
// Per customer the state keeps the first INLINE_DAYS distinct days inline (unsorted, checked
// by a linear scan that the compiler vectorizes), further days in an open-addressing hash set
// on the heap, freed by the destructor. Sums are kept apart (first day, other days) rather
// than subtracted at the end, so the result does not lose digits when the first day dominates.
#include "duckdb_extension.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

DUCKDB_EXTENSION_EXTERN

#define INLINE_DAYS 8
#define EMPTY INT32_MIN
#define PREFETCH 16  // rows ahead (16 to 64 measured alike)
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_FOR_WRITE(p) __builtin_prefetch((p), 1)
#else
#define PREFETCH_FOR_WRITE(p) ((void)(p))
#endif

// The fields read for every row first: a state sits at a random place in memory.
typedef struct {
	int32_t n;                 // distinct days
	int32_t lo, hi;            // first and last day
	int32_t last;              // the day of this customer's previous row
	int32_t inl[INLINE_DAYS];  // the first INLINE_DAYS distinct days
	double first;              // revenue of the first day
	double rest;               // revenue of the other days
	int32_t *set;              // further days: open addressing, a power of two, at most half full
	int32_t set_n, set_cap;
	int64_t bad;
} State;

static idx_t state_size(duckdb_function_info info) {
	(void)info;
	return sizeof(State);
}

static void state_init(duckdb_function_info info, duckdb_aggregate_state state) {
	(void)info;
	memset(state, 0, sizeof(State));
}

static void state_destroy(duckdb_aggregate_state *states, idx_t count) {
	for (idx_t i = 0; i < count; i++) {
		State *st = (State *)states[i];
		free(st->set);
		st->set = NULL;
	}
}

// 1 if the day was not in the set; 0 if it was; -1 when out of memory.
static int set_put(State *st, int32_t day) {
	if (2 * (st->set_n + 1) > st->set_cap) {
		int32_t *old = st->set, old_cap = st->set_cap;
		int32_t cap = old_cap ? old_cap * 2 : 32;
		int32_t *grown = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
		if (!grown) {
			return -1;
		}
		for (int32_t j = 0; j < cap; j++) {
			grown[j] = EMPTY;
		}
		st->set = grown;
		st->set_cap = cap;
		st->set_n = 0;
		for (int32_t j = 0; j < old_cap; j++) {
			if (old[j] != EMPTY) {
				set_put(st, old[j]);
			}
		}
		free(old);
	}
	uint32_t mask = (uint32_t)st->set_cap - 1;
	uint32_t s = ((uint32_t)day * 2654435769u) & mask;  // Fibonacci hashing
	while (st->set[s] != EMPTY) {
		if (st->set[s] == day) {
			return 0;
		}
		s = (s + 1) & mask;
	}
	st->set[s] = day;
	st->set_n++;
	return 1;
}

static int add_day(State *st, int32_t day) {
	int32_t k = st->n < INLINE_DAYS ? st->n : INLINE_DAYS;
	int seen = 0;
	for (int32_t j = 0; j < k; j++) {
		seen |= st->inl[j] == day;
	}
	if (seen) {
		return 0;
	}
	if (st->n < INLINE_DAYS) {
		st->inl[st->n++] = day;
		return 0;
	}
	int added = set_put(st, day);
	if (added < 0) {
		return -1;
	}
	st->n += added;
	return 0;
}

static int add_row(State *st, int32_t day, double amount) {
	if (st->n == 0) {
		st->lo = st->hi = st->last = day;
		st->first = amount;
		st->inl[0] = day;
		st->n = 1;
		return 0;
	}
	if (day == st->last) {  // another line of the same day (an order's items come together)
		if (day == st->lo) {
			st->first += amount;
		} else {
			st->rest += amount;
		}
		return 0;
	}
	st->last = day;
	if (day < st->lo) {
		st->rest += st->first;
		st->first = amount;
		st->lo = day;
	} else if (day == st->lo) {
		st->first += amount;
	} else {
		st->rest += amount;
		if (day > st->hi) {
			st->hi = day;
		}
	}
	return add_day(st, day);
}

static int valid(uint64_t *mask, idx_t row) {
	return !mask || duckdb_validity_row_is_valid(mask, row);
}

static void update(duckdb_function_info info, duckdb_data_chunk input, duckdb_aggregate_state *states) {
	idx_t count = duckdb_data_chunk_get_size(input);
	duckdb_vector v_day = duckdb_data_chunk_get_vector(input, 0);
	duckdb_vector v_amount = duckdb_data_chunk_get_vector(input, 1);
	duckdb_vector v_end = duckdb_data_chunk_get_vector(input, 2);
	int32_t *day = (int32_t *)duckdb_vector_get_data(v_day);
	double *amount = (double *)duckdb_vector_get_data(v_amount);
	int32_t *end = (int32_t *)duckdb_vector_get_data(v_end);
	uint64_t *m_day = duckdb_vector_get_validity(v_day);
	uint64_t *m_amount = duckdb_vector_get_validity(v_amount);
	uint64_t *m_end = duckdb_vector_get_validity(v_end);
	for (idx_t i = 0; i < count; i++) {
		// The state of a row a few rows on is fetched from memory while this one is updated:
		// a state is at a random place, and the miss was most of this loop's time (perf).
		// 10% less CPU for the whole GROUP BY on the benchmark log (bench_btyd_outside.md).
		if (i + PREFETCH < count) {
			PREFETCH_FOR_WRITE(states[i + PREFETCH]);
			PREFETCH_FOR_WRITE((char *)states[i + PREFETCH] + 64);
		}
		// Halfway there, that state has arrived: a customer with more than INLINE_DAYS days
		// has the slot of that row's day fetched from its heap set, the second miss (87% of
		// set_put's time before; its day may be empty or after the end: a prefetch never faults).
		if (i + PREFETCH / 2 < count) {
			const State *ahead = (const State *)states[i + PREFETCH / 2];
			if (ahead->set) {
				uint32_t mask = (uint32_t)ahead->set_cap - 1;
				PREFETCH_FOR_WRITE(ahead->set + (((uint32_t)day[i + PREFETCH / 2] * 2654435769u) & mask));
			}
		}
		State *st = (State *)states[i];
		if (!valid(m_day, i) || !valid(m_amount, i) || !isfinite(amount[i])) {
			st->bad++;
			continue;
		}
		if (valid(m_end, i) && day[i] > end[i]) {
			continue;
		}
		if (add_row(st, day[i], amount[i]) < 0) {
			duckdb_aggregate_function_set_error(info, "btyd_state: out of memory");
			return;
		}
	}
}

static void combine(duckdb_function_info info, duckdb_aggregate_state *source, duckdb_aggregate_state *target,
                    idx_t count) {
	for (idx_t i = 0; i < count; i++) {
		State *s = (State *)source[i], *t = (State *)target[i];
		t->bad += s->bad;
		if (s->n == 0) {
			continue;
		}
		if (t->n == 0) {
			t->lo = s->lo;
			t->hi = s->hi;
			t->last = s->last;
			t->first = s->first;
			t->rest = s->rest;
		} else {
			if (s->lo < t->lo) {
				t->rest += t->first + s->rest;
				t->first = s->first;
				t->lo = s->lo;
			} else if (s->lo == t->lo) {
				t->first += s->first;
				t->rest += s->rest;
			} else {
				t->rest += s->first + s->rest;
			}
			if (s->hi > t->hi) {
				t->hi = s->hi;
			}
		}
		int32_t k = s->n < INLINE_DAYS ? s->n : INLINE_DAYS;
		int failed = 0;
		for (int32_t j = 0; j < k; j++) {
			failed |= add_day(t, s->inl[j]) < 0;
		}
		for (int32_t j = 0; j < s->set_cap; j++) {
			if (s->set[j] != EMPTY) {
				failed |= add_day(t, s->set[j]) < 0;
			}
		}
		if (failed) {
			duckdb_aggregate_function_set_error(info, "btyd_state: out of memory");
			return;
		}
	}
}

static void finalize(duckdb_function_info info, duckdb_aggregate_state *source, duckdb_vector result, idx_t count,
                     idx_t offset) {
	(void)info;
	int64_t *days = (int64_t *)duckdb_vector_get_data(duckdb_struct_vector_get_child(result, 0));
	int32_t *first_day = (int32_t *)duckdb_vector_get_data(duckdb_struct_vector_get_child(result, 1));
	int32_t *last_day = (int32_t *)duckdb_vector_get_data(duckdb_struct_vector_get_child(result, 2));
	double *first = (double *)duckdb_vector_get_data(duckdb_struct_vector_get_child(result, 3));
	double *rest = (double *)duckdb_vector_get_data(duckdb_struct_vector_get_child(result, 4));
	int64_t *bad = (int64_t *)duckdb_vector_get_data(duckdb_struct_vector_get_child(result, 5));
	for (idx_t i = 0; i < count; i++) {
		State *s = (State *)source[i];
		idx_t r = offset + i;
		days[r] = s->n;
		first_day[r] = s->lo;
		last_day[r] = s->hi;
		first[r] = s->first;
		rest[r] = s->rest;
		bad[r] = s->bad;
	}
}

DUCKDB_EXTENSION_ENTRYPOINT(duckdb_connection connection, duckdb_extension_info info,
                            struct duckdb_extension_access *access) {
	duckdb_logical_type t_date = duckdb_create_logical_type(DUCKDB_TYPE_DATE);
	duckdb_logical_type t_double = duckdb_create_logical_type(DUCKDB_TYPE_DOUBLE);
	duckdb_logical_type t_bigint = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
	duckdb_logical_type t_int = duckdb_create_logical_type(DUCKDB_TYPE_INTEGER);
	duckdb_logical_type members[6] = {t_bigint, t_int, t_int, t_double, t_double, t_bigint};
	const char *names[6] = {"days", "first_day", "last_day", "first_total", "rest_total", "bad"};
	duckdb_logical_type t_struct = duckdb_create_struct_type(members, names, 6);

	duckdb_aggregate_function f = duckdb_create_aggregate_function();
	duckdb_aggregate_function_set_name(f, "btyd_state");
	duckdb_aggregate_function_add_parameter(f, t_date);
	duckdb_aggregate_function_add_parameter(f, t_double);
	duckdb_aggregate_function_add_parameter(f, t_date);
	duckdb_aggregate_function_set_return_type(f, t_struct);
	duckdb_aggregate_function_set_functions(f, state_size, state_init, update, combine, finalize);
	duckdb_aggregate_function_set_destructor(f, state_destroy);
	duckdb_aggregate_function_set_special_handling(f);  // see NULLs: they are counted in `bad`
	duckdb_state rc = duckdb_register_aggregate_function(connection, f);

	duckdb_destroy_aggregate_function(&f);
	duckdb_destroy_logical_type(&t_struct);
	duckdb_destroy_logical_type(&t_date);
	duckdb_destroy_logical_type(&t_double);
	duckdb_destroy_logical_type(&t_bigint);
	duckdb_destroy_logical_type(&t_int);
	if (rc != DuckDBSuccess) {
		access->set_error(info, "btyd_state: could not register the aggregate");
		return false;
	}
	return true;
}
