package postgres

import (
	"fmt"
	"strings"

	"github.com/creditkit/credits/sqlstore/internal/core"
)

// queries are the statements of the store, written once at start-up from
// the table descriptors and names.
type queries struct {
	// A batch's load, one statement per kind of row, their parameters
	// typed arrays: lock (and view) $1 account IDs; holds and buckets $1
	// account IDs, $2 hold IDs, $3 the latest Due (and buckets $4 bucket
	// IDs); records $1 accounts and $2 keys, pairwise.
	lock, view, holds, buckets, records string

	names core.Names
}

func newQueries(n core.Names) queries {
	accounts, buckets, holds := n.Table("accounts"), n.Table("buckets"), n.Table("holds")
	q := queries{names: n}
	// The accounts are locked in ID order, so that two transactions
	// locking overlapping sets never deadlock.
	q.view = fmt.Sprintf("SELECT %s FROM %s a WHERE a.id = ANY($1::text[]) ORDER BY a.id", core.Columns("a", &core.Accounts.Schema), accounts)
	q.lock = q.view + " FOR UPDATE"
	// Each branch is a plain index lookup (no OR across indexes); a row two
	// branches find comes back twice and is kept once.
	named := "h.id = ANY($2::text[]) AND h.account = ANY($1::text[])"
	due := "h.account = ANY($1::text[]) AND " + core.DueHold("h", "$3::bigint")
	q.holds = fmt.Sprintf("SELECT %[1]s FROM %[2]s h WHERE %[3]s\nUNION ALL\nSELECT %[1]s FROM %[2]s h WHERE %[4]s", core.Columns("h", &core.Holds.Schema), holds, named, due)
	portions := "SELECT (p.value->>'bucket') FROM %s h, jsonb_array_elements(h.portions::jsonb) p WHERE %s"
	q.buckets = strings.Join([]string{
		fmt.Sprintf("SELECT %s FROM %s b WHERE b.account = ANY($1::text[]) AND %s", core.Columns("b", &core.Buckets.Schema), buckets, core.LiveBucket("b")),
		fmt.Sprintf("SELECT %s FROM %s b WHERE b.id = ANY(ARRAY(%s))", core.Columns("b", &core.Buckets.Schema), buckets, fmt.Sprintf(portions, holds, named)),
		fmt.Sprintf("SELECT %s FROM %s b WHERE b.id = ANY(ARRAY(%s))", core.Columns("b", &core.Buckets.Schema), buckets, fmt.Sprintf(portions, holds, due)),
		fmt.Sprintf("SELECT %s FROM %s b WHERE b.id = ANY($4::text[]) AND b.account = ANY($1::text[])", core.Columns("b", &core.Buckets.Schema), buckets),
	}, "\nUNION ALL\n")
	q.records = fmt.Sprintf("SELECT %s FROM unnest($1::text[], $2::text[]) k(account, key) JOIN %s r ON r.account = k.account AND r.key = k.key",
		core.Columns("r", &core.Records.Schema), n.Table("records"))

	return q
}

// A batch's rows travel as typed arrays, one per column, in pgx's binary
// format, and each part (see core.Parts) is written by one
// data-modifying CTE over unnest(…): the server parses no JSON, the client
// encodes none. The statement is built once per shape: the parts present,
// and whether it is guarded.

type shape struct {
	present uint16 // bit i: part i has rows
	guarded bool
}

// write returns the statement that writes w, and its arguments. Every
// account row updated must still have the version its new row replaces
// (its version minus one); otherwise the statement fails with
// division_by_zero (SQLSTATE 22012), writing nothing. A guarded statement
// (on kept states, autocommit) also refuses an account with an open hold
// due by due that is not one of known, and writes nothing of the other
// parts unless every account row's guard held.
func (d *driver) write(w *core.Writes, guarded bool, known []string, due int64) (string, []any) {
	var sh shape
	sh.guarded = guarded
	var args []any
	for i, rows := range w {
		if len(rows) == 0 {
			continue
		}
		sh.present |= 1 << i
		args = append(args, columnArrays(rows, core.Parts[i].Table.Kinds)...)
	}
	accounts := len(w[core.PartAccounts])
	args = append(args, accounts)
	if guarded {
		args = append(args, known, due)
	}
	if q, ok := d.statements.Load(sh); ok {
		return q.(string), args
	}
	q := d.q.writeStatement(sh)
	d.statements.Store(sh, q)
	return q, args
}

func (q *queries) writeStatement(sh shape) string {
	var ctes []string
	var updates []bool
	n := 0
	next := func() string { n++; return fmt.Sprintf("$%d", n) }
	var accountKeys, versions string
	for i, part := range core.Parts {
		if sh.present&(1<<i) == 0 {
			continue
		}
		names, kinds := part.Table.Names, part.Table.Kinds
		ps := make([]string, len(names))
		for j, k := range kinds {
			ps[j] = next() + [...]string{core.Text: "::text[]", core.Int: "::bigint[]", core.NullInt: "::bigint[]"}[k]
		}
		table := q.names.Table(part.Table.Name)
		var sql string
		if part.Update {
			// Each row to update is found by its key through the primary
			// key, and its new values by its position in the key array.
			vals := make([]string, len(ps)-1)
			for j := range vals {
				vals[j] = fmt.Sprintf("(%s)[p.i]", ps[j+1])
			}
			k := names[0]
			sql = fmt.Sprintf("UPDATE %s t SET (%s) = (SELECT %s FROM (SELECT array_position(%s, t.%s) AS i) p) WHERE t.%s = ANY(%s)",
				table, strings.Join(names[1:], ", "), strings.Join(vals, ", "), ps[0], k, k, ps[0])
			if i == core.PartAccounts {
				accountKeys, versions = ps[0], ps[core.VersionColumn]
			}
		} else {
			sql = fmt.Sprintf("INSERT INTO %s (%s) SELECT * FROM unnest(%s)", table, strings.Join(names, ", "), strings.Join(ps, ", "))
		}
		ctes = append(ctes, sql)
		updates = append(updates, part.Update)
	}
	count := next() + "::bigint"
	for i, sql := range ctes {
		ctes[i] = fmt.Sprintf("w%d AS (%s", i, sql)
	}
	final := "SELECT 1"
	if accountKeys != "" {
		// The account rows go first: w0 when no account is new, w1 after
		// the new ones.
		w := 0
		if sh.present&(1<<core.PartNewAccounts) != 0 {
			w = 1
		}
		guard := fmt.Sprintf(" AND t.version = (%s)[array_position(%s, t.id)] - 1", versions, accountKeys)
		if sh.guarded {
			known, due := next()+"::text[]", next()+"::bigint"
			guard += fmt.Sprintf(" AND NOT EXISTS (SELECT 1 FROM %s h WHERE h.account = t.id AND %s AND NOT h.id = ANY(coalesce(%s, '{}')))",
				q.names.Table("holds"), core.DueHold("h", due), known)
			for i := range ctes {
				if i != w {
					cond := " WHERE "
					if updates[i] {
						cond = " AND "
					}
					ctes[i] += fmt.Sprintf("%s(SELECT count(*) FROM w%d) = %s", cond, w, count)
				}
			}
		}
		ctes[w] += guard + " RETURNING 1"
		// All or nothing: an account whose guard did not hold makes the
		// statement fail, so nothing of it is written.
		final = fmt.Sprintf("SELECT count(*) / (count(*) = %s)::int FROM w%d", count, w)
	} else {
		final = fmt.Sprintf("SELECT %s", count)
	}
	for i := range ctes {
		ctes[i] += ")"
	}
	return "WITH " + strings.Join(ctes, ",\n") + "\n" + final
}

// columnArrays turns rows of values into one typed slice per column.
func columnArrays(rows [][]any, kinds []core.Kind) []any {
	out := make([]any, len(kinds))
	for j, k := range kinds {
		switch k {
		case core.Text:
			a := make([]string, len(rows))
			for i := range rows {
				a[i] = rows[i][j].(string)
			}
			out[j] = a
		case core.Int:
			a := make([]int64, len(rows))
			for i := range rows {
				a[i] = rows[i][j].(int64)
			}
			out[j] = a
		default:
			a := make([]*int64, len(rows))
			for i := range rows {
				a[i] = rows[i][j].(*int64)
			}
			out[j] = a
		}
	}
	return out
}
