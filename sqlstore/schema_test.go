package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/sqlstore/internal/core"
)

// The table descriptors (core.Accounts, …), which drive every statement of
// both databases, match the migrated schema of each: the same columns in
// the same order, of the same type, NULL only where the descriptor says.
// A column added to a migration and not to its descriptor, or the other
// way round, fails here.
func TestDescriptorsMatchSchema(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		for _, table := range core.AllTables {
			got := schemaColumns(t, s, table.Name)
			var want []string
			for i, name := range table.Names {
				want = append(want, name+" "+[...]string{core.Text: "text", core.Int: "integer not null", core.NullInt: "integer null"}[table.Kinds[i]])
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: the schema has\n\t%v\nthe descriptor says\n\t%v", table.Name, got, want)
			}
		}
	})
}

// schemaColumns lists a table's columns as "name type", the type written
// as the descriptors' kinds are: "text" (never NULL in these tables),
// "integer not null" or "integer null".
func schemaColumns(t *testing.T, s *sqlstore.Store, table string) []string {
	t.Helper()
	ctx := context.Background()
	query, args := "SELECT name, type, \"notnull\" = 1 FROM pragma_table_info(?1)", []any{s.TableName(table)}
	if s.Dialect() == "postgres" {
		query = "SELECT column_name, data_type, is_nullable = 'NO' FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position"
		args = []any{s.Options().Schema, s.Options().TablePrefix + table}
	}
	rows, err := s.DB().QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, typ string
		var notNull bool
		if err := rows.Scan(&name, &typ, &notNull); err != nil {
			t.Fatal(err)
		}
		switch typ = strings.ToLower(typ); typ {
		case "bigint", "integer":
			typ = "integer null"
			if notNull {
				typ = "integer not null"
			}
		case "text":
			if !notNull {
				typ = "text null"
			}
		}
		out = append(out, fmt.Sprint(name, " ", typ))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no columns found for %s", table)
	}
	return out
}
