package core

import (
	"math"
	"slices"

	"github.com/creditkit/credits"
)

// A batch loads, for its accounts: the account rows (locked, when it
// writes), the live buckets, the holds named or due by the latest Due and
// the buckets they took from, and the records of the operations' keys.

// LoadArgs are what a batch's load statements look up.
type LoadArgs struct {
	Accounts []string // sorted, unique: the order they are locked in
	Holds    []string // hold IDs the operations name
	Buckets  []string // bucket IDs the operations name
	// Due is the latest Due of the operations in Unix nanoseconds: open
	// holds whose deadline is at or before it are loaded (the smallest
	// int64 when none asks).
	Due int64
	// KeyAccounts[i] and Keys[i] are one idempotency record to load.
	KeyAccounts, Keys []string
}

// NewLoadArgs returns the load arguments of the queries.
func NewLoadArgs(qs []credits.Query) LoadArgs {
	a := LoadArgs{Due: math.MinInt64, Holds: []string{}, Buckets: []string{}, KeyAccounts: []string{}, Keys: []string{}}
	for _, q := range qs {
		a.Accounts = append(a.Accounts, q.Account)
		a.Holds = append(a.Holds, q.Holds...)
		a.Buckets = append(a.Buckets, q.Buckets...)
		for _, k := range q.Keys {
			a.KeyAccounts = append(a.KeyAccounts, q.Account)
			a.Keys = append(a.Keys, k)
		}
		if !q.Due.IsZero() {
			if n, err := Nanos(q.Due); err == nil && n > a.Due {
				a.Due = n
			}
		}
	}
	slices.Sort(a.Accounts)
	a.Accounts = slices.Compact(a.Accounts)
	return a
}

// Load collects the rows a driver's load statements return into one state
// per account.
type Load struct {
	States map[string]*credits.State
	// Rows are the account rows as loaded, with their versions: what a
	// write of the batch replaces.
	Rows map[string]AccountRow
	cd   codec
}

// NewLoad returns an empty state for each of the accounts.
func NewLoad(accounts []string) *Load {
	l := &Load{States: make(map[string]*credits.State, len(accounts)), Rows: make(map[string]AccountRow, len(accounts))}
	for _, a := range accounts {
		l.States[a] = &credits.State{Buckets: map[string]*credits.Bucket{}, Holds: map[string]*credits.Hold{}, Records: map[string]*credits.Record{}}
	}
	return l
}

// Account adds an account row, scanned in the columns of [Accounts].
func (l *Load) Account(vals []any) {
	r := Accounts.decode(vals, &l.cd)
	if st := l.States[r.ID]; st != nil {
		a := r.Account.Clone()
		st.Account = &a
		l.Rows[r.ID] = r
	}
}

// Bucket adds a bucket row, scanned in the columns of [Buckets].
func (l *Load) Bucket(vals []any) {
	b := Buckets.decode(vals, &l.cd)
	if st := l.States[b.Account]; st != nil {
		st.Buckets[b.ID] = &b
	}
}

// Hold adds a hold row, scanned in the columns of [Holds].
func (l *Load) Hold(vals []any) {
	h := Holds.decode(vals, &l.cd)
	if st := l.States[h.Account]; st != nil {
		st.Holds[h.ID] = &h
	}
}

// Record adds a record row, scanned in the columns of [Records].
func (l *Load) Record(vals []any) {
	r := Records.decode(vals, &l.cd)
	if st := l.States[r.Account]; st != nil {
		rec := r.Record
		st.Records[rec.Key] = &rec
	}
}

// Err is the first row that could not be decoded.
func (l *Load) Err() error { return l.cd.err }
