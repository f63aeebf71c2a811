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
// Per customer the state keeps up to INLINE_DAYS distinct days inline, as 16-bit offsets from
// the first day (so 16 fit where 8 whole days did; unsorted, checked by comparing all slots,
// which the compiler vectorizes); from the next one on, or when the days span more than
// MAX_SPAN, all of them in an open-addressing hash set on the heap, in the same bytes (a
// union), freed by the destructor. A day before the first or after the last is new without a
// look at the days, and one equal to either is not: in a log in time order that is most rows.
// Sums are kept apart (first day, other days) rather than subtracted at the end, so the result
// does not lose digits when the first day dominates.
#include "duckdb_extension.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

DUCKDB_EXTENSION_EXTERN

#define INLINE_DAYS 16
#define MAX_SPAN 65534  // inline days are stored as day - lo + 1 in 16 bits (0: an empty slot)
#define EMPTY INT32_MIN
#define PREFETCH 32  // rows ahead (8 to 64 measured; 24 and 32 a few per cent ahead of the rest)
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_FOR_WRITE(p) __builtin_prefetch((p), 1)
#else
#define PREFETCH_FOR_WRITE(p) ((void)(p))
#endif

// 64 bytes: the state is part of DuckDB's hash-table row, and a larger row costs this
// aggregate and DuckDB's probe more cache misses (64 bytes of padding: 5-10% more CPU for the
// GROUP BY; the 88-byte state before, with fewer short ways, about 4% more). 16 days inline
// rather than 8 whole ones: 14% of the benchmark log's customers have 9 to 16 days, and no
// longer need the heap (malloc, free, a second cache miss per row): the GROUP BY went from
// 1.11-1.13x the floor's CPU to 1.02-1.07x (benchmarks/results/bench_btyd_outside.md).
typedef struct {
	int32_t n;       // distinct days
	int32_t lo, hi;  // first and last day
	int16_t bad;     // rows with an empty day or an empty, NaN or infinite amount (saturates)
	uint8_t in_set;  // 1: the days are in `set`; 0: in `inl`
	uint8_t unused;
	double first;    // revenue of the first day
	double rest;     // revenue of the other days
	union {
		// up to INLINE_DAYS days, hi - lo <= MAX_SPAN: day - lo + 1, unsorted, 0 = empty
		uint16_t inl[INLINE_DAYS];
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
		if (st->in_set) {
			free(st->d.set.slots);
			st->d.set.slots = NULL;
			st->in_set = 0;
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

// The inline days move to a heap set: 0, or -1 when out of memory.
static int to_set(State *st) {
	int32_t cap = 4 * INLINE_DAYS;  // at most INLINE_DAYS + 1 days once the caller adds one: half full
	int32_t *slots = slots_new(cap);
	if (!slots) {
		return -1;
	}
	for (int32_t j = 0; j < INLINE_DAYS; j++) {
		if (st->d.inl[j]) {
			slots_put(slots, (uint32_t)cap - 1, st->lo + st->d.inl[j] - 1);
		}
	}
	st->d.set.slots = slots;
	st->d.set.cap = cap;
	st->in_set = 1;
	return 0;
}

// Put a day known not to be in the heap set, growing it: 0, or -1 when out of memory.
static int set_add(State *st, int32_t day) {
	if (2 * (st->n + 1) > st->d.set.cap) {
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
	return 0;
}

static int set_has(const State *st, int32_t day) {
	uint32_t mask = (uint32_t)st->d.set.cap - 1;
	const int32_t *slots = st->d.set.slots;
	for (uint32_t s = slot_of(day, mask); slots[s] != EMPTY; s = (s + 1) & mask) {
		if (slots[s] == day) {
			return 1;
		}
	}
	return 0;
}

// Is `day` (lo < day < hi) among the inline days? All slots compared: the compiler makes it
// two vector compares.
static int inl_has(const State *st, int32_t day) {
	uint16_t key = (uint16_t)(day - st->lo + 1);
	int seen = 0;
	for (int j = 0; j < INLINE_DAYS; j++) {
		seen |= st->d.inl[j] == key;
	}
	return seen;
}

// Record a day of the customer (its first and last day and the count updated): 0, or -1
// when out of memory. The revenue is the caller's.
static int put_day(State *st, int32_t day) {
	if (st->n == 0) {
		st->lo = st->hi = day;
		st->d.inl[0] = 1;
		st->n = 1;
		return 0;
	}
	if (day == st->lo || day == st->hi) {
		return 0;
	}
	int inside = day > st->lo && day < st->hi;
	if (st->in_set) {
		if (inside && set_has(st, day)) {
			return 0;
		}
		if (set_add(st, day) < 0) {
			return -1;
		}
	} else {
		if (inside && inl_has(st, day)) {
			return 0;
		}
		int32_t lo = day < st->lo ? day : st->lo, hi = day > st->hi ? day : st->hi;
		if (st->n == INLINE_DAYS || (int64_t)hi - lo > MAX_SPAN) {
			if (to_set(st) < 0 || set_add(st, day) < 0) {
				return -1;
			}
		} else {
			if (day < st->lo) {  // a new first day: the others move up by the difference
				uint16_t by = (uint16_t)(st->lo - day);
				for (int j = 0; j < INLINE_DAYS; j++) {
					st->d.inl[j] += st->d.inl[j] ? by : 0;
				}
			}
			st->d.inl[st->n] = (uint16_t)(day - lo + 1);
		}
	}
	if (day < st->lo) {
		st->lo = day;
	}
	if (day > st->hi) {
		st->hi = day;
	}
	st->n++;
	return 0;
}

static int add_row(State *st, int32_t day, double amount) {
	if (st->n == 0) {
		st->first = amount;
	} else if (day == st->lo) {  // the first day
		st->first += amount;
		return 0;
	} else if (day < st->lo) {  // a new first day
		st->rest += st->first;
		st->first = amount;
	} else {
		st->rest += amount;
		if (day == st->hi) {
			return 0;
		}
	}
	return put_day(st, day);
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
			if (ahead->in_set) {
				uint32_t mask = (uint32_t)ahead->d.set.cap - 1;
				PREFETCH_FOR_WRITE(ahead->d.set.slots + slot_of(day[i + PREFETCH / 2], mask));
			}
		}
		State *st = (State *)states[i];
		if (!valid(m_day, i) || !valid(m_amount, i) || !isfinite(amount[i])) {
			st->bad += st->bad < INT16_MAX;
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
		int32_t bad = (int32_t)t->bad + s->bad;
		t->bad = (int16_t)(bad < INT16_MAX ? bad : INT16_MAX);
		if (s->n == 0) {
			continue;
		}
		double first, rest;  // the revenues once the source is in
		if (t->n == 0 || s->lo < t->lo) {
			first = s->first;
			rest = t->rest + (t->first + s->rest);
		} else if (s->lo == t->lo) {
			first = t->first + s->first;
			rest = t->rest + s->rest;
		} else {
			first = t->first;
			rest = t->rest + (s->first + s->rest);
		}
		int failed = 0;
		if (!s->in_set) {
			for (int j = 0; j < INLINE_DAYS; j++) {
				if (s->d.inl[j]) {
					failed |= put_day(t, s->lo + s->d.inl[j] - 1) < 0;
				}
			}
		} else {
			for (int32_t j = 0; j < s->d.set.cap; j++) {
				if (s->d.set.slots[j] != EMPTY) {
					failed |= put_day(t, s->d.set.slots[j]) < 0;
				}
			}
		}
		t->first = first;
		t->rest = rest;
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
