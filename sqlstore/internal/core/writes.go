package core

import (
	"fmt"
	"slices"

	"github.com/creditkit/credits"
)

// A batch's changes are merged into the rows it writes: one list of rows per
// part (a table, inserted into or updated), in this order. A row written by
// several operations of the batch is written once, as the last one left it
// (an insert stays an insert).
const (
	PartNewAccounts = iota
	PartAccounts    // updated by key; each row's version is the one it replaces plus one
	PartNewBuckets
	PartBuckets
	PartNewHolds
	PartHolds
	PartEntries
	PartRecords
	NumParts
)

// Parts describes each part: its table, and whether its rows update the
// rows of the same key (the table's first column) rather than insert.
var Parts = [NumParts]struct {
	Table  *Schema
	Update bool
}{
	{&Accounts.Schema, false}, {&Accounts.Schema, true}, {&Buckets.Schema, false}, {&Buckets.Schema, true},
	{&Holds.Schema, false}, {&Holds.Schema, true}, {&Entries.Schema, false}, {&Records.Schema, false},
}

// VersionColumn is the index of the accounts' version column.
var VersionColumn = slices.Index(Accounts.Names, "version")

// Writes are the rows a batch writes, part by part, each row its values in
// the order of its table's columns.
type Writes [NumParts][][]any

type rowKey struct {
	part int
	id   string
}

// touched is what a batch changed of one account.
type touched struct {
	created bool
	bump    bool  // its row, a bucket or a hold was written: the version moves
	row     []any // the account row the last change left, if any
}

// collector merges the changes of a batch's operations.
type collector struct {
	parts    Writes
	at       map[rowKey]int // a row's part and key → its index in that part
	order    []string       // accounts in the order first changed
	accounts map[string]*touched
}

// add merges ch, a change of account, into the batch's rows. On an error
// (a value the database cannot store) it adds nothing.
func (c *collector) add(account string, ch *credits.Change) error {
	var cd codec
	var row []any
	if ch.Account != nil {
		row = Accounts.encode(&AccountRow{Account: *ch.Account}, &cd)
	}
	rows := slices.Concat(
		keyedRows(PartNewBuckets, ch.NewBuckets, Buckets, &cd), keyedRows(PartBuckets, ch.UpdatedBuckets, Buckets, &cd),
		keyedRows(PartNewHolds, ch.NewHolds, Holds, &cd), keyedRows(PartHolds, ch.UpdatedHolds, Holds, &cd))
	entries := make([][]any, len(ch.Entries))
	for i := range ch.Entries {
		entries[i] = Entries.encode(&ch.Entries[i], &cd)
	}
	var record []any
	if ch.Record != nil {
		record = Records.encode(&RecordRow{Account: account, Record: *ch.Record}, &cd)
	}
	if cd.err != nil {
		return cd.err
	}

	t := c.account(account)
	if row != nil {
		t.row, t.bump = row, true
		t.created = t.created || ch.AccountCreated
	}
	for _, r := range rows {
		t.bump = true
		c.put(r.part, r.vals[0].(string), r.vals)
	}
	c.parts[PartEntries] = append(c.parts[PartEntries], entries...)
	if record != nil {
		c.parts[PartRecords] = append(c.parts[PartRecords], record)
	}
	return nil
}

// keyed is a row of a part whose rows have IDs (the first column).
type keyed struct {
	part int
	vals []any
}

func keyedRows[R any](part int, rs []R, t *Table[R], cd *codec) []keyed {
	out := make([]keyed, len(rs))
	for i := range rs {
		out[i] = keyed{part, t.encode(&rs[i], cd)}
	}
	return out
}

// touch makes the batch write account's row, moving its version on, even
// if nothing of the account changed.
func (c *collector) touch(account string) { c.account(account).bump = true }

// account returns what the batch changed of account, first seen now if new.
func (c *collector) account(account string) *touched {
	if c.accounts == nil {
		c.accounts, c.at = map[string]*touched{}, map[rowKey]int{}
	}
	t := c.accounts[account]
	if t == nil {
		t = &touched{}
		c.accounts[account] = t
		c.order = append(c.order, account)
	}
	return t
}

// put adds a row of a bucket or a hold, or replaces the row of the same ID
// in whichever of its table's two parts (insert, update) it already is.
func (c *collector) put(part int, id string, vals []any) {
	insert := part &^ 1 // PartNewBuckets, PartNewHolds: the even part of the pair
	for _, p := range []int{insert, insert + 1} {
		if i, ok := c.at[rowKey{p, id}]; ok {
			c.parts[p][i] = vals
			return
		}
	}
	c.at[rowKey{part, id}] = len(c.parts[part])
	c.parts[part] = append(c.parts[part], vals)
}

// writes completes the rows with the account rows: each account whose row,
// buckets or holds changed is written with its version moved on by one
// from the version loaded (a new account starts at 1). It returns the
// rows and the accounts' new versions.
func (c *collector) writes(loaded map[string]AccountRow) (*Writes, map[string]int64, error) {
	versions := make(map[string]int64, len(c.order))
	for _, a := range c.order {
		t := c.accounts[a]
		if !t.bump {
			continue
		}
		prev, exists := loaded[a]
		switch {
		case t.created:
			t.row[VersionColumn] = int64(1)
			c.parts[PartNewAccounts] = append(c.parts[PartNewAccounts], t.row)
			versions[a] = 1
			continue
		case !exists:
			return nil, nil, fmt.Errorf("sqlstore: internal error: a change to account %q, which does not exist", a)
		case t.row == nil: // buckets or holds changed, the row did not: write it as loaded
			var cd codec
			t.row = Accounts.encode(&prev, &cd)
			if cd.err != nil {
				return nil, nil, cd.err
			}
		}
		t.row[VersionColumn] = prev.Version + 1
		c.parts[PartAccounts] = append(c.parts[PartAccounts], t.row)
		versions[a] = prev.Version + 1
	}
	return &c.parts, versions, nil
}
