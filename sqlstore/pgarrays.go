package sqlstore

import (
	"fmt"
	"strings"
)

// On PostgreSQL a batch's rows travel as typed arrays, one per column, in
// pgx's binary format, and each kind of row is written with one statement
// over unnest(…): the server parses no JSON, the client encodes none.

// The PostgreSQL array element types of each table's columns, in order.
var (
	accountTypes = []string{"text", "bigint", "bigint", "text", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "text"}
	bucketTypes  = []string{"text", "text", "text", "bigint", "bigint", "bigint", "nbigint", "bigint", "bigint", "text", "text", "bigint"}
	holdTypes    = []string{"text", "text", "text", "text", "text", "bigint", "bigint", "bigint", "text", "text", "bigint", "bigint", "nbigint", "text"}
	entryTypes   = []string{"text", "bigint", "text", "bigint", "bigint", "bigint", "bigint", "text", "text", "text", "text", "text", "text", "text"}
	recordTypes  = []string{"text", "text", "text", "text", "text", "bigint"}
)

// arrayStatement is the statement that writes the parts present (bit i:
// part i has rows), its parameters numbered in that order, column by
// column.
func arrayStatement(t tables, present uint16) string {
	if present == 0 {
		return "SELECT 1"
	}
	var ctes []string
	n := 0
	for i, part := range rowKinds {
		if present&(1<<i) == 0 {
			continue
		}
		ps := make([]string, len(part.cols))
		for j, typ := range part.types {
			n++
			ps[j] = fmt.Sprintf("$%d::%s[]", n, strings.TrimPrefix(typ, "n"))
		}
		table := part.table(t)
		var sql string
		if part.update {
			// Each row to update is found by its key through the primary
			// key, and its new values by its position in the key array.
			vals := make([]string, len(ps)-1)
			for j := range vals {
				vals[j] = fmt.Sprintf("(%s)[p.i]", ps[j+1])
			}
			k := part.cols[0]
			sql = fmt.Sprintf("UPDATE %s t SET (%s) = (SELECT %s FROM (SELECT array_position(%s, t.%s) AS i) p) WHERE t.%s = ANY(%s)",
				table, strings.Join(part.cols[1:], ", "), strings.Join(vals, ", "), ps[0], k, k, ps[0])
		} else {
			sql = fmt.Sprintf("INSERT INTO %s (%s) SELECT * FROM unnest(%s)", table, strings.Join(part.cols, ", "), strings.Join(ps, ", "))
		}
		ctes = append(ctes, fmt.Sprintf("w%d AS (%s)", i, sql))
	}
	return "WITH " + strings.Join(ctes, ",\n") + "\nSELECT 1"
}

// columnArrays turns rows of values into one typed slice per column.
func columnArrays(rows [][]any, types []string) []any {
	out := make([]any, len(types))
	for j, typ := range types {
		switch typ {
		case "text":
			a := make([]string, len(rows))
			for i := range rows {
				a[i] = rows[i][j].(string)
			}
			out[j] = a
		case "bigint":
			a := make([]int64, len(rows))
			for i := range rows {
				switch v := rows[i][j].(type) {
				case int64:
					a[i] = v
				case int:
					a[i] = int64(v)
				}
			}
			out[j] = a
		default: // nullable bigint
			a := make([]*int64, len(rows))
			for i := range rows {
				a[i] = rows[i][j].(*int64)
			}
			out[j] = a
		}
	}
	return out
}

type arrayKey uint16

// pgWrite is the PostgreSQL statement that writes the rows, and its
// arguments.
func (s *Store) pgWrite(rows *changeRows) (string, []any, error) {
	var present uint16
	var args []any
	for i, vals := range rows.rowValues() {
		if len(vals) == 0 {
			continue
		}
		present |= 1 << i
		args = append(args, columnArrays(vals, rowKinds[i].types)...)
	}
	if q, ok := s.statements.Load(arrayKey(present)); ok {
		return q.(string), args, nil
	}
	q := arrayStatement(s.t, present)
	s.statements.Store(arrayKey(present), q)
	return q, args, nil
}
