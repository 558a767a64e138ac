package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// Rows travel between Go and the database as JSON objects whose keys are
// the column names: the database builds them when loading (to_jsonb,
// json_object) and takes them apart when writing (jsonb_populate_recordset,
// json_each), so that a whole change set is a handful of statements.

type accountRow struct {
	ID                  string `json:"id"`
	CreatedAt           int64  `json:"created_at"`
	Team                int    `json:"team"`
	Members             string `json:"members"`
	LowBalanceThreshold int64  `json:"low_balance_threshold"`
	Available           int64  `json:"available"`
	Held                int64  `json:"held"`
	Granted             int64  `json:"granted"`
	Spent               int64  `json:"spent"`
	Expired             int64  `json:"expired"`
	Seq                 int64  `json:"seq"`
	Metadata            string `json:"metadata"`
}

var accountColumns = []string{"id", "created_at", "team", "members", "low_balance_threshold", "available", "held", "granted", "spent", "expired", "seq", "metadata"}

type bucketRow struct {
	ID           string `json:"id"`
	Account      string `json:"account"`
	Kind         string `json:"kind"`
	Amount       int64  `json:"amount"`
	Remaining    int64  `json:"remaining"`
	Expired      int64  `json:"expired"`
	ExpiresAt    *int64 `json:"expires_at"`
	CreatedAt    int64  `json:"created_at"`
	Seq          int64  `json:"seq"`
	RestoredFrom string `json:"restored_from"`
	Note         string `json:"note"`
	Live         int    `json:"live"` // 1 while Remaining > 0: what the indexes look at (schema v2)
}

var bucketColumns = []string{"id", "account", "kind", "amount", "remaining", "expired", "expires_at", "created_at", "seq", "restored_from", "note", "live"}

type holdRow struct {
	ID        string `json:"id"`
	Account   string `json:"account"`
	Member    string `json:"member"`
	Key       string `json:"key"`
	Status    string `json:"status"`
	Amount    int64  `json:"amount"`
	Captured  int64  `json:"captured"`
	Refunded  int64  `json:"refunded"`
	Portions  string `json:"portions"`
	Quote     string `json:"quote"`
	CreatedAt int64  `json:"created_at"`
	Deadline  int64  `json:"deadline"`
	SettledAt *int64 `json:"settled_at"`
	Metadata  string `json:"metadata"`
}

var holdColumns = []string{"id", "account", "member", "key", "status", "amount", "captured", "refunded", "portions", "quote", "created_at", "deadline", "settled_at", "metadata"}

type entryRow struct {
	Account   string `json:"account"`
	Seq       int64  `json:"seq"`
	Type      string `json:"type"`
	Amount    int64  `json:"amount"`
	Available int64  `json:"available"`
	Held      int64  `json:"held"`
	At        int64  `json:"at"`
	Hold      string `json:"hold"`
	Bucket    string `json:"bucket"`
	Kind      string `json:"kind"`
	Tool      string `json:"tool"`
	Member    string `json:"member"`
	Key       string `json:"key"`
	Note      string `json:"note"`
}

var entryColumns = []string{"account", "seq", "type", "amount", "available", "held", "at", "hold", "bucket", "kind", "tool", "member", "key", "note"}

type recordRow struct {
	Account   string `json:"account"`
	Key       string `json:"key"`
	Operation string `json:"operation"`
	Request   string `json:"request"`
	Result    string `json:"result"`
	CreatedAt int64  `json:"created_at"`
}

var recordColumns = []string{"account", "key", "operation", "request", "result", "created_at"}

// Times are stored as Unix nanoseconds: exact, ordered, zone-free. The
// ledger refuses instants outside what that can hold (years 1678 to 2262).
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

func nanos(t time.Time) (int64, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("sqlstore: time %s out of the storable range: %w", t, credits.ErrInvalidRequest)
	}
	return t.UnixNano(), nil
}

func optNanos(t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	n, err := nanos(t)
	return &n, err
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromOptNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return fromNanos(*n)
}

// encoder converts ledger values to rows, keeping the first error.
type encoder struct{ err error }

func (e *encoder) json(v any) string {
	b, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = err
	}
	return string(b)
}

func (e *encoder) t(t time.Time) int64 {
	n, err := nanos(t)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n
}

func (e *encoder) opt(t time.Time) *int64 {
	n, err := optNanos(t)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n
}

func (e *encoder) account(a *credits.Account) accountRow {
	team := 0
	if a.Team {
		team = 1
	}
	return accountRow{
		ID: a.ID, CreatedAt: e.t(a.CreatedAt), Team: team, Members: e.json(a.Members),
		LowBalanceThreshold: a.LowBalanceThreshold.Units(), Available: a.Available.Units(), Held: a.Held.Units(),
		Granted: a.Granted.Units(), Spent: a.Spent.Units(), Expired: a.Expired.Units(), Seq: a.Seq, Metadata: e.json(a.Metadata),
	}
}

func (e *encoder) bucket(b *credits.Bucket) bucketRow {
	live := 0
	if b.Remaining.IsPositive() {
		live = 1
	}
	return bucketRow{Live: live,
		ID: b.ID, Account: b.Account, Kind: string(b.Kind), Amount: b.Amount.Units(), Remaining: b.Remaining.Units(),
		Expired: b.Expired.Units(), ExpiresAt: e.opt(b.ExpiresAt), CreatedAt: e.t(b.CreatedAt), Seq: b.Seq,
		RestoredFrom: b.RestoredFrom, Note: b.Note,
	}
}

func (e *encoder) hold(h *credits.Hold) holdRow {
	return holdRow{
		ID: h.ID, Account: h.Account, Member: h.Member, Key: h.Key, Status: string(h.Status), Amount: h.Amount.Units(),
		Captured: h.Captured.Units(), Refunded: h.Refunded.Units(), Portions: e.json(h.Portions), Quote: e.json(h.Quote),
		CreatedAt: e.t(h.CreatedAt), Deadline: e.t(h.Deadline), SettledAt: e.opt(h.SettledAt), Metadata: e.json(h.Metadata),
	}
}

func (e *encoder) entry(x *credits.Entry) entryRow {
	return entryRow{
		Account: x.Account, Seq: x.Seq, Type: string(x.Type), Amount: x.Amount.Units(), Available: x.Available.Units(),
		Held: x.Held.Units(), At: e.t(x.At), Hold: x.Hold, Bucket: x.Bucket, Kind: string(x.Kind), Tool: x.Tool,
		Member: x.Member, Key: x.Key, Note: x.Note,
	}
}

func (e *encoder) record(account string, r *credits.Record) recordRow {
	return recordRow{Account: account, Key: r.Key, Operation: r.Operation, Request: string(r.Request), Result: string(r.Result), CreatedAt: e.t(r.CreatedAt)}
}

// decoder converts rows back, keeping the first error.
type decoder struct{ err error }

func (d *decoder) json(s string, v any) {
	if err := json.Unmarshal([]byte(s), v); err != nil && d.err == nil {
		d.err = fmt.Errorf("sqlstore: corrupt JSON column: %w", err)
	}
}

func (d *decoder) account(r *accountRow) *credits.Account {
	a := &credits.Account{
		ID: r.ID, CreatedAt: fromNanos(r.CreatedAt), Team: r.Team == 1,
		LowBalanceThreshold: credits.FromUnits(r.LowBalanceThreshold), Available: credits.FromUnits(r.Available),
		Held: credits.FromUnits(r.Held), Granted: credits.FromUnits(r.Granted), Spent: credits.FromUnits(r.Spent),
		Expired: credits.FromUnits(r.Expired), Seq: r.Seq,
	}
	d.json(r.Members, &a.Members)
	d.json(r.Metadata, &a.Metadata)
	return a
}

func (d *decoder) bucket(r *bucketRow) *credits.Bucket {
	return &credits.Bucket{
		ID: r.ID, Account: r.Account, Kind: credits.GrantKind(r.Kind), Amount: credits.FromUnits(r.Amount),
		Remaining: credits.FromUnits(r.Remaining), Expired: credits.FromUnits(r.Expired), ExpiresAt: fromOptNanos(r.ExpiresAt),
		CreatedAt: fromNanos(r.CreatedAt), Seq: r.Seq, RestoredFrom: r.RestoredFrom, Note: r.Note,
	}
}

func (d *decoder) hold(r *holdRow) *credits.Hold {
	h := &credits.Hold{
		ID: r.ID, Account: r.Account, Member: r.Member, Key: r.Key, Status: credits.HoldStatus(r.Status),
		Amount: credits.FromUnits(r.Amount), Captured: credits.FromUnits(r.Captured), Refunded: credits.FromUnits(r.Refunded),
		CreatedAt: fromNanos(r.CreatedAt), Deadline: fromNanos(r.Deadline), SettledAt: fromOptNanos(r.SettledAt),
	}
	d.json(r.Portions, &h.Portions)
	d.json(r.Quote, &h.Quote)
	d.json(r.Metadata, &h.Metadata)
	return h
}

func (d *decoder) entry(r *entryRow) credits.Entry {
	return credits.Entry{
		Account: r.Account, Seq: r.Seq, Type: credits.EntryType(r.Type), Amount: credits.FromUnits(r.Amount),
		Available: credits.FromUnits(r.Available), Held: credits.FromUnits(r.Held), At: fromNanos(r.At), Hold: r.Hold,
		Bucket: r.Bucket, Kind: credits.GrantKind(r.Kind), Tool: r.Tool, Member: r.Member, Key: r.Key, Note: r.Note,
	}
}

func (d *decoder) record(r *recordRow) *credits.Record {
	return &credits.Record{Key: r.Key, Operation: r.Operation, Request: []byte(r.Request), Result: []byte(r.Result), CreatedAt: fromNanos(r.CreatedAt)}
}

// changeRows is the rows of one or more change sets, merged in the order
// they were made: an account, bucket or hold written twice is written once,
// as the last change left it (an insert stays an insert), so that one
// set-based statement per kind of row persists a whole batch.
type changeRows struct {
	newAccounts, updAccounts []accountRow
	newBuckets, updBuckets   []bucketRow
	newHolds, updHolds       []holdRow
	entries                  []entryRow
	records                  []recordRow
	// where a row of that ID already is: its index, and whether in the new list
	accountAt, bucketAt, holdAt map[string]rowAt
}

type rowAt struct {
	i     int
	isNew bool
}

// put adds or replaces the row of one ID in the new or updated list.
func put[T any](newList, updList *[]T, at map[string]rowAt, id string, row T, isNew bool) {
	if w, ok := at[id]; ok {
		if w.isNew {
			(*newList)[w.i] = row
		} else {
			(*updList)[w.i] = row
		}
		return
	}
	list := updList
	if isNew {
		list = newList
	}
	at[id] = rowAt{i: len(*list), isNew: isNew}
	*list = append(*list, row)
}

// add encodes ch, a change of account, into the rows; on an error (a time
// the database cannot store) it adds nothing.
func (r *changeRows) add(account string, ch *credits.Change) error {
	var e encoder
	var acct *accountRow
	if ch.Account != nil {
		a := e.account(ch.Account)
		acct = &a
	}
	buckets := make([]bucketRow, 0, len(ch.NewBuckets)+len(ch.UpdatedBuckets))
	for _, list := range [][]credits.Bucket{ch.NewBuckets, ch.UpdatedBuckets} {
		for i := range list {
			buckets = append(buckets, e.bucket(&list[i]))
		}
	}
	holds := make([]holdRow, 0, len(ch.NewHolds)+len(ch.UpdatedHolds))
	for _, list := range [][]credits.Hold{ch.NewHolds, ch.UpdatedHolds} {
		for i := range list {
			holds = append(holds, e.hold(&list[i]))
		}
	}
	entries := make([]entryRow, len(ch.Entries))
	for i := range ch.Entries {
		entries[i] = e.entry(&ch.Entries[i])
	}
	var rec *recordRow
	if ch.Record != nil {
		x := e.record(account, ch.Record)
		rec = &x
	}
	if e.err != nil {
		return e.err
	}
	if r.accountAt == nil {
		r.accountAt, r.bucketAt, r.holdAt = map[string]rowAt{}, map[string]rowAt{}, map[string]rowAt{}
	}
	if acct != nil {
		put(&r.newAccounts, &r.updAccounts, r.accountAt, acct.ID, *acct, ch.AccountCreated)
	}
	for i, b := range buckets {
		put(&r.newBuckets, &r.updBuckets, r.bucketAt, b.ID, b, i < len(ch.NewBuckets))
	}
	for i, h := range holds {
		put(&r.newHolds, &r.updHolds, r.holdAt, h.ID, h, i < len(ch.NewHolds))
	}
	r.entries = append(r.entries, entries...)
	if rec != nil {
		r.records = append(r.records, *rec)
	}
	return nil
}

// guardedJSON encodes the rows the optimistic write sends as JSON, in
// the order of queries.guardedParts: arrays of new buckets, new holds,
// entries and records, objects keyed by ID of updated buckets and holds
// (new buckets, updated buckets, new holds, updated holds, entries,
// records). The account row travels apart, with the guard.
func (r *changeRows) guardedJSON() ([]string, error) {
	var e encoder
	args := []string{
		e.json(emptyIfNil(r.newBuckets)), keyed(&e, r.updBuckets, func(b *bucketRow) string { return b.ID }),
		e.json(emptyIfNil(r.newHolds)), keyed(&e, r.updHolds, func(h *holdRow) string { return h.ID }),
		e.json(emptyIfNil(r.entries)), e.json(emptyIfNil(r.records)),
	}
	return args, e.err
}

// keyed encodes rows to update as a JSON object keyed by their IDs (see
// Dialect.update).
func keyed[T any](e *encoder, rows []T, id func(*T) string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.json(id(&rows[i])))
		b.WriteByte(':')
		b.WriteString(e.json(&rows[i]))
	}
	b.WriteByte('}')
	return b.String()
}

func emptyIfNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// The values of a row in the order of its table's columns.

func (r *accountRow) values() []any {
	return []any{r.ID, r.CreatedAt, r.Team, r.Members, r.LowBalanceThreshold, r.Available, r.Held, r.Granted, r.Spent, r.Expired, r.Seq, r.Metadata}
}

func (r *bucketRow) values() []any {
	return []any{r.ID, r.Account, r.Kind, r.Amount, r.Remaining, r.Expired, r.ExpiresAt, r.CreatedAt, r.Seq, r.RestoredFrom, r.Note, r.Live}
}

func (r *holdRow) values() []any {
	return []any{r.ID, r.Account, r.Member, r.Key, r.Status, r.Amount, r.Captured, r.Refunded, r.Portions, r.Quote, r.CreatedAt, r.Deadline, r.SettledAt, r.Metadata}
}

func (r *entryRow) values() []any {
	return []any{r.Account, r.Seq, r.Type, r.Amount, r.Available, r.Held, r.At, r.Hold, r.Bucket, r.Kind, r.Tool, r.Member, r.Key, r.Note}
}

func (r *recordRow) values() []any {
	return []any{r.Account, r.Key, r.Operation, r.Request, r.Result, r.CreatedAt}
}

// The addresses of a row's fields in the order of its table's columns, for
// scanning a load's typed columns (PostgreSQL's pipelined batches).

func (r *accountRow) dest() []any {
	return []any{&r.ID, &r.CreatedAt, &r.Team, &r.Members, &r.LowBalanceThreshold, &r.Available, &r.Held, &r.Granted, &r.Spent, &r.Expired, &r.Seq, &r.Metadata}
}

func (r *bucketRow) dest() []any {
	return []any{&r.ID, &r.Account, &r.Kind, &r.Amount, &r.Remaining, &r.Expired, &r.ExpiresAt, &r.CreatedAt, &r.Seq, &r.RestoredFrom, &r.Note, &r.Live}
}

func (r *holdRow) dest() []any {
	return []any{&r.ID, &r.Account, &r.Member, &r.Key, &r.Status, &r.Amount, &r.Captured, &r.Refunded, &r.Portions, &r.Quote, &r.CreatedAt, &r.Deadline, &r.SettledAt, &r.Metadata}
}

func (r *recordRow) dest() []any {
	return []any{&r.Account, &r.Key, &r.Operation, &r.Request, &r.Result, &r.CreatedAt}
}

// rowValues are the rows' values, kind by kind, in the order of rowKinds.
func (r *changeRows) rowValues() [8][][]any {
	return [8][][]any{
		valuesOf(r.newAccounts), valuesOf(r.updAccounts), valuesOf(r.newBuckets), valuesOf(r.updBuckets),
		valuesOf(r.newHolds), valuesOf(r.updHolds), valuesOf(r.entries), valuesOf(r.records),
	}
}

func valuesOf[T any, P interface {
	*T
	values() []any
}](rows []T) [][]any {
	out := make([][]any, len(rows))
	for i := range rows {
		out[i] = P(&rows[i]).values()
	}
	return out
}

// rowKinds are the kinds of rows a change set writes, in the order of
// changeRows: new accounts, updated accounts, new buckets, updated buckets,
// new holds, updated holds, entries, records. types are the columns'
// PostgreSQL array element types ("nbigint": a nullable bigint).
var rowKinds = [8]struct {
	table  func(t tables) string
	cols   []string
	types  []string
	update bool // rows replace those of the same key (the first column)
}{
	{func(t tables) string { return t.accounts }, accountColumns, accountTypes, false},
	{func(t tables) string { return t.accounts }, accountColumns, accountTypes, true},
	{func(t tables) string { return t.buckets }, bucketColumns, bucketTypes, false},
	{func(t tables) string { return t.buckets }, bucketColumns, bucketTypes, true},
	{func(t tables) string { return t.holds }, holdColumns, holdTypes, false},
	{func(t tables) string { return t.holds }, holdColumns, holdTypes, true},
	{func(t tables) string { return t.entries }, entryColumns, entryTypes, false},
	{func(t tables) string { return t.records }, recordColumns, recordTypes, false},
}
