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
// Per customer the state keeps up to INLINE_DAYS distinct days inline (unsorted, checked by a
// linear scan that the compiler vectorizes); from the next one on, all of them in an
// open-addressing hash set on the heap, in the same bytes (a union), freed by the destructor.
// A day before the first or after the last is new without a look at the days, and one equal
// to either is not: in a log in time order that is most rows. Sums are kept apart (first day,
// other days) rather than subtracted at the end, so the result does not lose digits when the
// first day dominates.
#include "duckdb_extension.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

DUCKDB_EXTENSION_EXTERN

#define INLINE_DAYS 8
#define EMPTY INT32_MIN
#define PREFETCH 32  // rows ahead (8 to 64 measured; 24 and 32 a few per cent ahead of the rest)
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_FOR_WRITE(p) __builtin_prefetch((p), 1)
#else
#define PREFETCH_FOR_WRITE(p) ((void)(p))
#endif

// 64 bytes: the state is part of DuckDB's hash-table row, and a larger row costs this
// aggregate and DuckDB's probe more cache misses (64 bytes of padding: 5-10% more CPU for the
// GROUP BY; the 88-byte state before this one, with fewer short ways, about 4% more;
// benchmarks/results/bench_btyd_outside.md).
typedef struct {
	int32_t n;       // distinct days; up to INLINE_DAYS they are in `inl`, beyond in `set`
	int32_t lo, hi;  // first and last day
	int32_t bad;     // rows with an empty day or an empty, NaN or infinite amount (saturates)
	double first;    // revenue of the first day
	double rest;     // revenue of the other days
	union {
		int32_t inl[INLINE_DAYS];  // the distinct days, unsorted
		struct {
			int32_t *slots;  // every distinct day: open addressing, a power of two, at most half full
			int32_t cap;
		} set;
	} d;
} State;
_Static_assert(sizeof(State) == 64, "one state: 64 bytes");

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
		if (st->n > INLINE_DAYS) {
			free(st->d.set.slots);
			st->d.set.slots = NULL;
			st->n = 0;
		}
	}
}

static uint32_t slot_of(int32_t day, uint32_t mask) {
	return ((uint32_t)day * 2654435769u) & mask;  // Fibonacci hashing
}

// Put a day not yet in the slots (room is ensured by the caller).
static void slots_put(int32_t *slots, uint32_t mask, int32_t day) {
	uint32_t s = slot_of(day, mask);
	while (slots[s] != EMPTY) {
		s = (s + 1) & mask;
	}
	slots[s] = day;
}

static int32_t *slots_new(int32_t cap) {
	int32_t *slots = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
	if (slots) {
		for (int32_t j = 0; j < cap; j++) {
			slots[j] = EMPTY;
		}
	}
	return slots;
}

// Add a day known not to be among the customer's days: 0, or -1 when out of memory.
static int add_new_day(State *st, int32_t day) {
	if (st->n < INLINE_DAYS) {
		st->d.inl[st->n++] = day;
		return 0;
	}
	if (st->n == INLINE_DAYS) {  // the inline days move to a set
		int32_t inl[INLINE_DAYS];
		memcpy(inl, st->d.inl, sizeof inl);
		int32_t *slots = slots_new(32);
		if (!slots) {
			return -1;
		}
		for (int32_t j = 0; j < INLINE_DAYS; j++) {
			slots_put(slots, 31, inl[j]);
		}
		st->d.set.slots = slots;
		st->d.set.cap = 32;
	} else if (2 * (st->n + 1) > st->d.set.cap) {
		int32_t cap = st->d.set.cap * 2, *old = st->d.set.slots;
		int32_t *slots = slots_new(cap);
		if (!slots) {
			return -1;
		}
		for (int32_t j = 0; j < st->d.set.cap; j++) {
			if (old[j] != EMPTY) {
				slots_put(slots, (uint32_t)cap - 1, old[j]);
			}
		}
		free(old);
		st->d.set.slots = slots;
		st->d.set.cap = cap;
	}
	slots_put(st->d.set.slots, (uint32_t)st->d.set.cap - 1, day);
	st->n++;
	return 0;
}

static int has_day(const State *st, int32_t day) {
	if (st->n <= INLINE_DAYS) {
		int seen = 0;
		for (int32_t j = 0; j < st->n; j++) {
			seen |= st->d.inl[j] == day;
		}
		return seen;
	}
	uint32_t mask = (uint32_t)st->d.set.cap - 1;
	const int32_t *slots = st->d.set.slots;
	for (uint32_t s = slot_of(day, mask); slots[s] != EMPTY; s = (s + 1) & mask) {
		if (slots[s] == day) {
			return 1;
		}
	}
	return 0;
}

// Any day: added unless seen (the first and last day are the caller's to update).
static int add_day(State *st, int32_t day) {
	return has_day(st, day) ? 0 : add_new_day(st, day);
}

static int add_row(State *st, int32_t day, double amount) {
	if (st->n == 0) {
		st->lo = st->hi = day;
		st->first = amount;
		st->d.inl[0] = day;
		st->n = 1;
		return 0;
	}
	if (day == st->lo) {  // the first day: already counted
		st->first += amount;
		return 0;
	}
	if (day < st->lo) {  // a new first day
		st->rest += st->first;
		st->first = amount;
		st->lo = day;
		return add_new_day(st, day);
	}
	st->rest += amount;
	if (day == st->hi) {
		return 0;
	}
	if (day > st->hi) {  // a new last day (most rows of a log in time order)
		st->hi = day;
		return add_new_day(st, day);
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
			if (ahead->n > INLINE_DAYS) {
				uint32_t mask = (uint32_t)ahead->d.set.cap - 1;
				PREFETCH_FOR_WRITE(ahead->d.set.slots + slot_of(day[i + PREFETCH / 2], mask));
			}
		}
		State *st = (State *)states[i];
		if (!valid(m_day, i) || !valid(m_amount, i) || !isfinite(amount[i])) {
			st->bad += st->bad < INT32_MAX;
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
		int64_t bad = (int64_t)t->bad + s->bad;
		t->bad = bad < INT32_MAX ? (int32_t)bad : INT32_MAX;
		if (s->n == 0) {
			continue;
		}
		if (t->n == 0) {  // the source's days are added below
			t->lo = s->lo;
			t->hi = s->hi;
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
		int failed = 0;
		if (s->n <= INLINE_DAYS) {
			for (int32_t j = 0; j < s->n; j++) {
				failed |= add_day(t, s->d.inl[j]) < 0;
			}
		} else {
			for (int32_t j = 0; j < s->d.set.cap; j++) {
				if (s->d.set.slots[j] != EMPTY) {
					failed |= add_day(t, s->d.set.slots[j]) < 0;
				}
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
