package sqlstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is the SQL database a Store talks to.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"   // modernc.org/sqlite, pure Go: the embedded default
	Postgres Dialect = "postgres" // github.com/jackc/pgx/v5/stdlib: production
)

// queries is every statement a Store runs, written once per dialect at
// start-up from the table names.
type queries struct {
	// Loads take JSON arrays, so that one statement serves one account or
	// a batch of them: $1 account IDs.
	lockAccounts string // $1 → the account rows as JSON, locked for the transaction
	load         string // $1, $2 hold IDs, $3 due (nanos or NULL), $4 [account, key] pairs → (kind, JSON row)
	view         string // like load, plus the account rows, in one statement
	// PostgreSQL's pipelined batches load typed columns instead, with one
	// statement per kind of row (all sent at once): $1 account IDs (JSON);
	// the holds and the buckets also $2 hold IDs (JSON) and $3 due; the
	// records $1 [account, key] pairs.
	typedLock, typedHolds, typedBuckets, typedRecords string

	holdAccount string
	accountIDs  string // $1 nanos, $2 limit → account IDs with due holds or buckets
	exists      string

	// SQLite writes a change set with statements prepared once and plain
	// parameters (in-process, a statement costs no round trip): for each
	// of rowKinds, rowUpdates[i] updates one row (the updated kinds) and
	// rowInserts[i][j] inserts insertChunks[j] rows at once (the others).
	// On PostgreSQL a batch's change sets are one statement over typed
	// arrays (see pgarrays.go).
	rowUpdates [8]string
	rowInserts [8][]string
	// The optimistic path (and a batch on kept states) writes change sets
	// computed on unlocked or kept states in one autocommit statement that
	// applies them only if every account is still as those states saw it:
	// $1 the guards, a JSON array of the account rows the states had (the
	// whole row must be unchanged: a member change appends no entry, so it
	// does not move the Seq) each with "known", the open holds the state
	// had (no other open hold may be due: see "Kept states" in
	// statecache.go); $2 the account rows
	// to write (JSON array); $3 how many; $4..$9 buckets (new, updated),
	// holds (new, updated), entries, records; $10 the operations' latest
	// Due (Unix nanoseconds). The guard updates each account whose guard
	// holds (or creates the one new account, if absent) and returns a row
	// for it; the statement returns how many, or, when there are several
	// and some guard did not hold, fails with division_by_zero (22012),
	// writing nothing.
	guardedParts             []string
	guardedArgs              string
	guardUpdate, guardCreate string
}

// guardedStatement assembles the optimistic path's write statement from
// the guard and the parts whose JSON argument is not empty, so that the
// server runs no empty write. The statements are few (one per shape of
// change) and cached by the driver.
func guardedStatement(args, guard string, parts []string, present func(i int) bool) string {
	ctes := []string{args, "guard AS (" + guard + ")"}
	for i, w := range parts {
		if present(i) {
			ctes = append(ctes, fmt.Sprintf("w%d AS (%s)", i, w))
		}
	}
	// All or nothing: when the write has several accounts, a guard that
	// did not hold for every one makes the statement fail (division by
	// zero), so nothing of it is written. With one account the guard
	// alone decides, and the statement returns 0.
	return "WITH " + strings.Join(ctes, ",\n") + "\nSELECT count(*) / (count(*) = $3 OR $3 = 1)::int FROM guard"
}

func (d Dialect) placeholder(i int) string {
	if d == Postgres {
		return fmt.Sprintf("$%d", i)
	}
	return fmt.Sprintf("?%d", i)
}

// rowJSON is the expression that turns a row of table t (aliased x) into a
// JSON object keyed by column name.
func (d Dialect) rowJSON(alias string, cols []string) string {
	if d == Postgres {
		return "to_jsonb(" + alias + ")::text"
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprintf("'%s', %s.%s", c, alias, c)
	}
	return "json_object(" + strings.Join(parts, ", ") + ")"
}

// inList is the condition "expr is one of the strings of the JSON array
// parameter", written so that the database looks each one up through an
// index (on PostgreSQL, "= ANY" of an array computed once: an IN subquery
// would be planned as a join over all of the account's rows).
func (d Dialect) inList(expr, param string) string {
	if d == Postgres {
		return expr + " = ANY(ARRAY(SELECT jsonb_array_elements_text(" + param + "::jsonb)))"
	}
	return expr + " IN (SELECT value FROM json_each(" + param + "))"
}

// loadBranches are the queries a load runs, as UNION ALL branches: the
// holds it names and the holds due, the live buckets and the buckets of
// those holds' portions, and the records of its [account, key] pairs. Each
// branch selects sel(kind, alias, columns) of its rows ('h' holds, 'b'
// buckets, 'r' records); accounts, holdIDs, due and pairs are the
// placeholders of the parameters. Each branch is a plain index lookup (no
// OR across indexes); a row two branches find comes back twice and is
// kept once.
func (d Dialect) loadBranches(t tables, sel func(kind, alias string, cols []string) string, accounts, holdIDs, due, pairs string) (holds, buckets []string, records string) {
	portions := "SELECT p.value->>'bucket' FROM %s h2, jsonb_array_elements(h2.portions::jsonb) p WHERE %s"
	if d == SQLite {
		portions = "SELECT json_extract(p.value, '$.bucket') FROM %s h2, json_each(h2.portions) p WHERE %s"
	}
	named := fmt.Sprintf("%s AND %s", d.inList("h2.id", holdIDs), d.inList("h2.account", accounts))
	dueNow := fmt.Sprintf("%s AND h2.status = 'open' AND h2.deadline <= %s", d.inList("h2.account", accounts), due)
	holds = []string{
		fmt.Sprintf("SELECT %s FROM %s h2 WHERE %s", sel("h", "h2", holdColumns), t.holds, named),
		fmt.Sprintf("SELECT %s FROM %s h2 WHERE %s", sel("h", "h2", holdColumns), t.holds, dueNow),
	}
	buckets = []string{
		fmt.Sprintf("SELECT %s FROM %s b WHERE %s AND b.live = 1", sel("b", "b", bucketColumns), t.buckets, d.inList("b.account", accounts)),
		fmt.Sprintf("SELECT %s FROM %s b WHERE %s", sel("b", "b", bucketColumns), t.buckets, d.inQuery("b.id", fmt.Sprintf(portions, t.holds, named))),
		fmt.Sprintf("SELECT %s FROM %s b WHERE %s", sel("b", "b", bucketColumns), t.buckets, d.inQuery("b.id", fmt.Sprintf(portions, t.holds, dueNow))),
	}
	// Records by (account, key) pairs: one primary-key lookup per pair.
	records = fmt.Sprintf("SELECT x.* FROM jsonb_array_elements(%s::jsonb) k, LATERAL (SELECT %s FROM %s r WHERE r.account = k->>0 AND r.key = k->>1 LIMIT 1) x",
		pairs, sel("r", "r", recordColumns), t.records)
	if d == SQLite {
		records = fmt.Sprintf("SELECT %s FROM json_each(%s) k JOIN %s r ON r.account = json_extract(k.value, '$[0]') AND r.key = json_extract(k.value, '$[1]')",
			sel("r", "r", recordColumns), pairs, t.records)
	}
	return holds, buckets, records
}

// qualified lists the columns of the table aliased alias: "a.id, a.seq".
func qualified(alias string, cols []string) string {
	qs := make([]string, len(cols))
	for i, c := range cols {
		qs[i] = alias + "." + c
	}
	return strings.Join(qs, ", ")
}

// inQuery is "expr is one of the values the query returns", by index.
func (d Dialect) inQuery(expr, query string) string {
	if d == Postgres {
		return expr + " = ANY(ARRAY(" + query + "))"
	}
	return expr + " IN (" + query + ")"
}

func (d Dialect) insert(table string, param string) string {
	return fmt.Sprintf("INSERT INTO %s SELECT * FROM jsonb_populate_recordset(NULL::%s, %s::jsonb)", table, table, param)
}

// update replaces every column but the key of the rows given, finding them
// through the primary key. Tables updated here have a one-column key.
func (d Dialect) update(table string, cols, key []string, param string) string {
	// The rows come as a JSON object keyed by the key column: the rows to
	// update are found through the primary key (an array of the object's
	// keys, computed once), and each one's new values by a lookup in the
	// object, so a batch of n rows costs n lookups, not n scans of a list.
	var names, vals []string
	for _, c := range cols {
		if c != key[0] {
			names = append(names, c)
			vals = append(vals, "j."+c)
		}
	}
	k := key[0]
	return fmt.Sprintf("UPDATE %s t SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::%s, %s::jsonb -> t.%s) j) WHERE t.%s = ANY(ARRAY(SELECT jsonb_object_keys(%s::jsonb)))",
		table, strings.Join(names, ", "), strings.Join(vals, ", "), table, param, k, k, param)
}

// insertChunks are the numbers of rows SQLite inserts with one statement:
// a batch's rows go in chunks of these sizes, largest first.
var insertChunks = []int{16, 4, 1}

// insertRows inserts n rows, their columns as parameters in order, row
// after row.
func (d Dialect) insertRows(table string, cols []string, n int) string {
	rows := make([]string, n)
	for r := range rows {
		ps := make([]string, len(cols))
		for i := range cols {
			ps[i] = d.placeholder(r*len(cols) + i + 1)
		}
		rows[r] = "(" + strings.Join(ps, ", ") + ")"
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", table, strings.Join(cols, ", "), strings.Join(rows, ", "))
}

// updateRow replaces every column of the row whose first column (its key)
// is the first parameter.
func (d Dialect) updateRow(table string, cols []string) string {
	ps := make([]string, len(cols)-1)
	for i := range ps {
		ps[i] = d.placeholder(i + 2)
	}
	return fmt.Sprintf("UPDATE %s SET (%s) = (%s) WHERE %s = %s", table, strings.Join(cols[1:], ", "), strings.Join(ps, ", "), cols[0], d.placeholder(1))
}

func (d Dialect) queries(t tables) queries {
	p := d.placeholder
	var q queries
	lock := ""
	if d == Postgres {
		lock = " FOR UPDATE"
	}
	// The accounts are locked in ID order, so that two transactions
	// locking overlapping sets never deadlock.
	q.lockAccounts = fmt.Sprintf("SELECT %s FROM %s a WHERE %s ORDER BY a.id%s", d.rowJSON("a", accountColumns), t.accounts, d.inList("a.id", p(1)), lock)
	asJSON := func(kind, alias string, cols []string) string { return "'" + kind + "', " + d.rowJSON(alias, cols) }
	holds, buckets, records := d.loadBranches(t, asJSON, p(1), p(2), p(3), p(4))
	q.load = strings.Join(append(append(holds, buckets...), records), "\nUNION ALL\n")
	if d == Postgres {
		columns := func(_, alias string, cols []string) string { return qualified(alias, cols) }
		q.typedLock = fmt.Sprintf("SELECT %s FROM %s a WHERE %s ORDER BY a.id FOR UPDATE", qualified("a", accountColumns), t.accounts, d.inList("a.id", p(1)))
		holds, buckets, records := d.loadBranches(t, columns, p(1), p(2), p(3), p(1))
		q.typedHolds = strings.Join(holds, "\nUNION ALL\n")
		q.typedBuckets = strings.Join(buckets, "\nUNION ALL\n")
		q.typedRecords = records
	}
	q.view = fmt.Sprintf("SELECT 'a', %s FROM %s a WHERE %s\nUNION ALL\n%s", d.rowJSON("a", accountColumns), t.accounts, d.inList("a.id", p(1)), q.load)
	q.holdAccount = fmt.Sprintf("SELECT account FROM %s WHERE id = %s", t.holds, p(1))
	q.exists = fmt.Sprintf("SELECT 1 FROM %s WHERE id = %s", t.accounts, p(1))
	q.accountIDs = fmt.Sprintf(`SELECT account FROM (
	SELECT account FROM %s WHERE status = 'open' AND deadline <= %s
	UNION
	SELECT account FROM %s WHERE live = 1 AND expires_at IS NOT NULL AND expires_at <= %s
) due ORDER BY account LIMIT %s`, t.holds, p(1), t.buckets, p(1), p(2))

	if d == SQLite {
		for i, k := range rowKinds {
			if k.update {
				q.rowUpdates[i] = d.updateRow(k.table(t), k.cols)
				continue
			}
			for _, n := range insertChunks {
				q.rowInserts[i] = append(q.rowInserts[i], d.insertRows(k.table(t), k.cols, n))
			}
		}
	}
	if d == Postgres {
		const cond = " AND EXISTS (SELECT 1 FROM guard)"
		q.guardedParts = []string{
			d.insert(t.buckets, p(4)) + " WHERE EXISTS (SELECT 1 FROM guard)",
			d.update(t.buckets, bucketColumns, []string{"id"}, p(5)) + cond,
			d.insert(t.holds, p(6)) + " WHERE EXISTS (SELECT 1 FROM guard)",
			d.update(t.holds, holdColumns, []string{"id"}, p(7)) + cond,
			d.insert(t.entries, p(8)) + " WHERE EXISTS (SELECT 1 FROM guard)",
			d.insert(t.records, p(9)) + " WHERE EXISTS (SELECT 1 FROM guard)",
		}
		// args gives every parameter its type, whichever parts a statement
		// leaves out; it is never executed.
		q.guardedArgs = fmt.Sprintf("args AS (SELECT %s::jsonb, %s::jsonb, %s::bigint, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::bigint)",
			p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10))
		var names, vals []string
		for _, c := range accountColumns[1:] {
			names = append(names, c)
			vals = append(vals, "j."+c)
		}
		// A guard row is the account row as the state saw it and the open
		// holds it had; the whole row must be unchanged.
		var gcols, tcols, gvals []string
		for i, c := range accountColumns {
			gcols = append(gcols, c+" "+accountTypes[i])
			tcols = append(tcols, "t."+c)
			gvals = append(gvals, "g."+c)
		}
		q.guardUpdate = fmt.Sprintf(
			"UPDATE %s t SET (%s) = (SELECT %s FROM jsonb_populate_recordset(NULL::%s, %s::jsonb) j WHERE j.id = t.id)"+
				" FROM jsonb_to_recordset(%s::jsonb) AS g(%s, known text[])"+
				" WHERE t.id = g.id AND (%s) = (%s)"+
				" AND NOT EXISTS (SELECT 1 FROM %s h WHERE h.account = t.id AND h.status = 'open' AND h.deadline <= %s AND NOT h.id = ANY(coalesce(g.known, '{}'))) RETURNING 1",
			t.accounts, strings.Join(names, ", "), strings.Join(vals, ", "), t.accounts, p(2), p(1), strings.Join(gcols, ", "),
			strings.Join(tcols[1:], ", "), strings.Join(gvals[1:], ", "), t.holds, p(10))
		q.guardCreate = d.insert(t.accounts, p(2)) + " ON CONFLICT (id) DO NOTHING RETURNING 1"
	}
	return q
}

// tables are the quoted, prefixed (and, on PostgreSQL, schema-qualified)
// table names.
type tables struct {
	accounts, buckets, holds, entries, records, versions string
}

// Errors a transaction is retried on: they say nothing about the request,
// only that it collided with another one.
func (d Dialect) retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"23505": // unique_violation: two creations of one account raced
			return true
		}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		if se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
			return true
		}
	}
	return false
}
