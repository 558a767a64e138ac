package sqlstore

import (
	"fmt"
	"testing"
)

// TestRowDestMatchesValues: dest (what a typed load scans into) and values
// (what a write sends) list a row's fields in the same order, that of its
// table's columns, so a column read is the column written.
func TestRowDestMatchesValues(t *testing.T) {
	var (
		a accountRow
		b bucketRow
		h holdRow
		r recordRow
	)
	for _, row := range []struct {
		name   string
		cols   []string
		dest   []any
		values func() []any
	}{
		{"account", accountColumns, a.dest(), a.values},
		{"bucket", bucketColumns, b.dest(), b.values},
		{"hold", holdColumns, h.dest(), h.values},
		{"record", recordColumns, r.dest(), r.values},
	} {
		if len(row.dest) != len(row.cols) {
			t.Errorf("%s: dest has %d fields, the table %d columns", row.name, len(row.dest), len(row.cols))
			continue
		}
		want := make([]string, len(row.dest))
		for i, d := range row.dest {
			switch p := d.(type) {
			case *string:
				*p = fmt.Sprint("column ", i)
			case *int64:
				*p = int64(1000 + i)
			case *int:
				*p = 1000 + i
			case **int64:
				v := int64(1000 + i)
				*p = &v
			default:
				t.Fatalf("%s: dest %d is a %T", row.name, i, d)
			}
			want[i] = fmt.Sprint(deref(d))
		}
		for i, v := range row.values() {
			if got := fmt.Sprint(deref(v)); got != want[i] {
				t.Errorf("%s column %s: values has %s where dest wrote %s", row.name, row.cols[i], got, want[i])
			}
		}
	}
}

func deref(v any) any {
	switch p := v.(type) {
	case *string:
		return *p
	case *int64:
		if p == nil {
			return nil
		}
		return *p
	case *int:
		return *p
	case **int64:
		return deref(*p)
	}
	return v
}
