package core

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// Each table the store writes is described once, here: its columns in the
// order of the migrated schema (a column a migration adds comes last, as
// ALTER TABLE … ADD COLUMN puts it), each with its storage type and how a
// row reads and writes it. The descriptors drive every column list, scan,
// insert, update and typed array of both databases;
// TestDescriptorsMatchSchema compares them with the migrated schema of
// each. Amounts are integer millicredits, times integer Unix nanoseconds,
// structured values (members, metadata, portions, quotes, allowances) JSON
// text.

// Kind is the storage type of a column.
type Kind uint8

// The column kinds. A value of a row is a string (Text), an int64 (Int) or
// a *int64, nil for NULL (NullInt).
const (
	Text Kind = iota
	Int
	NullInt
)

// Column is one column of a table of rows of type R.
type Column[R any] struct {
	Name string
	Kind Kind
	get  func(r *R, c *codec) any
	set  func(r *R, v any, c *codec)
}

// Schema is what the SQL writers need of a table, whatever its row type.
type Schema struct {
	Name  string   // without the prefix: "accounts"
	Names []string // the column names, in order
	Kinds []Kind   // the column kinds, in order
}

// Table describes a table whose rows are values of type R.
type Table[R any] struct {
	Schema
	Columns []Column[R]
}

func table[R any](name string, cols ...Column[R]) *Table[R] {
	t := &Table[R]{Schema: Schema{Name: name}, Columns: cols}
	for _, c := range cols {
		t.Names, t.Kinds = append(t.Names, c.Name), append(t.Kinds, c.Kind)
	}
	return t
}

// Columns lists t's columns qualified by alias: "a.id, a.seq, …".
func Columns(alias string, t *Schema) string {
	return alias + "." + strings.Join(t.Names, ", "+alias+".")
}

// encode returns r's values in column order.
func (t *Table[R]) encode(r *R, c *codec) []any {
	vals := make([]any, len(t.Columns))
	for i, col := range t.Columns {
		vals[i] = col.get(r, c)
	}
	return vals
}

// Decode builds a row from values scanned in column order (string or
// []byte for text, int64 for integers, nil for NULL).
func (t *Table[R]) decode(vals []any, c *codec) R {
	var r R
	for i, col := range t.Columns {
		col.set(&r, vals[i], c)
	}
	return r
}

// Rows is what *sql.Rows and pgx.Rows offer.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanRows passes each row of rows, n columns scanned as values (string
// or []byte for text, int64 for integers, nil for NULL), to row.
func ScanRows(rows Rows, n int, row func(vals []any)) error {
	vals, dest := make([]any, n), make([]any, n)
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		row(vals)
	}
	return rows.Err()
}

// The column constructors: a text, an integer, an optional time (NULL for
// the zero time), a time, a JSON value, an amount and a flag.

func text[R any](name string, p func(*R) *string) Column[R] {
	return Column[R]{Name: name, Kind: Text,
		get: func(r *R, _ *codec) any { return *p(r) },
		set: func(r *R, v any, c *codec) { *p(r) = c.text(name, v) }}
}

func integer[R any](name string, p func(*R) *int64) Column[R] {
	return Column[R]{Name: name, Kind: Int,
		get: func(r *R, _ *codec) any { return *p(r) },
		set: func(r *R, v any, c *codec) { *p(r) = c.int(name, v) }}
}

func amount[R any](name string, p func(*R) *credits.Credits) Column[R] {
	return Column[R]{Name: name, Kind: Int,
		get: func(r *R, _ *codec) any { return p(r).Units() },
		set: func(r *R, v any, c *codec) { *p(r) = credits.FromUnits(c.int(name, v)) }}
}

func instant[R any](name string, p func(*R) *time.Time) Column[R] {
	return Column[R]{Name: name, Kind: Int,
		get: func(r *R, c *codec) any { return c.nanos(*p(r)) },
		set: func(r *R, v any, c *codec) { *p(r) = time.Unix(0, c.int(name, v)).UTC() }}
}

func optInstant[R any](name string, p func(*R) *time.Time) Column[R] {
	return Column[R]{Name: name, Kind: NullInt,
		get: func(r *R, c *codec) any {
			if p(r).IsZero() {
				return (*int64)(nil)
			}
			n := c.nanos(*p(r))
			return &n
		},
		set: func(r *R, v any, c *codec) {
			if n, ok := v.(*int64); ok { // an encoded row, not a scanned one
				if n == nil {
					v = nil
				} else {
					v = *n
				}
			}
			if v == nil {
				*p(r) = time.Time{}
				return
			}
			*p(r) = time.Unix(0, c.int(name, v)).UTC()
		}}
}

func jsonText[R, V any](name string, p func(*R) *V) Column[R] {
	return Column[R]{Name: name, Kind: Text,
		get: func(r *R, c *codec) any { return c.marshal(p(r)) },
		set: func(r *R, v any, c *codec) { c.unmarshal(name, c.text(name, v), p(r)) }}
}

func flag[R any](name string, get func(*R) bool, set func(*R, bool)) Column[R] {
	return Column[R]{Name: name, Kind: Int,
		get: func(r *R, _ *codec) any {
			if get(r) {
				return int64(1)
			}
			return int64(0)
		},
		set: func(r *R, v any, c *codec) {
			if set != nil {
				set(r, c.int(name, v) == 1)
			}
		}}
}

// AccountRow is an account and the version the store keeps for it: the
// store bumps it on every write of the account's row, buckets or holds,
// and a write computed on a state it did not lock is guarded by it (see
// kept.go).
type AccountRow struct {
	credits.Account
	Version int64
}

// RecordRow is an idempotency record and its account.
type RecordRow struct {
	Account string
	credits.Record
}

// The tables.
var (
	Accounts = table("accounts",
		text("id", func(r *AccountRow) *string { return &r.ID }),
		instant("created_at", func(r *AccountRow) *time.Time { return &r.CreatedAt }),
		flag("team", func(r *AccountRow) bool { return r.Team }, func(r *AccountRow, v bool) { r.Team = v }),
		jsonText("members", func(r *AccountRow) *[]string { return &r.Members }),
		amount("low_balance_threshold", func(r *AccountRow) *credits.Credits { return &r.LowBalanceThreshold }),
		amount("available", func(r *AccountRow) *credits.Credits { return &r.Available }),
		amount("held", func(r *AccountRow) *credits.Credits { return &r.Held }),
		amount("granted", func(r *AccountRow) *credits.Credits { return &r.Granted }),
		amount("spent", func(r *AccountRow) *credits.Credits { return &r.Spent }),
		amount("expired", func(r *AccountRow) *credits.Credits { return &r.Expired }),
		integer("seq", func(r *AccountRow) *int64 { return &r.Seq }),
		jsonText("metadata", func(r *AccountRow) *map[string]string { return &r.Metadata }),
		integer("version", func(r *AccountRow) *int64 { return &r.Version }),
		text("plan", func(r *AccountRow) *string { return &r.Plan }), // v5
		// v5: 'null' (the nil pointer's JSON, and the column's default)
		// reads back as nil, never as an empty state; '' is corrupt JSON.
		jsonText("allowance", func(r *AccountRow) **credits.AllowanceState { return &r.Allowance }),
		optInstant("renews_at", func(r *AccountRow) *time.Time { return &r.RenewsAt }),                    // v5
		jsonText("limits", func(r *AccountRow) **credits.MemberLimits { return &r.Limits }),               // v5
		amount("debited", func(r *AccountRow) *credits.Credits { return &r.Debited }),                     // v7
		flag("low", func(r *AccountRow) bool { return r.Low }, func(r *AccountRow, v bool) { r.Low = v }), // v9
	)
	Buckets = table("buckets",
		text("id", func(r *credits.Bucket) *string { return &r.ID }),
		text("account", func(r *credits.Bucket) *string { return &r.Account }),
		text("kind", func(r *credits.Bucket) *string { return (*string)(&r.Kind) }),
		amount("amount", func(r *credits.Bucket) *credits.Credits { return &r.Amount }),
		amount("remaining", func(r *credits.Bucket) *credits.Credits { return &r.Remaining }),
		amount("expired", func(r *credits.Bucket) *credits.Credits { return &r.Expired }),
		optInstant("expires_at", func(r *credits.Bucket) *time.Time { return &r.ExpiresAt }),
		instant("created_at", func(r *credits.Bucket) *time.Time { return &r.CreatedAt }),
		integer("seq", func(r *credits.Bucket) *int64 { return &r.Seq }),
		text("restored_from", func(r *credits.Bucket) *string { return &r.RestoredFrom }),
		text("note", func(r *credits.Bucket) *string { return &r.Note }),
		// What the indexes of live buckets look at: written from
		// Bucket.Live, never read back.
		flag("live", (*credits.Bucket).Live, nil),
		amount("debited", func(r *credits.Bucket) *credits.Credits { return &r.Debited }),  // v7
		optInstant("voided_at", func(r *credits.Bucket) *time.Time { return &r.VoidedAt }), // v7
		optInstant("warned_at", func(r *credits.Bucket) *time.Time { return &r.WarnedAt }), // v9
	)
	Holds = table("holds",
		text("id", func(r *credits.Hold) *string { return &r.ID }),
		text("account", func(r *credits.Hold) *string { return &r.Account }),
		text("member", func(r *credits.Hold) *string { return &r.Member }),
		text("key", func(r *credits.Hold) *string { return &r.Key }),
		text("status", func(r *credits.Hold) *string { return (*string)(&r.Status) }),
		amount("amount", func(r *credits.Hold) *credits.Credits { return &r.Amount }),
		amount("captured", func(r *credits.Hold) *credits.Credits { return &r.Captured }),
		amount("refunded", func(r *credits.Hold) *credits.Credits { return &r.Refunded }),
		jsonText("portions", func(r *credits.Hold) *[]credits.Portion { return &r.Portions }),
		quoteText("quote", func(r *credits.Hold) *credits.Quote { return &r.Quote }),
		instant("created_at", func(r *credits.Hold) *time.Time { return &r.CreatedAt }),
		instant("deadline", func(r *credits.Hold) *time.Time { return &r.Deadline }),
		optInstant("settled_at", func(r *credits.Hold) *time.Time { return &r.SettledAt }),
		jsonText("metadata", func(r *credits.Hold) *map[string]string { return &r.Metadata }),
		integer("seq", func(r *credits.Hold) *int64 { return &r.Seq }),                             // v5
		optInstant("first_deadline", func(r *credits.Hold) *time.Time { return &r.FirstDeadline }), // v6
	)
	Entries = table("entries",
		text("account", func(r *credits.Entry) *string { return &r.Account }),
		integer("seq", func(r *credits.Entry) *int64 { return &r.Seq }),
		text("type", func(r *credits.Entry) *string { return (*string)(&r.Type) }),
		amount("amount", func(r *credits.Entry) *credits.Credits { return &r.Amount }),
		amount("available", func(r *credits.Entry) *credits.Credits { return &r.Available }),
		amount("held", func(r *credits.Entry) *credits.Credits { return &r.Held }),
		instant("at", func(r *credits.Entry) *time.Time { return &r.At }),
		text("hold", func(r *credits.Entry) *string { return &r.Hold }),
		text("bucket", func(r *credits.Entry) *string { return &r.Bucket }),
		text("kind", func(r *credits.Entry) *string { return (*string)(&r.Kind) }),
		text("tool", func(r *credits.Entry) *string { return &r.Tool }),
		text("member", func(r *credits.Entry) *string { return &r.Member }),
		text("key", func(r *credits.Entry) *string { return &r.Key }),
		text("note", func(r *credits.Entry) *string { return &r.Note }),
		text("plan", func(r *credits.Entry) *string { return &r.Plan }), // v5
	)
	Records = table("records",
		text("account", func(r *RecordRow) *string { return &r.Account }),
		text("key", func(r *RecordRow) *string { return &r.Key }),
		text("operation", func(r *RecordRow) *string { return &r.Operation }),
		bytesText("request", func(r *RecordRow) *[]byte { return &r.Request }),
		bytesText("result", func(r *RecordRow) *[]byte { return &r.Result }),
		instant("created_at", func(r *RecordRow) *time.Time { return &r.CreatedAt }),
	)
)

// AllTables are the tables the store writes, for the schema test.
var AllTables = []*Schema{&Accounts.Schema, &Buckets.Schema, &Holds.Schema, &Entries.Schema, &Records.Schema}

// quoteText is a quote's JSON with its durations twice: in milliseconds
// (duration_ms…, what this release reads) and, as releases before it wrote
// and read them, in nanoseconds (duration…), so that a server of the
// previous release, during a rolling deploy or after a rollback, reads a
// hold this one wrote with its durations (without them it would price a
// capture's usage at zero seconds).
func quoteText[R any](name string, p func(*R) *credits.Quote) Column[R] {
	return Column[R]{Name: name, Kind: Text,
		get: func(r *R, c *codec) any {
			q := p(r)
			b, err := json.Marshal(q)
			if err != nil {
				c.fail(err)
				return ""
			}
			if q.Duration == 0 && q.BilledDuration == 0 && q.Increment == 0 || len(b) < 2 || b[len(b)-1] != '}' {
				return string(b)
			}
			b = b[:len(b)-1]
			for _, d := range []struct {
				key string
				v   time.Duration
			}{{"duration", q.Duration}, {"billed_duration", q.BilledDuration}, {"increment", q.Increment}} {
				if d.v != 0 {
					b = append(append(append(b, `,"`...), d.key...), `":`...)
					b = strconv.AppendInt(b, int64(d.v), 10)
				}
			}
			return string(append(b, '}'))
		},
		set: func(r *R, v any, c *codec) { c.unmarshal(name, c.text(name, v), p(r)) }}
}

func bytesText[R any](name string, p func(*R) *[]byte) Column[R] {
	return Column[R]{Name: name, Kind: Text,
		get: func(r *R, _ *codec) any { return string(*p(r)) },
		set: func(r *R, v any, c *codec) { *p(r) = []byte(c.text(name, v)) }}
}

// Times are stored as Unix nanoseconds: exact, ordered, zone-free. The
// ledger refuses instants outside what that can hold (years 1678 to 2262).
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// Nanos is t in Unix nanoseconds, or an error wrapping
// credits.ErrInvalidRequest when the database cannot store it.
func Nanos(t time.Time) (int64, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("sqlstore: time %s out of the storable range: %w", t, credits.ErrInvalidRequest)
	}
	return t.UnixNano(), nil
}

// codec converts between rows and column values, keeping the first error.
type codec struct{ err error }

func (c *codec) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *codec) nanos(t time.Time) int64 {
	n, err := Nanos(t)
	if err != nil {
		c.fail(err)
	}
	return n
}

func (c *codec) marshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		c.fail(err)
	}
	return string(b)
}

func (c *codec) unmarshal(col, s string, v any) {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		c.fail(fmt.Errorf("sqlstore: corrupt JSON in column %s: %w", col, err))
	}
}

func (c *codec) text(col string, v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	c.fail(fmt.Errorf("sqlstore: column %s: want text, got %T", col, v))
	return ""
}

func (c *codec) int(col string, v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int32: // a PostgreSQL integer column
		return int64(n)
	}
	c.fail(fmt.Errorf("sqlstore: column %s: want an integer, got %T", col, v))
	return 0
}
